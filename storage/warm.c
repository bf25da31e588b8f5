/* Warming the block cache: reading families whole through it, so that a node whose block cache
 * is sized to hold what its reads touch serves them from its own memory from the start, instead of
 * reading (and decompressing) table blocks from the page cache at first use (docs/STORAGE.md). */
#include "storage/storage_int.h"

#include <stdlib.h>

/* The families sj_store_warm_cache may read, in the order of its flags. */
static const struct {
  unsigned flag;
  int cf;
} warm_families[] = {
    {SJ_WARM_SUBJECTS, CF_SUBJECTS}, {SJ_WARM_TRACE, CF_TRACE},     {SJ_WARM_TREE, CF_TREE},
    {SJ_WARM_FACTS, CF_FACTS},       {SJ_WARM_ENTRIES, CF_ENTRIES},
};

/* Rows read between two looks at the stop flag and at the cache's usage: cheap enough beside a
 * row's read, and a stop is seen within a millisecond or so. */
#define WARM_CHECK_ROWS 1024u

/* Full once usage is within 1/16 of the capacity: reading on would only evict what the scan read
 * first (the LRU cache takes every block it is given). */
static int cache_full(rocksdb_cache_t *c) {
  size_t cap = rocksdb_cache_get_capacity(c);
  return rocksdb_cache_get_usage(c) >= cap - cap / 16;
}

/* Reads one family from its first key to its last. Returns 1 when it stopped early (stop flag or
 * full cache), 0 at the end, or an error. */
static int warm_family(sj_store_t *s, int cf, const atomic_int *stop, uint64_t *bytes) {
  char *err = NULL;
  int rv = 0;
  size_t kn = 0, vn = 0;
  uint64_t rows = 0;
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_fill_cache(ro, 1);
  /* A sequential scan: large reads from the files, fewer system calls. */
  rocksdb_readoptions_set_readahead_size(ro, 2u << 20);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    (void)rocksdb_iter_key(it, &kn);
    (void)rocksdb_iter_value(it, &vn);
    *bytes += kn + vn;
    if (++rows % WARM_CHECK_ROWS == 0 &&
        ((stop != NULL && atomic_load(stop)) || cache_full(s->block_cache))) {
      rv = 1;
      break;
    }
  }
  rocksdb_iter_get_error(it, &err);
  if (err != NULL)
    rv = store_rocks_error(err);
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  return rv;
}

int sj_store_warm_cache(sj_store_t *s, unsigned families, const atomic_int *stop,
                        sj_store_warm_stats_t *st) {
  sj_store_warm_stats_t w = {0};
  int rv = 0;
  for (size_t i = 0; i < sizeof warm_families / sizeof warm_families[0] && rv == 0; i++) {
    if (!(families & warm_families[i].flag))
      continue;
    if ((stop != NULL && atomic_load(stop)) || cache_full(s->block_cache)) {
      rv = 1;
      break;
    }
    rv = warm_family(s, warm_families[i].cf, stop, &w.bytes_read);
    if (rv == 0)
      w.families_done |= warm_families[i].flag;
  }
  if (rv < 0)
    return rv;
  w.cache_full = cache_full(s->block_cache);
  w.stopped = stop != NULL && atomic_load(stop);
  if (st != NULL)
    *st = w;
  return 0;
}

void sj_store_block_cache_usage(sj_store_t *s, size_t *usage, size_t *capacity) {
  if (usage != NULL)
    *usage = rocksdb_cache_get_usage(s->block_cache);
  if (capacity != NULL)
    *capacity = rocksdb_cache_get_capacity(s->block_cache);
}
