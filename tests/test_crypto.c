/* tests/test_crypto.c — the crypto module: hashing, RFC 9162 Merkle proofs (the RFC 6962 vectors
 * and exhaustive checks on in-memory trees), the frontier, base64, the entry codec and frames,
 * C2SP keys, signed notes, checkpoints and cosignatures (the vectors in tests/vectors). */
#include "crypto/crypto.h"

#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Helpers --------------------------------------------------------------------------------- */

static void setup(void) {
  ck_assert_int_eq(sj_crypto_init(), 0);
}

static json_t *load_vectors(const char *rel) {
  const char *dir = getenv("SJ_TESTDATA");
  ck_assert_msg(dir != NULL, "SJ_TESTDATA not set");
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  json_error_t err;
  json_t *j = json_load_file(path, 0, &err);
  ck_assert_msg(j != NULL, "%s: %s", path, err.text);
  return j;
}

static const char *jstr(json_t *obj, const char *key) {
  const char *s = json_string_value(json_object_get(obj, key));
  ck_assert_msg(s != NULL, "missing string %s", key);
  return s;
}

static void unhex(const char *hex, uint8_t *out, size_t n) {
  ck_assert_int_eq(sj_hex_decode(hex, strlen(hex), out, n), 0);
}

/* Decodes a JSON array of hex hashes into path; returns its length. */
static size_t unhex_path(json_t *arr, uint8_t path[][SJ_HASH_LEN]) {
  size_t i;
  json_t *v;
  ck_assert_uint_le(json_array_size(arr), SJ_MERKLE_MAX_PATH);
  json_array_foreach(arr, i, v) unhex(json_string_value(v), path[i], SJ_HASH_LEN);
  return json_array_size(arr);
}

/* Check records the location of every passing ck_assert (a write in fork mode); loops that assert
 * millions of times use this instead, which costs nothing until it fails. */
#define EXPECT(cond, ...)                                                                          \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ck_abort_msg(__VA_ARGS__);                                                                   \
  } while (0)
#define EXPECT_REFUSED(expr) EXPECT((expr) == SJ_EVERIFY, "accepted: %s (line %d)", #expr, __LINE__)

/* Deterministic xorshift64* so that "random" tests are reproducible. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

/* ---- An in-memory tree: every perfect subtree precomputed from the leaf hashes ------------------
 */

#define MEM_MAX 512
typedef struct {
  uint8_t node[10][MEM_MAX][SJ_HASH_LEN]; /* node[level][index], levels 0..9 */
  uint64_t nleaves;                       /* leaves stored */
  uint64_t limit;                         /* reads beyond this many leaves fail the test */
  unsigned reads;
} memtree_t;

static memtree_t *memtree_new(uint64_t n) {
  memtree_t *t = calloc(1, sizeof *t);
  ck_assert_ptr_nonnull(t);
  ck_assert_uint_le(n, MEM_MAX);
  for (uint64_t i = 0; i < n; i++) {
    uint8_t leaf[8];
    sj_put_be64(leaf, i * 7919u);
    sj_merkle_leaf_hash(leaf, sizeof leaf, t->node[0][i]);
  }
  for (unsigned l = 1; l < 10; l++)
    for (uint64_t i = 0; ((i + 1) << l) <= n; i++)
      sj_merkle_node_hash(t->node[l - 1][2 * i], t->node[l - 1][2 * i + 1], t->node[l][i]);
  t->nleaves = t->limit = n;
  return t;
}

static int mem_read(void *ctx, unsigned level, uint64_t index, uint8_t out[SJ_HASH_LEN]) {
  memtree_t *t = ctx;
  t->reads++;
  if (level >= 10 || index >= MEM_MAX || ((index + 1) << level) > t->limit)
    return SJ_ENOTFOUND; /* asked for a subtree outside the tree being proved */
  memcpy(out, t->node[level][index], SJ_HASH_LEN);
  return 0;
}

/* RFC 9162 §2.1.1 MTH, written the way the RFC states it, as the reference. */
static void ref_mth(const memtree_t *t, uint64_t lo, uint64_t n, uint8_t out[SJ_HASH_LEN]) {
  if (n == 1) {
    memcpy(out, t->node[0][lo], SJ_HASH_LEN);
    return;
  }
  uint64_t k = 1;
  while (2 * k < n)
    k *= 2;
  uint8_t l[SJ_HASH_LEN], r[SJ_HASH_LEN];
  ref_mth(t, lo, k, l);
  ref_mth(t, lo + k, n - k, r);
  sj_merkle_node_hash(l, r, out);
}

/* RFC 9162 §2.1.3.1 PATH(m, D[lo:lo+n]) as written: deeper elements first. */
static size_t ref_path(const memtree_t *t, uint64_t m, uint64_t lo, uint64_t n,
                       uint8_t path[][SJ_HASH_LEN]) {
  if (n == 1)
    return 0;
  uint64_t k = 1;
  while (2 * k < n)
    k *= 2;
  size_t len;
  if (m < k) {
    len = ref_path(t, m, lo, k, path);
    ref_mth(t, lo + k, n - k, path[len]);
  } else {
    len = ref_path(t, m - k, lo + k, n - k, path);
    ref_mth(t, lo, k, path[len]);
  }
  return len + 1;
}

/* RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:lo+n], b) as written. */
static size_t ref_subproof(const memtree_t *t, uint64_t m, uint64_t lo, uint64_t n, int b,
                           uint8_t path[][SJ_HASH_LEN]) {
  if (m == n) {
    if (b)
      return 0;
    ref_mth(t, lo, n, path[0]);
    return 1;
  }
  uint64_t k = 1;
  while (2 * k < n)
    k *= 2;
  size_t len;
  if (m <= k) {
    len = ref_subproof(t, m, lo, k, b, path);
    ref_mth(t, lo + k, n - k, path[len]);
  } else {
    len = ref_subproof(t, m - k, lo + k, n - k, 0, path);
    ref_mth(t, lo, k, path[len]);
  }
  return len + 1;
}

/* ---- Hashing --------------------------------------------------------------------------------- */

START_TEST(sha256_matches_known_digests) {
  uint8_t d[SJ_HASH_LEN], want[SJ_HASH_LEN];
  sj_sha256("", 0, d);
  unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
  ck_assert_mem_eq(d, want, 32);
  sj_sha256("abc", 3, d);
  unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
  ck_assert_mem_eq(d, want, 32);
}
END_TEST

START_TEST(hmac_sha256_matches_rfc4231_case2) {
  uint8_t d[SJ_HASH_LEN], want[SJ_HASH_LEN];
  const char *msg = "what do ya want for nothing?";
  sj_hmac_sha256((const uint8_t *)"Jefe", 4, msg, strlen(msg), d);
  unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
  ck_assert_mem_eq(d, want, 32);
}
END_TEST

/* The leaf hash takes a stack path for small inputs and a streaming path for large ones; both
 * must equal SHA-256(0x00 || data) computed the plain way. */
START_TEST(leaf_hash_equals_prefixed_sha256_at_every_size) {
  static uint8_t data[5000], buf[5001];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 31 + 7);
  size_t sizes[] = {0, 1, 55, 56, 63, 64, 300, 2047, 2048, 2049, 4096, 5000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    size_t n = sizes[s];
    uint8_t a[SJ_HASH_LEN], b[SJ_HASH_LEN];
    buf[0] = 0;
    memcpy(buf + 1, data, n);
    sj_sha256(buf, n + 1, a);
    sj_merkle_leaf_hash(data, n, b);
    ck_assert_msg(memcmp(a, b, 32) == 0, "leaf hash differs at size %zu", n);
  }
  uint8_t l[SJ_HASH_LEN], r[SJ_HASH_LEN], node[SJ_HASH_LEN], want[SJ_HASH_LEN], cat[65];
  memset(l, 0xaa, 32);
  memset(r, 0x55, 32);
  cat[0] = 1;
  memcpy(cat + 1, l, 32);
  memcpy(cat + 33, r, 32);
  sj_sha256(cat, 65, want);
  sj_merkle_node_hash(l, r, node);
  ck_assert_mem_eq(node, want, 32);
  sj_merkle_node_hash(l, r, l); /* output may alias an input */
  ck_assert_mem_eq(l, want, 32);
}
END_TEST

/* ---- Merkle: RFC 6962 vectors ---------------------------------------------------------------- */

typedef struct {
  uint8_t leaf[8][SJ_HASH_LEN];
  uint8_t node[4][8][SJ_HASH_LEN];
} vtree_t;

static int vtree_read(void *ctx, unsigned level, uint64_t index, uint8_t out[SJ_HASH_LEN]) {
  vtree_t *t = ctx;
  if (level > 3 || ((index + 1) << level) > 8)
    return SJ_ENOTFOUND;
  memcpy(out, t->node[level][index], SJ_HASH_LEN);
  return 0;
}

static void vtree_load(json_t *j, vtree_t *t) {
  json_t *leaves = json_object_get(j, "leaves_hex");
  ck_assert_uint_eq(json_array_size(leaves), 8);
  for (size_t i = 0; i < 8; i++) {
    const char *hex = json_string_value(json_array_get(leaves, i));
    uint8_t raw[64];
    size_t n = strlen(hex) / 2;
    unhex(hex, raw, n);
    sj_merkle_leaf_hash(raw, n, t->node[0][i]);
  }
  for (unsigned l = 1; l < 4; l++)
    for (unsigned i = 0; (i + 1) << l <= 8; i++)
      sj_merkle_node_hash(t->node[l - 1][2 * i], t->node[l - 1][2 * i + 1], t->node[l][i]);
}

START_TEST(merkle_roots_match_rfc6962_vectors) {
  json_t *j = load_vectors("merkle/rfc6962-vectors.json");
  vtree_t t;
  vtree_load(j, &t);
  for (uint64_t n = 1; n <= 8; n++) {
    char key[4];
    snprintf(key, sizeof key, "%u", (unsigned)n);
    uint8_t want[SJ_HASH_LEN], got[SJ_HASH_LEN];
    unhex(jstr(json_object_get(j, "roots_hex"), key), want, 32);
    ck_assert_int_eq(sj_merkle_root(vtree_read, &t, n, got), 0);
    ck_assert_mem_eq(got, want, 32);
  }
  uint8_t empty[SJ_HASH_LEN], want[SJ_HASH_LEN];
  ck_assert_int_eq(sj_merkle_root(vtree_read, &t, 0, empty), 0);
  sj_sha256("", 0, want);
  ck_assert_mem_eq(empty, want, 32);
  json_decref(j);
}
END_TEST

START_TEST(merkle_inclusion_proofs_match_rfc6962_vectors) {
  json_t *j = load_vectors("merkle/rfc6962-vectors.json");
  vtree_t t;
  vtree_load(j, &t);
  size_t i;
  json_t *v;
  ck_assert_uint_gt(json_array_size(json_object_get(j, "inclusion")), 0);
  json_array_foreach(json_object_get(j, "inclusion"), i, v) {
    uint64_t idx = (uint64_t)json_integer_value(json_object_get(v, "Index"));
    uint64_t size = (uint64_t)json_integer_value(json_object_get(v, "Size"));
    uint8_t want[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], got[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
    uint8_t root[SJ_HASH_LEN];
    size_t wn = unhex_path(json_object_get(v, "Path"), want), gn = 99;
    ck_assert_int_eq(sj_merkle_prove_inclusion(vtree_read, &t, idx, size, got, &gn), 0);
    ck_assert_uint_eq(gn, wn);
    if (wn)
      ck_assert_mem_eq(got, want, wn * SJ_HASH_LEN);
    ck_assert_int_eq(sj_merkle_root(vtree_read, &t, size, root), 0);
    ck_assert_int_eq(sj_merkle_verify_inclusion(t.node[0][idx], idx, size, want, wn, root), 0);
  }
  json_decref(j);
}
END_TEST

START_TEST(merkle_consistency_proofs_match_rfc6962_vectors) {
  json_t *j = load_vectors("merkle/rfc6962-vectors.json");
  vtree_t t;
  vtree_load(j, &t);
  size_t i;
  json_t *v;
  ck_assert_uint_gt(json_array_size(json_object_get(j, "consistency")), 0);
  json_array_foreach(json_object_get(j, "consistency"), i, v) {
    uint64_t m = (uint64_t)json_integer_value(json_object_get(v, "First"));
    uint64_t n = (uint64_t)json_integer_value(json_object_get(v, "Second"));
    uint8_t want[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], got[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
    uint8_t r1[SJ_HASH_LEN], r2[SJ_HASH_LEN];
    size_t wn = unhex_path(json_object_get(v, "Path"), want), gn = 99;
    ck_assert_int_eq(sj_merkle_prove_consistency(vtree_read, &t, m, n, got, &gn), 0);
    ck_assert_uint_eq(gn, wn);
    ck_assert_mem_eq(got, want, wn * SJ_HASH_LEN);
    ck_assert_int_eq(sj_merkle_root(vtree_read, &t, m, r1), 0);
    ck_assert_int_eq(sj_merkle_root(vtree_read, &t, n, r2), 0);
    ck_assert_int_eq(sj_merkle_verify_consistency(m, n, r1, r2, want, wn), 0);
  }
  json_decref(j);
}
END_TEST

/* ---- Merkle: exhaustive checks on in-memory trees ----------------------------------------------
 */

static int same_path(uint8_t a[][SJ_HASH_LEN], size_t an, uint8_t b[][SJ_HASH_LEN], size_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an * SJ_HASH_LEN) == 0);
}

START_TEST(merkle_every_proof_up_to_300_verifies_and_equals_rfc_recursion) {
  memtree_t *t = memtree_new(300);
  uint8_t roots[301][SJ_HASH_LEN];
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], ref[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  for (uint64_t n = 1; n <= 300; n++) {
    t->limit = n;
    t->reads = 0;
    ck_assert_int_eq(sj_merkle_root(mem_read, t, n, roots[n]), 0);
    ck_assert_uint_le(t->reads, 64);
    ref_mth(t, 0, n, ref[0]);
    ck_assert_mem_eq(roots[n], ref[0], 32);
  }
  for (uint64_t n = 1; n <= 300; n++) {
    t->limit = n;
    for (uint64_t i = 0; i < n; i++) {
      size_t len;
      EXPECT(sj_merkle_prove_inclusion(mem_read, t, i, n, path, &len) == 0, "prove %d", (int)i);
      EXPECT(sj_merkle_verify_inclusion(t->node[0][i], i, n, path, len, roots[n]) == 0,
             "inclusion of %u in %u", (unsigned)i, (unsigned)n);
      if (n <= 64) /* the RFC's own recursion, as a reference for exact equality */
        EXPECT(same_path(path, len, ref, ref_path(t, i, 0, n, ref)), "path %u/%u differs from RFC",
               (unsigned)i, (unsigned)n);
    }
    for (uint64_t m = 1; m <= n; m++) {
      size_t len;
      EXPECT(sj_merkle_prove_consistency(mem_read, t, m, n, path, &len) == 0, "prove %d", (int)m);
      EXPECT(sj_merkle_verify_consistency(m, n, roots[m], roots[n], path, len) == 0,
             "consistency %u -> %u", (unsigned)m, (unsigned)n);
      if (n <= 64)
        EXPECT(same_path(path, len, ref, ref_subproof(t, m, 0, n, 1, ref)),
               "proof %u->%u differs from RFC", (unsigned)m, (unsigned)n);
    }
  }
  free(t);
}
END_TEST

START_TEST(merkle_prove_refuses_out_of_range) {
  memtree_t *t = memtree_new(10);
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  size_t len = 77;
  ck_assert_int_eq(sj_merkle_prove_inclusion(mem_read, t, 10, 10, path, &len), SJ_ERANGE);
  ck_assert_int_eq(sj_merkle_prove_inclusion(mem_read, t, 0, 0, path, &len), SJ_ERANGE);
  ck_assert_int_eq(sj_merkle_prove_consistency(mem_read, t, 0, 5, path, &len), SJ_ERANGE);
  ck_assert_int_eq(sj_merkle_prove_consistency(mem_read, t, 6, 5, path, &len), SJ_ERANGE);
  ck_assert_uint_eq(len, 77); /* untouched on failure */
  /* the callback's error comes back unchanged */
  ck_assert_int_eq(sj_merkle_prove_inclusion(mem_read, t, 3, 11, path, &len), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_merkle_prove_consistency(mem_read, t, 3, 11, path, &len), SJ_ENOTFOUND);
  uint8_t root[SJ_HASH_LEN];
  ck_assert_int_eq(sj_merkle_root(mem_read, t, 11, root), SJ_ENOTFOUND);
  ck_assert_uint_eq(len, 77);
  free(t);
}
END_TEST

/* For every inclusion proof in trees up to 32 leaves: any single flipped bit in the path, the
 * root or the leaf hash, any other index, a path one hash shorter or longer: refused. */
START_TEST(merkle_inclusion_tampering_is_refused) {
  memtree_t *t = memtree_new(32);
  uint8_t path[SJ_MERKLE_MAX_PATH + 1][SJ_HASH_LEN], root[SJ_HASH_LEN], leaf[SJ_HASH_LEN];
  for (uint64_t n = 1; n <= 32; n++) {
    t->limit = n;
    ck_assert_int_eq(sj_merkle_root(mem_read, t, n, root), 0);
    for (uint64_t i = 0; i < n; i++) {
      size_t len;
      ck_assert_int_eq(sj_merkle_prove_inclusion(mem_read, t, i, n, path, &len), 0);
      memcpy(leaf, t->node[0][i], 32);
      for (size_t bit = 0; bit < 256; bit++) {
        for (size_t k = 0; k < len; k++) {
          path[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
          EXPECT_REFUSED(sj_merkle_verify_inclusion(leaf, i, n, path, len, root));
          path[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        root[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        EXPECT_REFUSED(sj_merkle_verify_inclusion(leaf, i, n, path, len, root));
        root[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        leaf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        EXPECT_REFUSED(sj_merkle_verify_inclusion(leaf, i, n, path, len, root));
        leaf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      }
      for (uint64_t j = 0; j < n + 2; j++)
        if (j != i)
          EXPECT_REFUSED(sj_merkle_verify_inclusion(leaf, j, n, path, len, root));
      if (len)
        EXPECT_REFUSED(sj_merkle_verify_inclusion(leaf, i, n, path, len - 1, root));
      memcpy(path[len], root, 32);
      EXPECT_REFUSED(sj_merkle_verify_inclusion(leaf, i, n, path, len + 1, root));
      ck_assert_int_eq(sj_merkle_verify_inclusion(leaf, i, n, path, len, root), 0);
    }
  }
  EXPECT_REFUSED(sj_merkle_verify_inclusion(leaf, 0, 0, path, 0, leaf));
  free(t);
}
END_TEST

/* For every consistency proof up to 32 leaves: any flipped bit in the path or either root, a path
 * one hash shorter or longer: refused. And a proof for any pair up to 16 leaves, checked as any
 * other pair up to 32 against that pair's own roots (unless its proof happens to be the very same
 * hashes): refused. */
START_TEST(merkle_consistency_tampering_is_refused) {
  memtree_t *t = memtree_new(32);
  uint8_t roots[33][SJ_HASH_LEN];
  uint8_t proofs[33][33][8][SJ_HASH_LEN];
  size_t lens[33][33];
  for (uint64_t n = 1; n <= 32; n++) {
    t->limit = n;
    ck_assert_int_eq(sj_merkle_root(mem_read, t, n, roots[n]), 0);
    for (uint64_t m = 1; m <= n; m++) {
      uint8_t p[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
      ck_assert_int_eq(sj_merkle_prove_consistency(mem_read, t, m, n, p, &lens[m][n]), 0);
      ck_assert_uint_le(lens[m][n], 7);
      memcpy(proofs[m][n], p, lens[m][n] * SJ_HASH_LEN);
    }
  }
  for (uint64_t n = 1; n <= 32; n++) {
    for (uint64_t m = 1; m <= n; m++) {
      uint8_t(*path)[SJ_HASH_LEN] = proofs[m][n];
      size_t len = lens[m][n];
      uint8_t r1[SJ_HASH_LEN], r2[SJ_HASH_LEN];
      memcpy(r1, roots[m], 32);
      memcpy(r2, roots[n], 32);
      for (size_t bit = 0; bit < 256; bit++) {
        uint8_t mask = (uint8_t)(1u << (bit % 8));
        for (size_t k = 0; k < len; k++) {
          path[k][bit / 8] ^= mask;
          EXPECT_REFUSED(sj_merkle_verify_consistency(m, n, r1, r2, path, len));
          path[k][bit / 8] ^= mask;
        }
        r1[bit / 8] ^= mask;
        EXPECT_REFUSED(sj_merkle_verify_consistency(m, n, r1, r2, path, len));
        r1[bit / 8] ^= mask;
        r2[bit / 8] ^= mask;
        EXPECT_REFUSED(sj_merkle_verify_consistency(m, n, r1, r2, path, len));
        r2[bit / 8] ^= mask;
      }
      for (uint64_t n2 = 1; n2 <= 32 && n <= 16; n2++) /* every pair twice would cost 280k runs */
        for (uint64_t m2 = 1; m2 <= n2; m2++) {
          if ((m2 == m && n2 == n) || same_path(proofs[m2][n2], lens[m2][n2], path, len))
            continue;
          EXPECT(sj_merkle_verify_consistency(m2, n2, roots[m2], roots[n2], path, len) ==
                     SJ_EVERIFY,
                 "proof %u->%u accepted as %u->%u", (unsigned)m, (unsigned)n, (unsigned)m2,
                 (unsigned)n2);
        }
      if (len)
        EXPECT_REFUSED(sj_merkle_verify_consistency(m, n, r1, r2, path, len - 1));
      uint8_t longer[9][SJ_HASH_LEN];
      memcpy(longer, path, len * SJ_HASH_LEN);
      memcpy(longer[len], r1, 32);
      EXPECT_REFUSED(sj_merkle_verify_consistency(m, n, r1, r2, longer, len + 1));
      ck_assert_int_eq(sj_merkle_verify_consistency(m, n, r1, r2, path, len), 0);
      /* first == 0 and first > second are refused whatever the proof */
      EXPECT_REFUSED(sj_merkle_verify_consistency(0, n, r1, r2, path, len));
      EXPECT_REFUSED(sj_merkle_verify_consistency(n + 1, n, r2, r1, path, len));
    }
  }
  free(t);
}
END_TEST

/* ---- Frontier -------------------------------------------------------------------------------- */

typedef struct {
  unsigned level[16];
  uint64_t index[16];
  uint8_t hash[16][SJ_HASH_LEN];
  int n;
  int fail_at; /* emit number that fails, or -1 */
} emits_t;

static int record_emit(void *ctx, unsigned level, uint64_t index, const uint8_t h[SJ_HASH_LEN]) {
  emits_t *e = ctx;
  if (e->n == e->fail_at)
    return -42;
  ck_assert_int_lt(e->n, 16);
  e->level[e->n] = level;
  e->index[e->n] = index;
  memcpy(e->hash[e->n], h, SJ_HASH_LEN);
  e->n++;
  return 0;
}

START_TEST(frontier_emits_exactly_the_completed_subtrees_and_its_root_is_mth) {
  memtree_t *t = memtree_new(300);
  sj_merkle_frontier_t f;
  sj_merkle_frontier_init(&f);
  uint8_t r[SJ_HASH_LEN], want[SJ_HASH_LEN];
  sj_merkle_frontier_root(&f, r);
  sj_sha256("", 0, want);
  ck_assert_mem_eq(r, want, 32);
  for (uint64_t i = 0; i < 300; i++) {
    emits_t e = {.fail_at = -1};
    ck_assert_int_eq(sj_merkle_frontier_append(&f, t->node[0][i], record_emit, &e), 0);
    int k = 0;
    for (unsigned l = 0; ((i + 1) % ((uint64_t)1 << l)) == 0; l++, k++) {
      ck_assert_int_lt(k, e.n);
      ck_assert_uint_eq(e.level[k], l);
      ck_assert_uint_eq(e.index[k], ((i + 1) >> l) - 1);
      ck_assert_mem_eq(e.hash[k], t->node[l][((i + 1) >> l) - 1], 32);
    }
    ck_assert_int_eq(e.n, k);
    ck_assert_uint_eq(f.size, i + 1);
    t->limit = i + 1;
    sj_merkle_frontier_root(&f, r);
    ck_assert_int_eq(sj_merkle_root(mem_read, t, i + 1, want), 0);
    ck_assert_mem_eq(r, want, 32);
    sj_merkle_frontier_t g;
    ck_assert_int_eq(sj_merkle_frontier_load(&g, mem_read, t, i + 1), 0);
    ck_assert_uint_eq(g.size, i + 1);
    sj_merkle_frontier_root(&g, want);
    ck_assert_mem_eq(r, want, 32);
  }
  free(t);
}
END_TEST

START_TEST(frontier_append_aborted_by_emit_leaves_it_unchanged) {
  memtree_t *t = memtree_new(16);
  sj_merkle_frontier_t f, before;
  sj_merkle_frontier_init(&f);
  for (uint64_t i = 0; i < 15; i++)
    ck_assert_int_eq(sj_merkle_frontier_append(&f, t->node[0][i], NULL, NULL), 0);
  for (int fail = 0; fail < 5; fail++) { /* appending leaf 15 emits 5 subtrees */
    before = f;
    emits_t e = {.fail_at = fail};
    ck_assert_int_eq(sj_merkle_frontier_append(&f, t->node[0][15], record_emit, &e), -42);
    ck_assert_mem_eq(&f, &before, sizeof f);
  }
  emits_t e = {.fail_at = -1};
  ck_assert_int_eq(sj_merkle_frontier_append(&f, t->node[0][15], record_emit, &e), 0);
  ck_assert_int_eq(e.n, 5);
  ck_assert_mem_eq(f.h[4], t->node[4][0], 32);
  /* a load that fails leaves the frontier alone too */
  before = f;
  t->limit = 8;
  ck_assert_int_eq(sj_merkle_frontier_load(&f, mem_read, t, 12), SJ_ENOTFOUND);
  ck_assert_mem_eq(&f, &before, sizeof f);
  free(t);
}
END_TEST

/* ---- Base64 ---------------------------------------------------------------------------------- */

START_TEST(base64_round_trips_and_matches_rfc4648) {
  static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  const char *plain = "foobar";
  for (size_t i = 0; i <= 6; i++) {
    char out[16];
    ck_assert_uint_eq(sj_base64_len(i), strlen(enc[i]) + 1);
    ck_assert_uint_eq(sj_base64_encode((const uint8_t *)plain, i, out), strlen(enc[i]));
    ck_assert_str_eq(out, enc[i]);
    uint8_t dec[8];
    size_t n = 99;
    ck_assert_int_eq(sj_base64_decode(enc[i], strlen(enc[i]), dec, sizeof dec, &n), 0);
    ck_assert_uint_eq(n, i);
    ck_assert(n == 0 || memcmp(dec, plain, n) == 0);
  }
  for (size_t len = 0; len < 70; len++) { /* every length, every byte value somewhere */
    uint8_t src[70], dec[70];
    char out[100];
    for (size_t i = 0; i < len; i++)
      src[i] = (uint8_t)(rnd() >> 13);
    size_t el = sj_base64_encode(src, len, out), n;
    ck_assert_int_eq(sj_base64_decode(out, el, dec, len, &n), 0);
    ck_assert_uint_eq(n, len);
    ck_assert(len == 0 || memcmp(src, dec, len) == 0);
    if (len)
      ck_assert_int_eq(sj_base64_decode(out, el, dec, len - 1, &n), SJ_ETOOBIG);
  }
}
END_TEST

START_TEST(base64_decode_is_strict) {
  static const char *bad[] = {"Zg=",  "Zg",   "Zm9",  "Z===",   "====", "Zg==Zg==", "Zm=v",
                              "Zh==", "Zm9=", "Zm 9", "Zm9v\n", "Zm9-", "Zm9_",     "=m9v"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t out[16];
    size_t n = 99;
    ck_assert_msg(sj_base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n) == SJ_EFORMAT,
                  "accepted %s", bad[i]);
    ck_assert_uint_eq(n, 99);
  }
}
END_TEST

/* ---- Entry codec ----------------------------------------------------------------------------- */

/* The three documented vectors of docs/FORMAT.md: header hex and leaf hash, computed there
 * independently (Python struct + hashlib). */
static const struct {
  const char *hex, *leaf, *body;
} format_vectors[] = {
    {"010004baf000000000000000000000019ac29c1400000000000000000000000000000000000000000000000000"
     "00000000000000000100a33c36f177b3df0f43cf3a0bb87aa52364c17c249924892c544179d383d1c35d000000"
     "310770656e616c7479000101001239313331303030304d4131464c3858513337",
     "47c85f7c37323a2f16828d1f3810dd30a37042f3a915ed3a546c9a1a5e41151d",
     "{\"kind\":\"penalty\",\"subject\":\"91310000MA1FL8XQ37\"}"},
    {"010004e20000000000000000010000019ac29c18d247c85f7c37323a2f16828d1f3810dd30a37042f3a915ed3a"
     "546c9a1a5e41151d0201b3bec07ab899d9f56cf9870887ba2b7ae00f37a6a9305c0a65fa2b737dc55ca4000000"
     "1b0b4f626a6563744576656e74000203002475726e3a6570633a69643a736774696e3a303631343134312e3130"
     "373334362e3230313703002975726e3a6570633a636c6173733a6c6774696e3a343031323334352e3031323334"
     "352e393938383737",
     "35483321d7edc1a890e64623c8ba3b2f055cee4ce9e5e3aca99373a3de66b2f4",
     "{\"eventType\":\"ObjectEvent\"}"},
    {"010005091000000000000000290000019ac29c3b0f11111111111111111111111111111111111111111111111111"
     "11111111111111010236b03871fb15fa7c22f688c1d0808ce2e754b0d0d3faf38118765b875c5644800000000e06"
     "726174696e670002020020f4231bbad5521310009bf9fbe861881c9cd11422da28c5d23f94b8e667e47e01040009"
     "4d4131323334353637",
     "10f85e360396eda18defc7f481cdc1cf8dfbe77e4950f675b4860b15de085e52", "{\"rating\":\"A\"}"},
};

static size_t vector_bytes(int i, uint8_t *out, size_t cap) {
  size_t n = strlen(format_vectors[i].hex) / 2;
  ck_assert_uint_le(n, cap);
  unhex(format_vectors[i].hex, out, n);
  return n;
}

START_TEST(entry_format_vectors_decode_reencode_and_hash) {
  for (int i = 0; i < 3; i++) {
    uint8_t raw[512], leaf[SJ_HASH_LEN], want[SJ_HASH_LEN];
    size_t n = vector_bytes(i, raw, sizeof raw);
    sj_entry_header_t h;
    sj_index_key_t keys[8];
    ck_assert_int_eq(sj_entry_decode(raw, n, &h, keys, 8), 0);
    ck_assert_int_eq(h.version, 1);
    sj_buf_t b = {0};
    ck_assert_int_eq(sj_entry_encode(&h, &b), 0);
    ck_assert_uint_eq(b.n, n);
    ck_assert_mem_eq(b.p, raw, n);
    sj_buf_deinit(&b);
    sj_merkle_leaf_hash(raw, n, leaf);
    unhex(format_vectors[i].leaf, want, 32);
    ck_assert_mem_eq(leaf, want, 32);
    const char *body = format_vectors[i].body;
    ck_assert_int_eq(sj_entry_check_body(&h, (const uint8_t *)body, strlen(body)), 0);
    ck_assert_int_eq(sj_entry_check_body(&h, (const uint8_t *)body, strlen(body) - 1), SJ_EVERIFY);
    ck_assert_int_eq(sj_entry_check_body(&h, (const uint8_t *)"{\"rating\":\"B\"}", 14),
                     SJ_EVERIFY);
  }
}
END_TEST

START_TEST(entry_vector_one_has_the_documented_fields) {
  uint8_t raw[512];
  size_t n = vector_bytes(0, raw, sizeof raw);
  sj_entry_header_t h;
  sj_index_key_t keys[1];
  ck_assert_int_eq(sj_entry_decode(raw, n, &h, keys, 1), 0);
  ck_assert_uint_eq(h.region, 310000);
  ck_assert_uint_eq(h.seq, 0);
  ck_assert_uint_eq(h.time_ms, 1764201600000ull);
  ck_assert_int_eq(h.kind, SJ_KIND_CREDIT);
  ck_assert_int_eq(h.disclosure, SJ_DISCLOSE_PUBLIC);
  ck_assert_uint_eq(h.type_len, 7);
  ck_assert_mem_eq(h.type, "penalty", 7);
  ck_assert_uint_eq(h.body_len, 49);
  ck_assert_uint_eq(h.nkeys, 1);
  ck_assert_ptr_eq(h.keys, keys);
  ck_assert_int_eq(keys[0].type, SJ_KEY_USCC);
  ck_assert_uint_eq(keys[0].len, 18);
  ck_assert_ptr_eq(keys[0].p, raw + n - 18); /* borrowed from the input */
  /* the chain: vector 2's prev is vector 1's leaf hash */
  uint8_t raw2[512], leaf1[SJ_HASH_LEN];
  size_t n2 = vector_bytes(1, raw2, sizeof raw2);
  sj_index_key_t keys2[2];
  ck_assert_int_eq(sj_entry_decode(raw2, n2, &h, keys2, 2), 0);
  sj_merkle_leaf_hash(raw, n, leaf1);
  ck_assert_mem_eq(h.prev, leaf1, 32);
  ck_assert_uint_eq(h.seq, 1);
}
END_TEST

/* Decodes a heap copy of exactly n bytes so that ASan sees any read past the end. */
static int decode_exact(const uint8_t *p, size_t n, size_t cap) {
  uint8_t *copy = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(copy);
  if (n)
    memcpy(copy, p, n);
  sj_entry_header_t h;
  memset(&h, 0xee, sizeof h);
  sj_entry_header_t before = h;
  sj_index_key_t keys[16];
  int rv = sj_entry_decode(copy, n, &h, keys, cap);
  if (rv == 0) { /* whatever decodes must re-encode to the same bytes: one encoding per header */
    sj_buf_t b = {0};
    ck_assert_int_eq(sj_entry_encode(&h, &b), 0);
    ck_assert_uint_eq(b.n, n);
    ck_assert_mem_eq(b.p, copy, n);
    sj_buf_deinit(&b);
  } else {
    ck_assert_mem_eq(&h, &before, sizeof h); /* out untouched on failure */
  }
  free(copy);
  return rv;
}

START_TEST(entry_decode_rejects_every_truncation_and_trailing_byte) {
  for (int v = 0; v < 3; v++) {
    uint8_t raw[513];
    size_t n = vector_bytes(v, raw, 512);
    for (size_t cut = 0; cut < n; cut++)
      ck_assert_msg(decode_exact(raw, cut, 16) == SJ_ETRUNC, "vector %d cut at %zu", v, cut);
    for (int extra = 0; extra < 256; extra += 51) {
      raw[n] = (uint8_t)extra;
      ck_assert_int_eq(decode_exact(raw, n + 1, 16), SJ_EFORMAT);
    }
    ck_assert_int_eq(decode_exact(raw, n, 16), 0);
  }
}
END_TEST

START_TEST(entry_decode_rejects_bad_fields) {
  uint8_t raw[512], t[512];
  size_t n = vector_bytes(0, raw, sizeof raw); /* type at 92..98, nkeys at 99, key at 101 */
#define MUTATE(off, val, want)                                                                     \
  do {                                                                                             \
    memcpy(t, raw, n);                                                                             \
    t[off] = (uint8_t)(val);                                                                       \
    ck_assert_int_eq(decode_exact(t, n, 16), want);                                                \
  } while (0)
  MUTATE(0, 0, SJ_EVERSION);
  MUTATE(0, 2, SJ_EVERSION);
  MUTATE(53, 0, SJ_EFORMAT); /* kind */
  MUTATE(53, 3, SJ_EFORMAT);
  MUTATE(54, 3, SJ_EFORMAT);  /* disclosure */
  MUTATE(91, 0, SJ_EFORMAT);  /* type_len 0 */
  MUTATE(91, 65, SJ_EFORMAT); /* type_len over 64 */
  MUTATE(91, 6, SJ_EFORMAT);  /* type one byte short: "y\0" read as 30976 keys, over the max */
  MUTATE(91, 8, SJ_ETOOBIG);  /* one byte long: 257 keys, more than the caller's 16 */
  MUTATE(100, 2, SJ_ETRUNC);  /* nkeys 2, bytes for 1 */
  MUTATE(101, 0, SJ_EFORMAT); /* key type 0 */
  MUTATE(101, 5, SJ_EFORMAT); /* unknown key type */
  MUTATE(101, SJ_KEY_PERSON, SJ_EFORMAT); /* person keys are 32 bytes */
  MUTATE(103, 19, SJ_ETRUNC);             /* key longer than the bytes present */
  MUTATE(103, 17, SJ_EFORMAT);            /* shorter: a trailing byte */
  MUTATE(103, 0, SJ_EFORMAT);             /* empty key */
  memcpy(t, raw, n);
  sj_put_be16(t + 102, SJ_ENTRY_MAX_KEY_LEN + 1);
  ck_assert_int_eq(decode_exact(t, n, 16), SJ_EFORMAT);
  memcpy(t, raw, n);
  sj_put_be16(t + 99, SJ_ENTRY_MAX_KEYS + 1);
  ck_assert_int_eq(decode_exact(t, n, 16), SJ_EFORMAT);
  memcpy(t, raw, n);
  sj_put_be16(t + 99, 0xffff);
  ck_assert_int_eq(decode_exact(t, n, 16), SJ_EFORMAT);
  memcpy(t, raw, n);
  sj_put_be32(t + 1, 99999); /* region not six digits */
  ck_assert_int_eq(decode_exact(t, n, 16), SJ_EFORMAT);
  sj_put_be32(t + 1, 1000000);
  ck_assert_int_eq(decode_exact(t, n, 16), SJ_EFORMAT);
  MUTATE(40, 1, SJ_EFORMAT);                             /* seq 0 with a non-zero prev */
  ck_assert_int_eq(decode_exact(raw, n, 0), SJ_ETOOBIG); /* more keys than the caller's array */
  ck_assert_int_eq(sj_entry_decode(raw, SJ_ENTRY_MAX_HEADER + 1, NULL, NULL, 0), SJ_ETOOBIG);
#undef MUTATE
}
END_TEST

START_TEST(entry_decode_survives_garbage_and_mutations) {
  uint8_t buf[600];
  int ok = 0;
  for (int i = 0; i < 4000; i++) {
    size_t n = (size_t)(rnd() % 400);
    for (size_t k = 0; k < n; k++)
      buf[k] = (uint8_t)rnd();
    if (n && (i & 1))
      buf[0] = SJ_ENTRY_VERSION; /* get past the version byte half the time */
    ck_assert_int_ne(decode_exact(buf, n, 16), 0);
  }
  for (int i = 0; i < 4000; i++) { /* valid headers with one to four random byte changes */
    size_t n = vector_bytes(i % 3, buf, sizeof buf);
    int changes = 1 + (int)(rnd() % 4);
    for (int c = 0; c < changes; c++)
      buf[rnd() % n] = (uint8_t)rnd();
    if (decode_exact(buf, n, 16) == 0)
      ok++;
  }
  ck_assert_int_gt(ok, 0); /* some mutations (time, hashes) stay valid */
}
END_TEST

START_TEST(entry_encode_refuses_out_of_range_fields) {
  uint8_t raw[512];
  size_t n = vector_bytes(2, raw, sizeof raw);
  sj_entry_header_t good, h;
  sj_index_key_t keys[4];
  ck_assert_int_eq(sj_entry_decode(raw, n, &good, keys, 4), 0);
  sj_buf_t b = {0};
  h = good, h.version = 2;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h = good, h.region = 12345;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h = good, h.kind = 9;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h = good, h.disclosure = 7;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h = good, h.type_len = 0;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h = good, h.type_len = 65;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h = good, h.seq = 0; /* prev is 0x11... */
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h = good, h.nkeys = SJ_ENTRY_MAX_KEYS + 1;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  sj_index_key_t bad[2] = {keys[0], keys[1]};
  h = good, h.keys = bad;
  bad[1].len = 0;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  bad[1].len = SJ_ENTRY_MAX_KEY_LEN + 1;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  bad[1] = keys[1], bad[1].type = 0;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  ck_assert_uint_eq(b.n, 0); /* nothing appended by a refused encode */
  /* the largest headers: 1024 keys of 1024 bytes exceed SJ_ENTRY_MAX_HEADER */
  static uint8_t big[SJ_ENTRY_MAX_KEY_LEN];
  memset(big, 'A', sizeof big);
  sj_index_key_t *many = calloc(SJ_ENTRY_MAX_KEYS, sizeof *many);
  ck_assert_ptr_nonnull(many);
  for (int i = 0; i < SJ_ENTRY_MAX_KEYS; i++)
    many[i] = (sj_index_key_t){SJ_KEY_OTHER_ID, SJ_ENTRY_MAX_KEY_LEN, big};
  h = good, h.keys = many, h.nkeys = SJ_ENTRY_MAX_KEYS;
  ck_assert_int_eq(sj_entry_encode(&h, &b), SJ_EINVAL);
  h.nkeys = 1000; /* about 1,027,000 bytes: fits, and decodes back */
  ck_assert_int_eq(sj_entry_encode(&h, &b), 0);
  sj_index_key_t *back = calloc(1000, sizeof *back);
  ck_assert_int_eq(sj_entry_decode(b.p, b.n, &h, back, 1000), 0);
  ck_assert_uint_eq(h.nkeys, 1000);
  ck_assert_mem_eq(back[999].p, big, SJ_ENTRY_MAX_KEY_LEN);
  free(back);
  free(many);
  sj_buf_deinit(&b);
}
END_TEST

/* ---- Frames ---------------------------------------------------------------------------------- */

START_TEST(frames_round_trip_and_wait_for_more_bytes) {
  sj_buf_t b = {0};
  const uint8_t hdr[] = {1, 2, 3}, body[] = "hello";
  ck_assert_int_eq(sj_frame_append(&b, hdr, 3, body, 5, 1), 0);
  ck_assert_int_eq(sj_frame_append(&b, hdr, 3, NULL, 0, 0), 0);
  ck_assert_int_eq(sj_frame_append(&b, hdr, 2, body, 0, 1), 0);
  const uint8_t want[] = {0,    0,   0,   3, 1, 2, 3, 0, 0, 0, 5,    'h',  'e',
                          'l',  'l', 'o', 0, 0, 0, 3, 1, 2, 3, 0xff, 0xff, 0xff,
                          0xff, 0,   0,   0, 2, 1, 2, 0, 0, 0, 0};
  ck_assert_uint_eq(b.n, sizeof want);
  ck_assert_mem_eq(b.p, want, sizeof want);
  sj_bytes_t h, bd;
  int has = -1;
  for (size_t cut = 0; cut < 16; cut++) /* a frame split anywhere: wait for more */
    ck_assert_int_eq(sj_frame_next(b.p, cut, 100, &h, &bd, &has), 0);
  ck_assert_int_eq(has, -1);
  ck_assert_int_eq(sj_frame_next(b.p, b.n, 100, &h, &bd, &has), 16);
  ck_assert_int_eq(has, 1);
  ck_assert_uint_eq(h.n, 3);
  ck_assert_mem_eq(bd.p, "hello", 5);
  ck_assert_int_eq(sj_frame_next(b.p + 16, b.n - 16, 100, &h, &bd, &has), 11);
  ck_assert_int_eq(has, 0);
  ck_assert_uint_eq(bd.n, 0);
  ck_assert_int_eq(sj_frame_next(b.p + 27, b.n - 27, 100, &h, &bd, &has), 10);
  ck_assert_int_eq(has, 1);
  ck_assert_uint_eq(bd.n, 0);
  ck_assert_int_eq(sj_frame_next(b.p, b.n, 4, &h, &bd, &has), SJ_ETOOBIG); /* body over max */
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(frames_refuse_bad_lengths) {
  uint8_t p[16] = {0, 0, 0, 0};
  sj_bytes_t h, bd;
  int has;
  ck_assert_int_eq(sj_frame_next(p, 4, 100, &h, &bd, &has), SJ_EFORMAT); /* empty header */
  sj_put_be32(p, SJ_ENTRY_MAX_HEADER + 1);
  ck_assert_int_eq(sj_frame_next(p, 4, 100, &h, &bd, &has), SJ_ETOOBIG);
  sj_put_be32(p, SJ_ENTRY_MAX_HEADER); /* large but allowed: wait for it */
  ck_assert_int_eq(sj_frame_next(p, 16, 100, &h, &bd, &has), 0);
  sj_buf_t b = {0};
  ck_assert_int_eq(sj_frame_append(&b, p, 0, NULL, 0, 0), SJ_EINVAL);
  ck_assert_int_eq(sj_frame_append(&b, p, SJ_ENTRY_MAX_HEADER + 1, NULL, 0, 0), SJ_EINVAL);
  ck_assert_uint_eq(b.n, 0);
  sj_buf_deinit(&b);
}
END_TEST

/* ---- Keys ------------------------------------------------------------------------------------ */

static sj_signer_t *parse_signer(const char *text) {
  sj_signer_t *s = NULL;
  ck_assert_int_eq(sj_signer_parse(text, strlen(text), &s), 0);
  return s;
}

static sj_verifier_t *parse_verifier(const char *text) {
  sj_verifier_t *v = NULL;
  ck_assert_int_eq(sj_verifier_parse(text, strlen(text), &v), 0);
  return v;
}

/* Formats with fn into a fresh buffer and compares with want. */
#define ASSERT_FORMATS(call, want)                                                                 \
  do {                                                                                             \
    sj_buf_t b_ = {0};                                                                             \
    ck_assert_int_eq(call, 0);                                                                     \
    ck_assert_uint_eq(b_.n, strlen(want));                                                         \
    ck_assert_mem_eq(b_.p, want, b_.n);                                                            \
    sj_buf_deinit(&b_);                                                                            \
  } while (0)

START_TEST(keys_parse_and_format_the_vector_keys) {
  json_t *j = load_vectors("signed-note/vectors.json");
  const char *who[2][2] = {{"signer_skey", "signer_vkey"}, {"other_skey", "other_vkey"}};
  for (int i = 0; i < 2; i++) {
    const char *skey = jstr(j, who[i][0]), *vkey = jstr(j, who[i][1]);
    sj_signer_t *s = parse_signer(skey);
    ASSERT_FORMATS(sj_signer_format(s, &b_), skey);
    ASSERT_FORMATS(sj_signer_vkey(s, SJ_KEY_ED25519, &b_), vkey);
    sj_verifier_t *v = parse_verifier(vkey);
    ASSERT_FORMATS(sj_verifier_format(v, &b_), vkey);
    ck_assert_int_eq(sj_verifier_type(v), SJ_KEY_ED25519);
    ck_assert_str_eq(sj_verifier_name(v), sj_signer_name(s));
    sj_verifier_free(v);
    sj_signer_free(s);
  }
  sj_verifier_t *v = parse_verifier(jstr(j, "signer_vkey"));
  ck_assert_str_eq(sj_verifier_name(v), "example.test/log/310000");
  ck_assert_uint_eq(sj_verifier_key_id(v), 0xf1b216d9u);
  sj_verifier_free(v);
  json_decref(j);
}
END_TEST

START_TEST(keys_generate_format_parse_round_trip) {
  sj_signer_t *s = NULL, *s2 = NULL;
  ck_assert_int_eq(sj_signer_generate("sanjiao.test/log/340000", &s), 0);
  ck_assert_str_eq(sj_signer_name(s), "sanjiao.test/log/340000");
  sj_buf_t sk = {0}, vk = {0}, vk2 = {0};
  ck_assert_int_eq(sj_signer_format(s, &sk), 0);
  ck_assert_int_eq(strncmp((char *)sk.p, "PRIVATE+KEY+sanjiao.test/log/340000+", 36), 0);
  ck_assert_int_eq(sj_buf_append_str(&sk, "\n"), 0); /* a key file's newline is fine */
  ck_assert_int_eq(sj_signer_parse((char *)sk.p, sk.n, &s2), 0);
  for (int type = SJ_KEY_ED25519; type <= SJ_KEY_COSIGNATURE_V1; type += 3) {
    sj_buf_reset(&vk);
    sj_buf_reset(&vk2);
    ck_assert_int_eq(sj_signer_vkey(s, type, &vk), 0);
    ck_assert_int_eq(sj_signer_vkey(s2, type, &vk2), 0);
    ck_assert_uint_eq(vk.n, vk2.n);
    ck_assert_mem_eq(vk.p, vk2.p, vk.n);
    sj_verifier_t *v = parse_verifier((char *)vk.p), *v2 = NULL, *v3 = NULL;
    ck_assert_int_eq(sj_verifier_type(v), type);
    ck_assert_int_eq(sj_signer_verifier(s, type, &v2), 0);
    ck_assert_uint_eq(sj_verifier_key_id(v2), sj_verifier_key_id(v));
    /* derive the other type: same key id as the signer's own verifier key of that type */
    int other = type == SJ_KEY_ED25519 ? SJ_KEY_COSIGNATURE_V1 : SJ_KEY_ED25519;
    ck_assert_int_eq(sj_verifier_derive(v, other, &v3), 0);
    sj_buf_t f = {0};
    ck_assert_int_eq(sj_signer_vkey(s, other, &f), 0);
    ASSERT_FORMATS(sj_verifier_format(v3, &b_), (char *)f.p);
    ck_assert_uint_ne(sj_verifier_key_id(v3), sj_verifier_key_id(v));
    sj_buf_deinit(&f);
    sj_verifier_free(v);
    sj_verifier_free(v2);
    sj_verifier_free(v3);
  }
  /* a note signed with the parsed key verifies with the generated key's verifier */
  sj_verifier_t *v = NULL;
  ck_assert_int_eq(sj_signer_verifier(s, SJ_KEY_ED25519, &v), 0);
  sj_buf_t note = {0};
  const sj_signer_t *signers[] = {s2};
  ck_assert_int_eq(sj_note_sign("hello\n", 6, signers, 1, &note), 0);
  const sj_verifier_t *vs[] = {v};
  ck_assert_int_eq(sj_note_verify((char *)note.p, note.n, vs, 1, NULL, NULL), 0);
  ck_assert_int_eq(sj_signer_vkey(s, 2, &vk), SJ_EINVAL);
  ck_assert_int_eq(sj_verifier_derive(v, 0, &v), SJ_EINVAL);
  sj_verifier_free(v);
  sj_buf_deinit(&note);
  sodium_memzero(sk.p, sk.n);
  sj_buf_deinit(&sk);
  sj_buf_deinit(&vk);
  sj_buf_deinit(&vk2);
  sj_signer_free(s);
  sj_signer_free(s2);
  sj_signer_free(NULL);
  sj_verifier_free(NULL);
}
END_TEST

START_TEST(keys_with_a_wrong_key_id_are_refused) {
  json_t *j = load_vectors("signed-note/vectors.json");
  char skey[256], vkey[256];
  snprintf(skey, sizeof skey, "%s", jstr(j, "signer_skey"));
  snprintf(vkey, sizeof vkey, "%s", jstr(j, "signer_vkey"));
  char *sid = strstr(skey, "+f1b216d9+"), *vid = strstr(vkey, "+f1b216d9+");
  ck_assert_ptr_nonnull(sid);
  ck_assert_ptr_nonnull(vid);
  sj_signer_t *s = (sj_signer_t *)&s;
  sj_verifier_t *v = (sj_verifier_t *)&v;
  for (int pos = 1; pos <= 8; pos++) {
    char save = sid[pos];
    sid[pos] = save == '0' ? '1' : '0';
    vid[pos] = sid[pos];
    ck_assert_int_eq(sj_signer_parse(skey, strlen(skey), &s), SJ_EVERIFY);
    ck_assert_int_eq(sj_verifier_parse(vkey, strlen(vkey), &v), SJ_EVERIFY);
    sid[pos] = vid[pos] = save;
  }
  ck_assert_ptr_eq(s, (sj_signer_t *)&s); /* out untouched */
  ck_assert_ptr_eq(v, (sj_verifier_t *)&v);
  /* the cosignature key: type 0x01 with the 0x04 key id is refused, and the other way round */
  json_t *c = load_vectors("signed-note/cosignature-vectors.json");
  snprintf(vkey, sizeof vkey, "%s", jstr(c, "cosigner_vkey"));
  char *b64 = strstr(vkey, "+010b7f6f+") + 10; /* base64 may hold '+' too */
  ck_assert_mem_eq(b64, "BK", 2);              /* 0x04, then the key's first byte 0xa1 */
  memcpy(b64, "Aa", 2); /* 0x01 and the same key: the 0x04 key id no longer matches */
  ck_assert_int_eq(sj_verifier_parse(vkey, strlen(vkey), &v), SJ_EVERIFY);
  memcpy(b64, "AK", 2); /* type 0x00: unknown */
  ck_assert_int_eq(sj_verifier_parse(vkey, strlen(vkey), &v), SJ_EFORMAT);
  ck_assert_ptr_eq(v, (sj_verifier_t *)&v);
  json_decref(c);
  json_decref(j);
}
END_TEST

START_TEST(keys_malformed_texts_are_refused) {
  static const char *bad_vkeys[] = {
      "",
      "example.test+f1b216d9",
      "example.test+f1b216d9+",
      "example.test+f1b216d+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB",
      "example.test+f1b216dg+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB",
      "+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB",
      "exa mple+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB",
      "example.test+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6U",
      "example.test+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UBAA==",
      "example.test+f1b216d9+Av/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB", /* type 0x02 */
      "example.test+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6U!",
  };
  for (size_t i = 0; i < sizeof bad_vkeys / sizeof bad_vkeys[0]; i++) {
    sj_verifier_t *v = NULL;
    ck_assert_msg(sj_verifier_parse(bad_vkeys[i], strlen(bad_vkeys[i]), &v) == SJ_EFORMAT,
                  "accepted %s", bad_vkeys[i]);
    ck_assert_ptr_null(v);
  }
  static const char *bad_skeys[] = {
      "PRIVATE+KEY+",
      "PRIVATE+KEYS+example.test/log/310000+f1b216d9+AYRRnjaO1+jroHK6BW5qbQ5fq6kbfl8n/+Ehq6MXq+v1",
      "example.test/log/310000+f1b216d9+AYRRnjaO1+jroHK6BW5qbQ5fq6kbfl8n/+Ehq6MXq+v1",
      "PRIVATE+KEY+example.test/log/310000+f1b216d9+BIRRnjaO1+jroHK6BW5qbQ5fq6kbfl8n/+Ehq6MXq+v1",
      "PRIVATE+KEY+example.test/log/310000+f1b216d9+AYRRnjaO1+jroHK6BW5qbQ5fq6kbfl8n/+Ehq6MXq+v",
  };
  for (size_t i = 0; i < sizeof bad_skeys / sizeof bad_skeys[0]; i++) {
    sj_signer_t *s = NULL;
    ck_assert_msg(sj_signer_parse(bad_skeys[i], strlen(bad_skeys[i]), &s) == SJ_EFORMAT,
                  "accepted %s", bad_skeys[i]);
    ck_assert_ptr_null(s);
  }
  static const char *bad_names[] = {"", "a b", "a+b", "a\tb", "a\nb", "caf\xc3", "\xe3\x80\x80"};
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
    sj_signer_t *s = NULL;
    ck_assert_int_eq(sj_signer_generate(bad_names[i], &s), SJ_EINVAL);
  }
  char longname[300];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  sj_signer_t *s = NULL;
  ck_assert_int_eq(sj_signer_generate(longname, &s), SJ_EINVAL);
  ck_assert_int_eq(sj_signer_generate("\xe4\xb8\x8a\xe6\xb5\xb7/log", &s), 0); /* UTF-8 is fine */
  sj_signer_free(s);
  /* surrounding whitespace around a verifier key is accepted */
  const char *padded =
      "  example.test/log/310000+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB\r\n";
  sj_verifier_t *v = parse_verifier(padded);
  sj_verifier_free(v);
  /* but a NUL is not whitespace */
  static const char nul[] =
      "\0example.test/log/310000+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB";
  v = NULL;
  ck_assert_int_eq(sj_verifier_parse(nul, sizeof nul - 1, &v), SJ_EFORMAT);
  ck_assert_int_eq(sj_verifier_parse(nul + 1, sizeof nul - 2, &v), 0);
  sj_verifier_free(v);
}
END_TEST

/* ---- Signed notes ---------------------------------------------------------------------------- */

START_TEST(notes_signed_with_the_vector_keys_are_byte_identical) {
  json_t *j = load_vectors("signed-note/vectors.json");
  sj_signer_t *a = parse_signer(jstr(j, "signer_skey")), *b = parse_signer(jstr(j, "other_skey"));
  const char *text = jstr(j, "checkpoint_text");
  const sj_signer_t *one[] = {a}, *both[] = {a, b};
  ASSERT_FORMATS(sj_note_sign(text, strlen(text), one, 1, &b_), jstr(j, "signed_by_signer"));
  ASSERT_FORMATS(sj_note_sign(text, strlen(text), both, 2, &b_), jstr(j, "signed_by_both"));
  sj_signer_free(a);
  sj_signer_free(b);
  json_decref(j);
}
END_TEST

START_TEST(notes_verify_known_keys_and_ignore_unknown_ones) {
  json_t *j = load_vectors("signed-note/vectors.json");
  sj_verifier_t *va = parse_verifier(jstr(j, "signer_vkey")),
                *vb = parse_verifier(jstr(j, "other_vkey"));
  sj_signer_t *stranger = NULL;
  sj_verifier_t *vs = NULL, *va_cosig = NULL;
  ck_assert_int_eq(sj_signer_generate("example.test/log/310000", &stranger), 0);
  ck_assert_int_eq(sj_signer_verifier(stranger, SJ_KEY_ED25519, &vs), 0);
  ck_assert_int_eq(sj_verifier_derive(va, SJ_KEY_COSIGNATURE_V1, &va_cosig), 0);
  const char *both = jstr(j, "signed_by_both"), *one = jstr(j, "signed_by_signer");
  const char *text = jstr(j, "checkpoint_text");
  size_t tl = 0;
  uint64_t bits = 0;
  const sj_verifier_t *all[] = {va, vb, vs};
  ck_assert_int_eq(sj_note_verify(both, strlen(both), all, 3, &tl, &bits), 0);
  ck_assert_uint_eq(tl, strlen(text));
  ck_assert_uint_eq(bits, 3);
  const sj_verifier_t *only_b[] = {vb};
  ck_assert_int_eq(sj_note_verify(both, strlen(both), only_b, 1, NULL, &bits), 0);
  ck_assert_uint_eq(bits, 1);
  ck_assert_int_eq(sj_note_verify(one, strlen(one), only_b, 1, NULL, NULL), SJ_EVERIFY);
  /* same name, another key (another key id): ignored, so nobody known signed */
  const sj_verifier_t *only_s[] = {vs};
  ck_assert_int_eq(sj_note_verify(one, strlen(one), only_s, 1, NULL, NULL), SJ_EVERIFY);
  /* same key as a cosignature verifier: another key id, ignored too */
  const sj_verifier_t *only_c[] = {va_cosig};
  ck_assert_int_eq(sj_note_verify(one, strlen(one), only_c, 1, NULL, NULL), SJ_EVERIFY);
  ck_assert_int_eq(sj_note_verify(one, strlen(one), all, 0, NULL, NULL), SJ_EVERIFY);
  ck_assert_int_eq(sj_note_verify(one, strlen(one), all, 65, NULL, NULL), SJ_EINVAL);
  sj_verifier_free(vs);
  sj_verifier_free(va_cosig);
  sj_signer_free(stranger);
  sj_verifier_free(va);
  sj_verifier_free(vb);
  json_decref(j);
}
END_TEST

/* Replaces the first occurrence of from with to in s (a buffer of cap bytes). */
static void replace(char *s, size_t cap, const char *from, const char *to) {
  char *at = strstr(s, from);
  ck_assert_ptr_nonnull(at);
  size_t fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
  ck_assert_uint_lt((size_t)(at - s) + tl + rest, cap);
  memmove(at + tl, at + fl, rest + 1);
  memcpy(at, to, tl);
}

START_TEST(notes_with_a_bad_signature_by_a_known_key_are_refused) {
  json_t *j = load_vectors("signed-note/vectors.json");
  sj_verifier_t *va = parse_verifier(jstr(j, "signer_vkey")),
                *vb = parse_verifier(jstr(j, "other_vkey"));
  const sj_verifier_t *vs[] = {va, vb}, *only_a[] = {va};
  char note[1024];
  /* the text changed: every signature is bad */
  snprintf(note, sizeof note, "%s", jstr(j, "signed_by_both"));
  replace(note, sizeof note, "\n8\n", "\n9\n");
  ck_assert_int_eq(sj_note_verify(note, strlen(note), vs, 2, NULL, NULL), SJ_EVERIFY);
  /* the second signature damaged: refused by a verifier knowing it, fine for one that does not */
  snprintf(note, sizeof note, "%s", jstr(j, "signed_by_both"));
  replace(note, sizeof note, "LMsxRh0LpEQ6", "LMsxRh0LpEQ7");
  ck_assert_int_eq(sj_note_verify(note, strlen(note), vs, 2, NULL, NULL), SJ_EVERIFY);
  ck_assert_int_eq(sj_note_verify(note, strlen(note), only_a, 1, NULL, NULL), 0);
  /* a known key id and name with a signature of the wrong length */
  snprintf(note, sizeof note, "%s", jstr(j, "signed_by_both"));
  replace(note, sizeof note, "LMsxRh0LpEQ6", "LMsxRh0LpEQ6AAAA");
  ck_assert_int_eq(sj_note_verify(note, strlen(note), vs, 2, NULL, NULL), SJ_EVERIFY);
  snprintf(note, sizeof note,
           "%s"
           "\xe2\x80\x94 example.test/log/310000 8bIW2UQ=\n",
           jstr(j, "signed_by_signer"));
  ck_assert_int_eq(sj_note_verify(note, strlen(note), only_a, 1, NULL, NULL), SJ_EVERIFY);
  sj_verifier_free(va);
  sj_verifier_free(vb);
  json_decref(j);
}
END_TEST

START_TEST(notes_malformed_are_refused) {
  json_t *j = load_vectors("signed-note/vectors.json");
  sj_verifier_t *va = parse_verifier(jstr(j, "signer_vkey"));
  const sj_verifier_t *vs[] = {va};
  const char *good = jstr(j, "signed_by_signer");
  const char *sig = strstr(good, "\xe2\x80\x94");
  ck_assert_ptr_nonnull(sig);
  char line[256];
  snprintf(line, sizeof line, "%s", sig); /* "— example.test/log/310000 8bIW...=\n" */
  static const struct {
    const char *from, *to;
  } edits[] = {
      {"=\n\n\xe2\x80\x94", "=\n\xe2\x80\x94"}, /* no blank line */
      {"\xe2\x80\x94 ", "-- "},                 /* not an em dash */
      {"\xe2\x80\x94 ", "\xe2\x80\x94"},        /* no space after the dash */
      {"310000 8bIW", "310000\t8bIW"},          /* no space before the signature */
      {"310000 8bIW", "310000  8bIW"},          /* empty name... or empty base64 */
      {"8bIW2UTG", "8bIW2UT"},                  /* base64 length */
      {"8bIW2UTG", "8bIW2UT*"},                 /* base64 alphabet */
      {"QsyeQ8=\n", "QsyeQ8=\n\n"},             /* empty line at the end */
      {"QsyeQ8=\n", "QsyeQ8="},                 /* no final newline */
      {"example.test/log/310000\n8", "example.test/log/310000\r\n8"}, /* control character */
      {"example.test/log/310000\n8", "example.test/log/310000\t\n8"},
      {"example.test/log/310000\n8", "example.test/log/\xff\n8"},         /* not UTF-8 */
      {"example.test/log/310000\n8", "example.test/log/\xc0\xaf\n8"},     /* overlong */
      {"example.test/log/310000\n8", "example.test/log/\xed\xa0\x80\n8"}, /* surrogate */
      {"example.test/log/310000\n8", "example.test/log/\xe2\x80\n8"},     /* truncated */
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    char note[1024];
    snprintf(note, sizeof note, "%s", good);
    replace(note, sizeof note, edits[i].from, edits[i].to);
    size_t tl = 1234, so = 5678;
    ck_assert_msg(sj_note_verify(note, strlen(note), vs, 1, NULL, NULL) == SJ_EFORMAT,
                  "edit %zu accepted", i);
    ck_assert_int_eq(sj_note_split(note, strlen(note), &tl, &so), SJ_EFORMAT);
    ck_assert_uint_eq(tl, 1234);
  }
  size_t tl, so;
  ck_assert_int_eq(sj_note_split(good, strlen(good), &tl, &so), 0);
  ck_assert_uint_eq(tl, strlen(jstr(j, "checkpoint_text")));
  ck_assert_uint_eq(so, tl + 1);
  ck_assert_int_eq(sj_note_split("", 0, &tl, &so), SJ_EFORMAT);
  ck_assert_int_eq(sj_note_split("\n\n", 2, &tl, &so), SJ_EFORMAT);
  ck_assert_int_eq(sj_note_split("a\n\n", 3, &tl, &so), SJ_EFORMAT);
  /* 100 signature lines are accepted, 101 are not */
  size_t cap = strlen(good) + 101 * strlen(line) + 1;
  char *many = malloc(cap);
  ck_assert_ptr_nonnull(many);
  strcpy(many, good);
  for (int i = 1; i < 100; i++)
    strcat(many, line);
  ck_assert_int_eq(sj_note_verify(many, strlen(many), vs, 1, NULL, NULL), 0);
  strcat(many, line);
  ck_assert_int_eq(sj_note_verify(many, strlen(many), vs, 1, NULL, NULL), SJ_EFORMAT);
  /* a signature line over 1024 bytes (by an unknown key: still refused) */
  strcpy(many, good);
  strcat(many, "\xe2\x80\x94 x ");
  for (int i = 0; i < 260; i++)
    strcat(many, "AAAA");
  strcat(many, "\n");
  ck_assert_int_eq(sj_note_verify(many, strlen(many), vs, 1, NULL, NULL), SJ_EFORMAT);
  free(many);
  /* signing refuses texts that are not note texts */
  sj_signer_t *s = parse_signer(jstr(j, "signer_skey"));
  const sj_signer_t *ss[] = {s};
  sj_buf_t out = {0};
  ck_assert_int_eq(sj_note_sign("", 0, ss, 1, &out), SJ_EFORMAT);
  ck_assert_int_eq(sj_note_sign("no newline", 10, ss, 1, &out), SJ_EFORMAT);
  ck_assert_int_eq(sj_note_sign("a\rb\n", 4, ss, 1, &out), SJ_EFORMAT);
  ck_assert_int_eq(sj_note_sign("ok\n", 3, ss, 0, &out), SJ_EINVAL);
  ck_assert_uint_eq(out.n, 0);
  /* a text that itself holds a blank line still splits at the signature block */
  ck_assert_int_eq(sj_note_sign("a\n\nb\n", 5, ss, 1, &out), 0);
  ck_assert_int_eq(sj_note_verify((char *)out.p, out.n, vs, 1, &tl, NULL), 0);
  ck_assert_uint_eq(tl, 5);
  sj_buf_deinit(&out);
  sj_signer_free(s);
  sj_verifier_free(va);
  json_decref(j);
}
END_TEST

/* ---- Checkpoints ----------------------------------------------------------------------------- */

START_TEST(checkpoints_parse_and_format_round_trip) {
  json_t *j = load_vectors("signed-note/vectors.json");
  const char *text = jstr(j, "checkpoint_text");
  sj_checkpoint_t c;
  ck_assert_int_eq(sj_checkpoint_parse(text, strlen(text), &c), 0);
  ck_assert_str_eq(c.origin, "example.test/log/310000");
  ck_assert_uint_eq(c.size, 8);
  uint8_t root[SJ_HASH_LEN];
  size_t rl;
  ck_assert_int_eq(
      sj_base64_decode("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", 44, root, 32, &rl), 0);
  ck_assert_mem_eq(c.root, root, 32);
  ASSERT_FORMATS(sj_checkpoint_format(&c, &b_), text);
  /* extension lines are allowed and ignored; the largest size parses */
  const char *ext =
      "o\n18446744073709551615\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\nx y\nz\n";
  ck_assert_int_eq(sj_checkpoint_parse(ext, strlen(ext), &c), 0);
  ck_assert_uint_eq(c.size, UINT64_MAX);
  ck_assert_str_eq(c.origin, "o");
  const char *zero = "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
  ck_assert_int_eq(sj_checkpoint_parse(zero, strlen(zero), &c), 0);
  ck_assert_uint_eq(c.size, 0);
  sj_checkpoint_t bad = c;
  bad.origin[0] = 0;
  sj_buf_t b = {0};
  ck_assert_int_eq(sj_checkpoint_format(&bad, &b), SJ_EINVAL);
  bad = c;
  strcpy(bad.origin, "a\nb");
  ck_assert_int_eq(sj_checkpoint_format(&bad, &b), SJ_EINVAL);
  memset(bad.origin, 'x', sizeof bad.origin); /* not NUL-terminated */
  ck_assert_int_eq(sj_checkpoint_format(&bad, &b), SJ_EINVAL);
  ck_assert_uint_eq(b.n, 0);
  json_decref(j);
}
END_TEST

START_TEST(checkpoints_malformed_are_refused) {
  static const char *bad[] = {
      "",
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",    /* no final newline */
      "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",   /* empty origin */
      "o\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", /* leading zero */
      "o\n00\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      "o\n\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",   /* empty size */
      "o\n+8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", /* sign */
      "o\n-8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      "o\n 8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", /* space */
      "o\n8 \nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      "o\n0x8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      "o\n18446744073709551616\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", /* 2^64 */
      "o\n99999999999999999999\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQ==\n",  /* 31 bytes */
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQygA\n", /* 33 bytes */
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n", /* non-canonical */
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\n",  /* unpadded */
      "o\n8\n\n",                                             /* no root */
      "o\n8\n",
      "o\n",
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n",   /* empty extension line */
      "o\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\next",  /* unterminated extension */
      "o\t\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",   /* control character */
      "o\xff\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", /* not UTF-8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sj_checkpoint_t c;
    memset(&c, 0x5a, sizeof c);
    ck_assert_msg(sj_checkpoint_parse(bad[i], strlen(bad[i]), &c) == SJ_EFORMAT, "accepted #%zu",
                  i);
    ck_assert_uint_eq(c.size, 0x5a5a5a5a5a5a5a5aull);
  }
  char text[400];
  memset(text, 'o', 256); /* origin of 256 bytes: one too many */
  snprintf(text + 256, sizeof text - 256, "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n");
  sj_checkpoint_t c;
  ck_assert_int_eq(sj_checkpoint_parse(text, strlen(text), &c), SJ_EFORMAT);
  ck_assert_int_eq(sj_checkpoint_parse(text + 1, strlen(text + 1), &c), 0);
  ck_assert_uint_eq(strlen(c.origin), 255);
}
END_TEST

/* ---- Cosignatures ---------------------------------------------------------------------------- */

static sj_signer_t *cosigner(json_t *c) {
  uint8_t seed[32];
  unhex(jstr(c, "cosigner_ed25519_seed_hex"), seed, 32);
  sj_signer_t *s = NULL;
  ck_assert_int_eq(sj_signer_from_seed(jstr(c, "cosigner_name"), seed, &s), 0);
  return s;
}

START_TEST(cosignatures_match_the_vectors) {
  json_t *c = load_vectors("signed-note/cosignature-vectors.json");
  sj_signer_t *s = cosigner(c);
  ASSERT_FORMATS(sj_signer_vkey(s, SJ_KEY_COSIGNATURE_V1, &b_), jstr(c, "cosigner_vkey"));
  const char *text = jstr(c, "checkpoint_text");
  uint64_t ts = (uint64_t)json_integer_value(json_object_get(c, "timestamp"));
  ck_assert_uint_eq(ts, 1764201600u);
  ASSERT_FORMATS(sj_cosign(s, text, strlen(text), ts, &b_), jstr(c, "cosignature_line"));
  sj_verifier_t *v = parse_verifier(jstr(c, "cosigner_vkey"));
  ck_assert_uint_eq(sj_verifier_key_id(v), 0x010b7f6fu);
  uint8_t pub[32];
  unhex(jstr(c, "cosigner_public_key_hex"), pub, 32);
  const char *line = jstr(c, "cosignature_line");
  uint64_t got = 0;
  ck_assert_int_eq(sj_cosig_verify(v, text, strlen(text), line, strlen(line), &got), 0);
  ck_assert_uint_eq(got, ts);
  got = 0;
  ck_assert_int_eq(sj_cosig_verify(v, text, strlen(text), line, strlen(line) - 1, &got), 0);
  ck_assert_uint_eq(got, ts);
  sj_verifier_free(v);
  sj_signer_free(s);
  json_decref(c);
}
END_TEST

START_TEST(cosigned_checkpoints_verify_with_the_log_key_alone_and_with_the_witness) {
  json_t *c = load_vectors("signed-note/cosignature-vectors.json");
  json_t *j = load_vectors("signed-note/vectors.json");
  const char *note = jstr(c, "checkpoint_signed_and_cosigned");
  sj_verifier_t *log = parse_verifier(jstr(j, "signer_vkey"));
  sj_verifier_t *wit = parse_verifier(jstr(c, "cosigner_vkey"));
  const sj_verifier_t *only_log[] = {log}, *both[] = {log, wit}, *only_wit[] = {wit};
  size_t tl;
  uint64_t bits;
  ck_assert_int_eq(sj_note_verify(note, strlen(note), only_log, 1, &tl, &bits), 0);
  ck_assert_uint_eq(bits, 1);
  ck_assert_uint_eq(tl, strlen(jstr(c, "checkpoint_text")));
  ck_assert_int_eq(sj_note_verify(note, strlen(note), both, 2, NULL, &bits), 0);
  ck_assert_uint_eq(bits, 3);
  ck_assert_int_eq(sj_note_verify(note, strlen(note), only_wit, 1, NULL, &bits), 0);
  ck_assert_uint_eq(bits, 1);
  /* the same note with the cosignature's timestamp altered: the witness refuses it */
  char bad[1024];
  snprintf(bad, sizeof bad, "%s", note);
  replace(bad, sizeof bad, "AQt/bwAAAABpJ5SA", "AQt/bwAAAABpJ5SB");
  ck_assert_int_eq(sj_note_verify(bad, strlen(bad), both, 2, NULL, NULL), SJ_EVERIFY);
  ck_assert_int_eq(sj_note_verify(bad, strlen(bad), only_log, 1, NULL, NULL), 0);
  json_decref(j);
  json_decref(c);
  sj_verifier_free(log);
  sj_verifier_free(wit);
}
END_TEST

START_TEST(cosignature_lines_by_others_or_tampered_are_refused) {
  json_t *c = load_vectors("signed-note/cosignature-vectors.json");
  json_t *j = load_vectors("signed-note/vectors.json");
  const char *text = jstr(c, "checkpoint_text");
  sj_verifier_t *wit = parse_verifier(jstr(c, "cosigner_vkey"));
  sj_verifier_t *log = parse_verifier(jstr(j, "signer_vkey")), *log4 = NULL;
  ck_assert_int_eq(sj_verifier_derive(log, SJ_KEY_COSIGNATURE_V1, &log4), 0);
  char line[512];
  snprintf(line, sizeof line, "%s", jstr(c, "cosignature_line"));
  uint64_t ts = 42;
  ck_assert_int_eq(sj_cosig_verify(log4, text, strlen(text), line, strlen(line), &ts),
                   SJ_ENOTFOUND);
  ck_assert_int_eq(sj_cosig_verify(log, text, strlen(text), line, strlen(line), &ts), SJ_EINVAL);
  const char *other_text =
      "example.test/log/310000\n9\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n";
  ck_assert_int_eq(sj_cosig_verify(wit, other_text, strlen(other_text), line, strlen(line), &ts),
                   SJ_EVERIFY);
  replace(line, sizeof line, "AQt/bwAAAABpJ5SA", "AQt/bwAAAABpJ5SB"); /* timestamp + 1 */
  ck_assert_int_eq(sj_cosig_verify(wit, text, strlen(text), line, strlen(line), &ts), SJ_EVERIFY);
  replace(line, sizeof line, "AQt/bwAAAABpJ5SB", "AQt/bwAAAABpJ5S"); /* base64 broken */
  ck_assert_int_eq(sj_cosig_verify(wit, text, strlen(text), line, strlen(line), &ts), SJ_EFORMAT);
  ck_assert_int_eq(sj_cosig_verify(wit, text, strlen(text), "", 0, &ts), SJ_EFORMAT);
  const char *shortsig = "\xe2\x80\x94 example.test/witness/320000 AQt/bwAA\n"; /* 6 bytes */
  ck_assert_int_eq(sj_cosig_verify(wit, text, strlen(text), shortsig, strlen(shortsig), &ts),
                   SJ_EFORMAT);
  ck_assert_uint_eq(ts, 42);
  /* a fresh cosignature by a generated key verifies, and only at its own timestamp */
  sj_signer_t *s = NULL;
  sj_verifier_t *v = NULL;
  sj_buf_t out = {0};
  ck_assert_int_eq(sj_signer_generate("sanjiao.test/witness/330000", &s), 0);
  ck_assert_int_eq(sj_signer_verifier(s, SJ_KEY_COSIGNATURE_V1, &v), 0);
  ck_assert_int_eq(sj_cosign(s, text, strlen(text), UINT64_MAX, &out), 0);
  ck_assert_int_eq(sj_cosig_verify(v, text, strlen(text), (char *)out.p, out.n, &ts), 0);
  ck_assert_uint_eq(ts, UINT64_MAX);
  ck_assert_int_eq(sj_cosign(s, "x", 1, 0, &out), SJ_EFORMAT);
  sj_buf_deinit(&out);
  sj_signer_free(s);
  sj_verifier_free(v);
  sj_verifier_free(wit);
  sj_verifier_free(log);
  sj_verifier_free(log4);
  json_decref(j);
  json_decref(c);
}
END_TEST

/* ---- Suite ----------------------------------------------------------------------------------- */

static TCase *tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_set_timeout(tc, 60);
  return tc;
}

static Suite *crypto_suite(void) {
  Suite *s = suite_create("crypto");
  TCase *tc = tcase("hash");
  tcase_add_test(tc, sha256_matches_known_digests);
  tcase_add_test(tc, hmac_sha256_matches_rfc4231_case2);
  tcase_add_test(tc, leaf_hash_equals_prefixed_sha256_at_every_size);
  suite_add_tcase(s, tc);

  tc = tcase("merkle");
  tcase_add_test(tc, merkle_roots_match_rfc6962_vectors);
  tcase_add_test(tc, merkle_inclusion_proofs_match_rfc6962_vectors);
  tcase_add_test(tc, merkle_consistency_proofs_match_rfc6962_vectors);
  tcase_add_test(tc, merkle_every_proof_up_to_300_verifies_and_equals_rfc_recursion);
  tcase_add_test(tc, merkle_prove_refuses_out_of_range);
  tcase_add_test(tc, merkle_inclusion_tampering_is_refused);
  tcase_add_test(tc, merkle_consistency_tampering_is_refused);
  suite_add_tcase(s, tc);

  tc = tcase("frontier");
  tcase_add_test(tc, frontier_emits_exactly_the_completed_subtrees_and_its_root_is_mth);
  tcase_add_test(tc, frontier_append_aborted_by_emit_leaves_it_unchanged);
  suite_add_tcase(s, tc);

  tc = tcase("base64");
  tcase_add_test(tc, base64_round_trips_and_matches_rfc4648);
  tcase_add_test(tc, base64_decode_is_strict);
  suite_add_tcase(s, tc);

  tc = tcase("entry");
  tcase_add_test(tc, entry_format_vectors_decode_reencode_and_hash);
  tcase_add_test(tc, entry_vector_one_has_the_documented_fields);
  tcase_add_test(tc, entry_decode_rejects_every_truncation_and_trailing_byte);
  tcase_add_test(tc, entry_decode_rejects_bad_fields);
  tcase_add_test(tc, entry_decode_survives_garbage_and_mutations);
  tcase_add_test(tc, entry_encode_refuses_out_of_range_fields);
  suite_add_tcase(s, tc);

  tc = tcase("frame");
  tcase_add_test(tc, frames_round_trip_and_wait_for_more_bytes);
  tcase_add_test(tc, frames_refuse_bad_lengths);
  suite_add_tcase(s, tc);

  tc = tcase("keys");
  tcase_add_test(tc, keys_parse_and_format_the_vector_keys);
  tcase_add_test(tc, keys_generate_format_parse_round_trip);
  tcase_add_test(tc, keys_with_a_wrong_key_id_are_refused);
  tcase_add_test(tc, keys_malformed_texts_are_refused);
  suite_add_tcase(s, tc);

  tc = tcase("note");
  tcase_add_test(tc, notes_signed_with_the_vector_keys_are_byte_identical);
  tcase_add_test(tc, notes_verify_known_keys_and_ignore_unknown_ones);
  tcase_add_test(tc, notes_with_a_bad_signature_by_a_known_key_are_refused);
  tcase_add_test(tc, notes_malformed_are_refused);
  suite_add_tcase(s, tc);

  tc = tcase("checkpoint");
  tcase_add_test(tc, checkpoints_parse_and_format_round_trip);
  tcase_add_test(tc, checkpoints_malformed_are_refused);
  suite_add_tcase(s, tc);

  tc = tcase("cosignature");
  tcase_add_test(tc, cosignatures_match_the_vectors);
  tcase_add_test(tc, cosigned_checkpoints_verify_with_the_log_key_alone_and_with_the_witness);
  tcase_add_test(tc, cosignature_lines_by_others_or_tampered_are_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(crypto_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
