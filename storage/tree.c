/* Tree reads: the stored perfect subtrees (tree family, level 0 = leaf hashes), the in-memory
 * cache of the upper levels, and roots and proofs computed by crypto/ through a read callback.
 *
 * Why a cache: a proof at 10^6 leaves reads ~20 nodes. The nodes of level >= STORE_CACHE_LEVEL
 * are few (one per 2^level leaves) and are kept in memory per region, so a proof costs at most
 * STORE_CACHE_LEVEL RocksDB point reads. The cache only grows, at commit, under the region's
 * write lock; proofs hold the read lock while they run. */
#include "storage/storage_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  sj_store_t *s;
  store_region_t *r; /* its read lock is held, or it is not yet published (open) */
  int use_cache;
} tree_reader_t;

static int read_db(sj_store_t *s, uint32_t region, unsigned level, uint64_t index,
                   uint8_t out[SJ_HASH_LEN]) {
  uint8_t k[TREE_KEY_LEN];
  char *v = NULL;
  size_t n = 0;
  store_tree_key(k, region, level, index);
  int rv = store_get(s, CF_TREE, k, sizeof k, &v, &n);
  if (rv == 0 && (v == NULL || n != SJ_HASH_LEN))
    rv = store_corrupt("tree node missing or not 32 bytes");
  if (rv == 0)
    memcpy(out, v, SJ_HASH_LEN);
  rocksdb_free(v);
  return rv;
}

static int tree_read(void *ctx, unsigned level, uint64_t index, uint8_t out[SJ_HASH_LEN]) {
  tree_reader_t *t = ctx;
  store_region_t *r = t->r;
  if (t->use_cache && r->cache_ok && level >= STORE_CACHE_LEVEL && level < STORE_MAX_LEVELS &&
      index < r->cache[level].n) {
    memcpy(out, r->cache[level].h[index], SJ_HASH_LEN);
    return 0;
  }
  return read_db(t->s, r->code, level, index, out);
}

/* ---- Cache ----------------------------------------------------------------------------------- */

void store_cache_free(store_region_t *r) {
  for (unsigned l = 0; l < STORE_MAX_LEVELS; l++) {
    free(r->cache[l].h);
    memset(&r->cache[l], 0, sizeof r->cache[l]);
  }
}

static void cache_drop(store_region_t *r) {
  store_cache_free(r);
  r->cache_ok = 0;
}

void store_cache_add(store_region_t *r, unsigned level, uint64_t index,
                     const uint8_t hash[SJ_HASH_LEN]) {
  if (!r->cache_ok || level < STORE_CACHE_LEVEL || level >= STORE_MAX_LEVELS)
    return;
  store_level_t *c = &r->cache[level];
  if (index != c->n) { /* cannot happen: nodes of a level complete in order */
    cache_drop(r);
    return;
  }
  if (c->n == c->cap) {
    uint64_t cap = c->cap ? 2 * c->cap : 64;
    void *p = realloc(c->h, cap * SJ_HASH_LEN);
    if (p == NULL) {
      cache_drop(r);
      return;
    }
    c->h = p;
    c->cap = cap;
  }
  memcpy(c->h[c->n++], hash, SJ_HASH_LEN);
}

/* Loads the n complete nodes of one level with one forward scan of the tree family. */
static int cache_load_level(sj_store_t *s, store_region_t *r, unsigned level, uint64_t n) {
  uint8_t k[TREE_KEY_LEN];
  size_t kn = 0, vn = 0;
  char *err = NULL;
  uint64_t i = 0;
  int rv = 0;
  store_tree_key(k, r->code, level, 0);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_TREE]);
  for (rocksdb_iter_seek(it, (const char *)k, sizeof k); i < n && rocksdb_iter_valid(it);
       rocksdb_iter_next(it), i++) {
    const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
    const char *v = rocksdb_iter_value(it, &vn);
    store_tree_key(k, r->code, level, i);
    if (kn != TREE_KEY_LEN || memcmp(key, k, TREE_KEY_LEN) != 0 || vn != SJ_HASH_LEN) {
      rv = store_corrupt("tree level has a gap");
      break;
    }
    store_cache_add(r, level, i, (const uint8_t *)v);
  }
  rocksdb_iter_get_error(it, &err);
  if (err != NULL && rv == 0)
    rv = store_rocks_error(err);
  else
    rocksdb_free(err);
  if (rv == 0 && i < n)
    rv = store_corrupt("tree level shorter than the head says");
  rocksdb_iter_destroy(it);
  return rv;
}

int store_region_recover(sj_store_t *s, store_region_t *r, uint64_t size) {
  tree_reader_t t = {s, r, 0};
  int rv = sj_merkle_frontier_load(&r->frontier, tree_read, &t, size);
  if (rv == 0 && size > 0)
    rv = read_db(s, r->code, 0, size - 1, r->last_leaf);
  for (unsigned l = STORE_CACHE_LEVEL; rv == 0 && l < STORE_MAX_LEVELS && (size >> l) > 0; l++)
    rv = cache_load_level(s, r, l, size >> l);
  if (rv != 0)
    return rv;
  r->size = size;
  sj_merkle_frontier_root(&r->frontier, r->root);
  return 0;
}

/* ---- Reads -------------------------------------------------------------------------------------- */

/* Looks up the region and read-locks it; NULL (nothing locked) when the store never held it. */
static store_region_t *region_rdlock(sj_store_t *s, uint32_t region, uint64_t *size) {
  store_region_t *r = store_region_find(s, region);
  if (r == NULL) {
    *size = 0;
    return NULL;
  }
  pthread_rwlock_rdlock(&r->lock);
  *size = r->size;
  return r;
}

int sj_store_leaf_hash(sj_store_t *s, uint32_t region, uint64_t seq, uint8_t out[SJ_HASH_LEN]) {
  uint64_t size;
  store_region_t *r = region_rdlock(s, region, &size);
  int rv = SJ_ENOTFOUND;
  if (r == NULL)
    return rv;
  if (seq < size)
    rv = read_db(s, region, 0, seq, out);
  pthread_rwlock_unlock(&r->lock);
  return rv;
}

int sj_store_root(sj_store_t *s, uint32_t region, uint64_t size, uint8_t out[SJ_HASH_LEN]) {
  uint64_t have;
  store_region_t *r = region_rdlock(s, region, &have);
  int rv = 0;
  if (size > have)
    rv = SJ_ERANGE;
  else if (r == NULL || size == 0)
    sj_sha256("", 0, out);
  else if (size == have)
    memcpy(out, r->root, SJ_HASH_LEN);
  else {
    tree_reader_t t = {s, r, 1};
    rv = sj_merkle_root(tree_read, &t, size, out);
  }
  if (r != NULL)
    pthread_rwlock_unlock(&r->lock);
  return rv;
}

int sj_store_prove_inclusion(sj_store_t *s, uint32_t region, uint64_t index, uint64_t size,
                             uint8_t path[][SJ_HASH_LEN], size_t *path_len) {
  uint64_t have;
  store_region_t *r = region_rdlock(s, region, &have);
  int rv = SJ_ERANGE;
  if (r == NULL)
    return rv;
  if (index < size && size <= have) {
    tree_reader_t t = {s, r, 1};
    rv = sj_merkle_prove_inclusion(tree_read, &t, index, size, path, path_len);
  }
  pthread_rwlock_unlock(&r->lock);
  return rv;
}

int sj_store_prove_consistency(sj_store_t *s, uint32_t region, uint64_t first, uint64_t second,
                               uint8_t path[][SJ_HASH_LEN], size_t *path_len) {
  uint64_t have;
  store_region_t *r = region_rdlock(s, region, &have);
  int rv = SJ_ERANGE;
  if (r == NULL)
    return rv;
  if (first > 0 && first <= second && second <= have) {
    tree_reader_t t = {s, r, 1};
    rv = sj_merkle_prove_consistency(tree_read, &t, first, second, path, path_len);
  }
  pthread_rwlock_unlock(&r->lock);
  return rv;
}
