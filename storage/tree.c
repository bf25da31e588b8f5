/* Tree reads: perfect-subtree hashes from the tiles of the tree family (tile.c), the in-memory
 * cache of the upper levels, and roots and proofs computed by crypto/ through a read callback.
 *
 * Why a cache: a proof at 10^6 leaves reads ~20 nodes. The nodes of level >= STORE_CACHE_LEVEL
 * are few (one per 32 leaves in all) and are kept in memory per region; the six lower ones share
 * one tile, so a proof costs one RocksDB read (none for the newest leaves, whose tile the region
 * keeps). The cache only grows, at commit, under the region's write lock; proofs hold the read
 * lock while they run. */
#include "storage/storage_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  sj_store_t *s;
  store_region_t *r; /* its read lock is held, or it is not yet published (open) */
  int use_cache;     /* read levels >= STORE_CACHE_LEVEL from r's cache */
  int have;          /* tile below holds tile (tl, tile.index) */
  unsigned tl;
  store_tile_t tile; /* the tile read last: a proof's low nodes share one */
} tree_reader_t;

static int load_tile(sj_store_t *s, uint32_t region, unsigned tl, uint64_t j, store_tile_t *t) {
  uint8_t k[TREE_KEY_LEN];
  char *v = NULL;
  size_t n = 0;
  store_tree_key(k, region, tl, j);
  int rv = store_get(s, CF_TREE, k, sizeof k, &v, &n);
  if (rv == 0 && v == NULL)
    rv = store_corrupt("tile missing");
  if (rv == 0)
    rv = store_tile_decode((const uint8_t *)v, n, j, t);
  rocksdb_free(v);
  return rv;
}

/* The tile holding (tl, j): the region's last tile of that level if it is the one (the newest
 * entries, the most asked for, never touch RocksDB), else the one read last, else a read. */
static const store_tile_t *reader_tile(tree_reader_t *t, unsigned tl, uint64_t j, int *rv) {
  const store_tile_t *last = &t->r->tiles[tl];
  *rv = 0;
  if (last->m > 0 && last->index == j)
    return last;
  if (!(t->have && t->tl == tl && t->tile.index == j)) {
    t->have = 0;
    if ((*rv = load_tile(t->s, t->r->code, tl, j, &t->tile)) != 0)
      return NULL;
    t->have = 1;
    t->tl = tl;
  }
  return &t->tile;
}

static int tree_read(void *ctx, unsigned level, uint64_t index, uint8_t out[SJ_HASH_LEN]) {
  tree_reader_t *t = ctx;
  store_region_t *r = t->r;
  unsigned tl, d, slot;
  uint64_t j;
  int rv;
  if (t->use_cache && r->cache_ok && level >= STORE_CACHE_LEVEL && level < STORE_MAX_LEVELS &&
      index < r->cache[level].n) {
    memcpy(out, r->cache[level].h[index], SJ_HASH_LEN);
    return 0;
  }
  if (level >= STORE_MAX_LEVELS)
    return store_corrupt("tree level out of range");
  store_tile_locate(level, index, &tl, &j, &d, &slot);
  const store_tile_t *tile = reader_tile(t, tl, j, &rv);
  return tile != NULL ? store_tile_get(tile, d, slot, out) : rv;
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

/* Adds every node of a decoded tile of tile level tl >= 1 to the cache. */
static void cache_add_tile(store_region_t *r, unsigned tl, const store_tile_t *t) {
  for (unsigned d = 0; d < TILE_H && tl * TILE_H + d < STORE_MAX_LEVELS; d++) {
    uint64_t first = t->index << (TILE_H - d);
    unsigned off = 128u - (128u >> d);
    for (unsigned i = 0; i < (t->m >> d); i++)
      store_cache_add(r, tl * TILE_H + d, first + i, t->h[off + i]);
  }
}

/* Loads the n tiles of tile level tl (>= 1) into the cache with one forward scan. */
static int cache_load_tiles(sj_store_t *s, store_region_t *r, unsigned tl, uint64_t n) {
  uint8_t k[TREE_KEY_LEN];
  size_t kn = 0, vn = 0;
  char *err = NULL;
  uint64_t j = 0;
  int rv = 0;
  store_tile_t *t = malloc(sizeof *t);
  if (t == NULL)
    return -ENOMEM;
  store_tree_key(k, r->code, tl, 0);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_TREE]);
  for (rocksdb_iter_seek(it, (const char *)k, sizeof k); rv == 0 && j < n && rocksdb_iter_valid(it);
       rocksdb_iter_next(it), j++) {
    const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
    store_tree_key(k, r->code, tl, j);
    if (kn != TREE_KEY_LEN || memcmp(key, k, TREE_KEY_LEN) != 0)
      rv = store_corrupt("tile level has a gap");
    else if ((rv = store_tile_decode(v, vn, j, t)) == 0)
      cache_add_tile(r, tl, t);
  }
  rocksdb_iter_get_error(it, &err);
  if (err != NULL && rv == 0)
    rv = store_rocks_error(err);
  else
    rocksdb_free(err);
  if (rv == 0 && j < n)
    rv = store_corrupt("tile level shorter than the head says");
  rocksdb_iter_destroy(it);
  free(t);
  return rv;
}

/* The last tile of every tile level, which appends extend. */
static int recover_last_tiles(sj_store_t *s, store_region_t *r, uint64_t size) {
  for (unsigned tl = 0; tl < TILE_LEVELS; tl++) {
    store_tile_t *t = &r->tiles[tl];
    uint64_t c = tl * TILE_H < 64 ? size >> (tl * TILE_H) : 0; /* complete bottom nodes */
    t->index = 0;
    t->m = 0;
    if (c == 0)
      continue;
    uint64_t j = (c - 1) / TILE_W;
    int rv = load_tile(s, r->code, tl, j, t);
    if (rv != 0)
      return rv;
    if (t->m != c - j * TILE_W)
      return store_corrupt("last tile does not match the head");
  }
  return 0;
}

int store_region_recover(sj_store_t *s, store_region_t *r, uint64_t size) {
  tree_reader_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return -ENOMEM;
  t->s = s;
  t->r = r;
  int rv = recover_last_tiles(s, r, size);
  if (rv == 0)
    rv = sj_merkle_frontier_load(&r->frontier, tree_read, t, size);
  if (rv == 0 && size > 0)
    rv = tree_read(t, 0, size - 1, r->last_leaf);
  for (unsigned tl = 1; rv == 0 && tl < TILE_LEVELS && (size >> (tl * TILE_H)) > 0; tl++)
    rv = cache_load_tiles(s, r, tl, ((size >> (tl * TILE_H)) + TILE_W - 1) / TILE_W);
  free(t);
  if (rv != 0)
    return rv;
  r->size = size;
  sj_merkle_frontier_root(&r->frontier, r->root);
  store_region_writer_reset(r);
  return 0;
}

/* ---- Reads ----------------------------------------------------------------------------------- */

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
  if (seq < size) {
    tree_reader_t t = {.s = s, .r = r};
    rv = tree_read(&t, 0, seq, out);
  }
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
    tree_reader_t t = {.s = s, .r = r, .use_cache = 1};
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
    tree_reader_t t = {.s = s, .r = r, .use_cache = 1};
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
    tree_reader_t t = {.s = s, .r = r, .use_cache = 1};
    rv = sj_merkle_prove_consistency(tree_read, &t, first, second, path, path_len);
  }
  pthread_rwlock_unlock(&r->lock);
  return rv;
}
