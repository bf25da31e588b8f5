/* fuzz_merkle — RFC 9162 proof verification (crypto/merkle.c): inclusion and consistency proofs
 * come from other nodes, relays and mirrors, and sanjiao verifies them offline.
 *
 * Three modes, chosen by the first byte:
 *   0  raw: any 64-bit index/sizes, any roots, a path of up to 70 hashes taken from the input.
 *      Property: no crash, no undefined behaviour, only 0 or SJ_EVERIFY.
 *   1  inclusion oracle and 2 consistency oracle, in a fixed tree of N leaves whose every
 *      perfect subtree is precomputed: the input picks sizes and an index, the genuine proof is
 *      generated, then mutated by input-driven edits (bit flips, truncation, extra or replaced
 *      hashes, swapped elements, other sizes, index or roots). Property: verification succeeds
 *      exactly when the final (leaf, index, sizes, roots, path) are the genuine ones; so a proof
 *      that verifies is always the true one, and the true one always verifies.
 * At start-up the roots from sj_merkle_root are checked against the frontier's. */
#include "crypto/crypto.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

#define N 300    /* leaves in the oracle tree */
#define LEVELS 9 /* 2^8 = 256 <= N < 2^9 */
#define MAXP 70  /* path lengths tried: a few past SJ_MERKLE_MAX_PATH */

static uint8_t node[LEVELS][N][SJ_HASH_LEN]; /* node[l][i]: perfect subtree (l, i) */
static uint8_t roots[N + 1][SJ_HASH_LEN];    /* roots[s]: MTH of the first s leaves */

static int rd(void *ctx, unsigned level, uint64_t index, uint8_t out[SJ_HASH_LEN]) {
  (void)ctx;
  FUZZ_CHECK(level < LEVELS && ((index + 1) << level) <= N); /* reads stay inside the tree */
  memcpy(out, node[level][index], SJ_HASH_LEN);
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (sj_crypto_init() != 0)
    return -1;
  sj_merkle_frontier_t f;
  sj_merkle_frontier_init(&f);
  sj_merkle_frontier_root(&f, roots[0]);
  for (uint32_t i = 0; i < N; i++) {
    uint8_t b[4];
    sj_put_be32(b, i);
    sj_merkle_leaf_hash(b, sizeof b, node[0][i]);
    FUZZ_CHECK(sj_merkle_frontier_append(&f, node[0][i], NULL, NULL) == 0);
    sj_merkle_frontier_root(&f, roots[i + 1]);
  }
  for (unsigned l = 1; l < LEVELS; l++)
    for (size_t i = 0; ((i + 1) << l) <= N; i++)
      sj_merkle_node_hash(node[l - 1][2 * i], node[l - 1][2 * i + 1], node[l][i]);
  for (uint64_t s = 0; s <= N; s++) {
    uint8_t r[SJ_HASH_LEN];
    FUZZ_CHECK(sj_merkle_root(rd, NULL, s, r) == 0 && memcmp(r, roots[s], SJ_HASH_LEN) == 0);
  }
  return 0;
}

/* ---- Input reader: past the end it yields zeros, so every input is usable. */
typedef struct {
  const uint8_t *p;
  size_t n, off;
} in_t;

static uint8_t u8(in_t *in) {
  return in->off < in->n ? in->p[in->off++] : 0;
}
static uint64_t u64(in_t *in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | u8(in);
  return v;
}
static uint32_t u16(in_t *in) {
  uint32_t hi = u8(in);
  return hi << 8 | u8(in);
}
static void hash(in_t *in, uint8_t out[SJ_HASH_LEN]) {
  for (int i = 0; i < SJ_HASH_LEN; i++)
    out[i] = u8(in);
}

static void raw_mode(in_t *in) {
  static uint8_t path[MAXP][SJ_HASH_LEN];
  uint64_t index = u64(in), size = u64(in);
  uint8_t leaf[SJ_HASH_LEN], r1[SJ_HASH_LEN], r2[SJ_HASH_LEN];
  hash(in, leaf);
  hash(in, r1);
  hash(in, r2);
  size_t np = u8(in) % (MAXP + 1);
  for (size_t i = 0; i < np; i++)
    hash(in, path[i]);
  int rv =
      sj_merkle_verify_inclusion(leaf, index, size, (const uint8_t(*)[SJ_HASH_LEN])path, np, r1);
  FUZZ_CHECK(rv == 0 || rv == SJ_EVERIFY);
  rv = sj_merkle_verify_consistency(index, size, r1, r2, (const uint8_t(*)[SJ_HASH_LEN])path, np);
  FUZZ_CHECK(rv == 0 || rv == SJ_EVERIFY);
}

/* A proof under test. The roots are always those of the claimed sizes (a checkpoint binds a size
 * to its root: pairing a root with another size proves nothing), unless a mask corrupts them. */
typedef struct {
  uint64_t a, b;   /* inclusion: index, size; consistency: first, second */
  uint64_t leafix; /* inclusion: whose leaf hash is presented */
  uint8_t mask[3]; /* bit flips applied to leaf, root1, root2 (0: untouched) */
  uint8_t maskat[3];
  uint8_t path[MAXP][SJ_HASH_LEN];
  size_t np;
} proof_t;

/* The genuine proof for (a, b) in the oracle tree; 0 if there is none (out of range). */
static int genuine(int incl, uint64_t a, uint64_t b, proof_t *g) {
  memset(g, 0, sizeof *g);
  g->a = g->leafix = a;
  g->b = b;
  if (b > N || (incl ? a >= b : a == 0 || a > b))
    return 0;
  int rv = incl ? sj_merkle_prove_inclusion(rd, NULL, a, b, g->path, &g->np)
                : sj_merkle_prove_consistency(rd, NULL, a, b, g->path, &g->np);
  FUZZ_CHECK(rv == 0 && g->np <= SJ_MERKLE_MAX_PATH);
  return 1;
}

/* One input-driven edit of p. The tree size stays within 0..N and the index or first size within
 * 0..N+1, so the oracle can judge. */
static void mutate(in_t *in, proof_t *p) {
  uint8_t op = u8(in) % 9;
  size_t i = p->np ? u8(in) % p->np : 0, j = p->np ? u8(in) % p->np : 0;
  uint8_t tmp[SJ_HASH_LEN];
  switch (op) {
  case 0: /* flip one bit of a path element */
    if (p->np)
      p->path[i][u8(in) % SJ_HASH_LEN] ^= (uint8_t)(1u << (u8(in) % 8));
    break;
  case 1: /* truncate */
    p->np = p->np ? u8(in) % p->np : 0;
    break;
  case 2: /* append a hash: a tree node or input bytes */
    if (p->np < MAXP) {
      uint8_t lv = u8(in) % (LEVELS + 1);
      if (lv)
        memcpy(p->path[p->np++], node[lv - 1][u16(in) % (N >> (lv - 1))], SJ_HASH_LEN);
      else
        hash(in, p->path[p->np++]);
    }
    break;
  case 3: /* replace an element with another tree node */
    if (p->np) {
      uint8_t lv = u8(in) % LEVELS;
      memcpy(p->path[i], node[lv][u16(in) % (N >> lv)], SJ_HASH_LEN);
    }
    break;
  case 4: /* swap two elements */
    memcpy(tmp, p->path[i], SJ_HASH_LEN);
    memcpy(p->path[i], p->path[j], SJ_HASH_LEN);
    memcpy(p->path[j], tmp, SJ_HASH_LEN);
    break;
  case 5: /* another index / first size */
    p->a = u16(in) % (N + 2);
    break;
  case 6: /* another tree size (<= N: a root must exist for it) */
    p->b = u16(in) % (N + 1);
    break;
  case 7: /* flip a bit of the leaf or a root */
    i = u8(in) % 3;
    p->mask[i] ^= (uint8_t)(1u << (u8(in) % 8));
    p->maskat[i] = u8(in) % SJ_HASH_LEN;
    break;
  default: /* present another leaf's hash */
    p->leafix = u16(in) % N;
    break;
  }
}

/* The root of size leaves (only first sizes can exceed N, and those fail before any root is
 * compared), corrupted by mask. */
static void root_of(uint64_t size, uint8_t mask, uint8_t at, uint8_t out[SJ_HASH_LEN]) {
  memcpy(out, roots[size <= N ? size : N], SJ_HASH_LEN);
  out[at] ^= mask;
}

static void oracle_mode(in_t *in, int incl) {
  static proof_t p, g;
  uint64_t b = u16(in) % (N + 1);
  uint64_t a = u16(in) % (b + 2);
  genuine(incl, a, b, &p); /* out of range: an empty proof, still tried */
  for (int k = 0; k < 4 && in->off < in->n; k++)
    mutate(in, &p);
  uint8_t leaf[SJ_HASH_LEN], r1[SJ_HASH_LEN], r2[SJ_HASH_LEN];
  memcpy(leaf, node[0][p.leafix < N ? p.leafix : 0], SJ_HASH_LEN);
  leaf[p.maskat[0]] ^= p.mask[0];
  root_of(incl ? p.b : p.a, p.mask[1], p.maskat[1], r1);
  root_of(p.b, p.mask[2], p.maskat[2], r2);
  const uint8_t(*path)[SJ_HASH_LEN] = (const uint8_t(*)[SJ_HASH_LEN])p.path;
  int rv = incl ? sj_merkle_verify_inclusion(leaf, p.a, p.b, path, p.np, r1)
                : sj_merkle_verify_consistency(p.a, p.b, r1, r2, path, p.np);
  FUZZ_CHECK(rv == 0 || rv == SJ_EVERIFY);
  /* Genuine: in range, the true path, no corruption of what is used, the right leaf. */
  int want = genuine(incl, p.a, p.b, &g) && p.np == g.np &&
             (p.np == 0 || memcmp(p.path, g.path, p.np * SJ_HASH_LEN) == 0) && !p.mask[1] &&
             (incl ? !p.mask[0] && p.leafix == p.a : !p.mask[2]);
  /* Where nothing is hashed, the verifier can only compare what it was given: a one-leaf tree's
   * root is its leaf, and equal sizes need equal roots (both may be corrupted alike). */
  if (incl && p.a == 0 && p.b == 1)
    want = p.np == 0 && memcmp(leaf, r1, SJ_HASH_LEN) == 0;
  if (!incl && p.a != 0 && p.a == p.b && p.b <= N)
    want = p.np == 0 && memcmp(r1, r2, SJ_HASH_LEN) == 0;
  if ((rv == 0) != want) {
    fprintf(stderr, "%s a=%llu b=%llu np=%zu: verify %d, genuine %d\n",
            incl ? "inclusion" : "consistency", (unsigned long long)p.a, (unsigned long long)p.b,
            p.np, rv, want);
    FUZZ_CHECK(0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in_t in = {data, size, 0};
  switch (u8(&in) % 3) {
  case 0:
    raw_mode(&in);
    break;
  case 1:
    oracle_mode(&in, 1);
    break;
  default:
    oracle_mode(&in, 0);
    break;
  }
  return 0;
}
