/* crypto/merkle.c — RFC 9162 §2.1 Merkle tree hashes, inclusion and consistency proofs, their
 * verification, and the right frontier of a growing tree.
 *
 * Trees are read through perfect subtrees (level, index) only. A tree of size n splits into the
 * perfect subtrees given by the set bits of n, largest first; MTH folds them right to left. Every
 * subtree the RFC's recursion visits starts at a multiple of a power of two at least its size, so
 * the same decomposition yields its hash (range_root). */
#include "crypto/crypto_int.h"

#include <string.h>

/* Largest power of two strictly smaller than n (n >= 2): the RFC's k. */
static uint64_t split_point(uint64_t n) {
  uint64_t k = 1;
  while (k < n - k) /* k < n/2 without overflow: stop at the first k with 2k >= n */
    k <<= 1;
  return k;
}

static unsigned log2_exact(uint64_t k) {
  unsigned l = 0;
  while (k > 1) {
    k >>= 1;
    l++;
  }
  return l;
}

/* Hash of leaves [off, off + cnt), cnt >= 1, off a multiple of a power of two >= cnt: its perfect
 * pieces left to right, folded from the right (RFC 9162 §2.1.1). At most 64 reads. */
static int range_root(sj_merkle_read_fn rd, void *ctx, uint64_t off, uint64_t cnt,
                      uint8_t out[SJ_HASH_LEN]) {
  uint8_t piece[64][SJ_HASH_LEN];
  int np = 0, rv;
  for (int b = 63; b >= 0; b--) {
    uint64_t w = (uint64_t)1 << b;
    if (!(cnt & w))
      continue;
    if ((rv = rd(ctx, (unsigned)b, off >> b, piece[np])) != 0)
      return rv;
    np++;
    off += w;
  }
  uint8_t acc[SJ_HASH_LEN];
  memcpy(acc, piece[np - 1], SJ_HASH_LEN);
  for (int i = np - 2; i >= 0; i--)
    sj_merkle_node_hash(piece[i], acc, acc);
  memcpy(out, acc, SJ_HASH_LEN);
  return 0;
}

int sj_merkle_root(sj_merkle_read_fn rd, void *ctx, uint64_t size, uint8_t out[SJ_HASH_LEN]) {
  if (size == 0) {
    sj_sha256("", 0, out);
    return 0;
  }
  return range_root(rd, ctx, 0, size, out);
}

/* Proof elements are found top-down but listed bottom-up (leaf side first): reverse them. */
static void emit_reversed(uint8_t tmp[][SJ_HASH_LEN], size_t k, uint8_t path[][SJ_HASH_LEN],
                          size_t *path_len) {
  for (size_t i = 0; i < k; i++)
    memcpy(path[i], tmp[k - 1 - i], SJ_HASH_LEN);
  *path_len = k;
}

/* RFC 9162 §2.1.3.1 PATH(m, D[n]), with the recursion unrolled: at each step the sibling of the
 * half holding m joins the proof. Only one sibling can be imperfect (the first right half met
 * while descending left), so the reads stay O(log n). */
int sj_merkle_prove_inclusion(sj_merkle_read_fn rd, void *ctx, uint64_t index, uint64_t size,
                              uint8_t path[][SJ_HASH_LEN], size_t *path_len) {
  if (index >= size)
    return SJ_ERANGE;
  uint8_t tmp[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  size_t k = 0;
  uint64_t off = 0, m = index, n = size;
  int rv;
  while (n > 1) {
    uint64_t h = split_point(n);
    if (m < h) {
      rv = range_root(rd, ctx, off + h, n - h, tmp[k++]);
      n = h;
    } else {
      rv = rd(ctx, log2_exact(h), off >> log2_exact(h), tmp[k++]);
      off += h;
      m -= h;
      n -= h;
    }
    if (rv)
      return rv;
  }
  emit_reversed(tmp, k, path, path_len);
  return 0;
}

/* RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b), unrolled the same way. */
int sj_merkle_prove_consistency(sj_merkle_read_fn rd, void *ctx, uint64_t first, uint64_t second,
                                uint8_t path[][SJ_HASH_LEN], size_t *path_len) {
  if (first == 0 || first > second)
    return SJ_ERANGE;
  uint8_t tmp[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  size_t k = 0;
  uint64_t off = 0, m = first, n = second;
  int whole = 1; /* b: m is still the whole original first tree */
  int rv = 0;
  while (m != n) {
    uint64_t h = split_point(n);
    if (m <= h) {
      rv = range_root(rd, ctx, off + h, n - h, tmp[k++]);
      n = h;
    } else {
      rv = rd(ctx, log2_exact(h), off >> log2_exact(h), tmp[k++]);
      off += h;
      m -= h;
      n -= h;
      whole = 0;
    }
    if (rv)
      return rv;
  }
  if (!whole && (rv = range_root(rd, ctx, off, m, tmp[k++])) != 0)
    return rv;
  emit_reversed(tmp, k, path, path_len);
  return 0;
}

/* Shifts fn and sn right together until fn's lowest bit is set or fn is 0 (RFC 9162 §2.1.3.2). */
static void shift_while_even(uint64_t *fn, uint64_t *sn) {
  while (*fn && !(*fn & 1)) {
    *fn >>= 1;
    *sn >>= 1;
  }
}

int sj_merkle_verify_inclusion(const uint8_t leaf_hash[SJ_HASH_LEN], uint64_t index, uint64_t size,
                               const uint8_t path[][SJ_HASH_LEN], size_t path_len,
                               const uint8_t root[SJ_HASH_LEN]) {
  if (index >= size || path_len > SJ_MERKLE_MAX_PATH)
    return SJ_EVERIFY;
  uint64_t fn = index, sn = size - 1;
  uint8_t r[SJ_HASH_LEN];
  memcpy(r, leaf_hash, SJ_HASH_LEN);
  for (size_t i = 0; i < path_len; i++) {
    if (sn == 0)
      return SJ_EVERIFY; /* path longer than the tree is deep */
    if ((fn & 1) || fn == sn) {
      sj_merkle_node_hash(path[i], r, r);
      if (!(fn & 1))
        shift_while_even(&fn, &sn);
    } else {
      sj_merkle_node_hash(r, path[i], r);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && sodium_memcmp(r, root, SJ_HASH_LEN) == 0 ? 0 : SJ_EVERIFY;
}

int sj_merkle_verify_consistency(uint64_t first, uint64_t second, const uint8_t root1[SJ_HASH_LEN],
                                 const uint8_t root2[SJ_HASH_LEN],
                                 const uint8_t path[][SJ_HASH_LEN], size_t path_len) {
  if (first == 0 || first > second || path_len > SJ_MERKLE_MAX_PATH)
    return SJ_EVERIFY;
  if (first == second)
    return path_len == 0 && sodium_memcmp(root1, root2, SJ_HASH_LEN) == 0 ? 0 : SJ_EVERIFY;
  if (path_len == 0)
    return SJ_EVERIFY;
  /* RFC 9162 §2.1.4.2: when first is a power of two, its root is the proof's implicit head. */
  int pow2 = (first & (first - 1)) == 0;
  const uint8_t *c0 = pow2 ? root1 : path[0];
  size_t i = pow2 ? 0 : 1;
  uint64_t fn = first - 1, sn = second - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  uint8_t fr[SJ_HASH_LEN], sr[SJ_HASH_LEN];
  memcpy(fr, c0, SJ_HASH_LEN);
  memcpy(sr, c0, SJ_HASH_LEN);
  for (; i < path_len; i++) {
    if (sn == 0)
      return SJ_EVERIFY;
    if ((fn & 1) || fn == sn) {
      sj_merkle_node_hash(path[i], fr, fr);
      sj_merkle_node_hash(path[i], sr, sr);
      if (!(fn & 1))
        shift_while_even(&fn, &sn);
    } else {
      sj_merkle_node_hash(sr, path[i], sr);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0 || sodium_memcmp(fr, root1, SJ_HASH_LEN) != 0 ||
      sodium_memcmp(sr, root2, SJ_HASH_LEN) != 0)
    return SJ_EVERIFY;
  return 0;
}

/* ---- Frontier -------------------------------------------------------------------------------- */

void sj_merkle_frontier_init(sj_merkle_frontier_t *f) {
  memset(f, 0, sizeof *f);
}

int sj_merkle_frontier_load(sj_merkle_frontier_t *f, sj_merkle_read_fn rd, void *ctx,
                            uint64_t size) {
  sj_merkle_frontier_t t;
  sj_merkle_frontier_init(&t);
  uint64_t off = 0;
  for (int b = 63; b >= 0; b--) {
    if (!(size & ((uint64_t)1 << b)))
      continue;
    int rv = rd(ctx, (unsigned)b, off >> b, t.h[b]);
    if (rv)
      return rv;
    off += (uint64_t)1 << b;
  }
  t.size = size;
  *f = t;
  return 0;
}

/* The new leaf merges with the frontier's perfect subtrees for each trailing one bit of size,
 * exactly like a binary increment. Nothing in *f changes until every emit succeeded. */
int sj_merkle_frontier_append(sj_merkle_frontier_t *f, const uint8_t leaf_hash[SJ_HASH_LEN],
                              sj_merkle_emit_fn emit, void *ctx) {
  if (f->size == UINT64_MAX)
    return SJ_ERANGE;
  uint64_t size = f->size;
  uint8_t cur[SJ_HASH_LEN];
  memcpy(cur, leaf_hash, SJ_HASH_LEN);
  int rv = emit ? emit(ctx, 0, size, cur) : 0;
  if (rv)
    return rv;
  unsigned level = 0;
  while (size & ((uint64_t)1 << level)) {
    sj_merkle_node_hash(f->h[level], cur, cur);
    level++;
    if (emit && (rv = emit(ctx, level, size >> level, cur)) != 0)
      return rv;
  }
  memcpy(f->h[level], cur, SJ_HASH_LEN);
  f->size = size + 1;
  return 0;
}

void sj_merkle_frontier_root(const sj_merkle_frontier_t *f, uint8_t out[SJ_HASH_LEN]) {
  if (f->size == 0) {
    sj_sha256("", 0, out);
    return;
  }
  uint8_t acc[SJ_HASH_LEN];
  int have = 0;
  for (unsigned b = 0; b < 64; b++) {
    if (!(f->size & ((uint64_t)1 << b)))
      continue;
    if (have)
      sj_merkle_node_hash(f->h[b], acc, acc);
    else
      memcpy(acc, f->h[b], SJ_HASH_LEN);
    have = 1;
  }
  memcpy(out, acc, SJ_HASH_LEN);
}
