/* The log store: opening RocksDB with the options docs/STORAGE.md justifies, recovering every
 * region's committed state, the region table, error translation and the meta rows. */
#include "storage/storage_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cf_names[CF_COUNT] = {"default", "entries",     "tree", "subjects",
                                               "trace",   "checkpoints", "meta", "facts"};
static const uint8_t schema_key[] = {0x00, 's', 'c', 'h', 'e', 'm', 'a'};

/* ---- Errors ---------------------------------------------------------------------------------- */

static _Thread_local char last_error[512];

const char *sj_store_last_error(void) {
  return last_error;
}

int store_rocks_error(char *err) {
  int rv = SJ_ESTORE;
  if (err == NULL)
    return rv;
  snprintf(last_error, sizeof last_error, "%s", err);
  if (strstr(err, "No space left on device") != NULL)
    rv = SJ_ENOSPACE;
  rocksdb_free(err);
  return rv;
}

int store_corrupt(const char *what) {
  snprintf(last_error, sizeof last_error, "corrupt store: %s", what);
  return SJ_ESTORE;
}

/* ---- Options --------------------------------------------------------------------------------- */

void sj_store_opts_default(sj_store_opts_t *o) {
  o->block_cache_mb = 256;
  o->mmap_reads = 0;
  o->create_if_missing = 1;
  o->index_buffer_rows = 65536;
  o->annotate = NULL;
  o->annotate_ctx = NULL;
}

static rocksdb_options_t *db_options(const sj_store_opts_t *o, rocksdb_env_t *env) {
  rocksdb_options_t *d = rocksdb_options_create();
  /* Compactions at the lowest CPU priority: on a busy node they take what the writer, its
   * prepare threads and the readers leave (flushes, which writes wait for, keep theirs). */
  rocksdb_env_lower_thread_pool_cpu_priority(env);
  rocksdb_options_set_env(d, env);
  rocksdb_options_set_create_if_missing(d, o->create_if_missing);
  rocksdb_options_set_create_missing_column_families(d, 1);
  rocksdb_options_set_max_background_jobs(d, 2);
  /* Bounds the WAL: families that are written rarely (checkpoints, meta) would otherwise keep
   * every log file alive until their own memtable fills. */
  rocksdb_options_set_max_total_wal_size(d, 256u << 20);
  rocksdb_options_set_bytes_per_sync(d, 1u << 20);
  rocksdb_options_set_keep_log_file_num(d, 4);
  rocksdb_options_set_allow_mmap_reads(d, (unsigned char)(o->mmap_reads != 0));
  return d;
}

/* Block-based table: XXH3 block checksums, the shared LRU cache, optionally a bloom filter, and
 * for families read by point lookups a hash index inside each data block (a Get or MultiGet key
 * is found in its block without a binary search). block_size: uncompressed bytes per data block,
 * 0 for RocksDB's 4 KiB. */
static void set_table(rocksdb_options_t *cf, rocksdb_cache_t *cache, int bloom, int whole_key,
                      size_t block_size) {
  rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
  if (block_size)
    rocksdb_block_based_options_set_block_size(t, block_size);
  if (bloom && whole_key) {
    rocksdb_block_based_options_set_data_block_index_type(
        t, rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
    rocksdb_block_based_options_set_data_block_hash_ratio(t, 0.75);
  }
  rocksdb_block_based_options_set_checksum(t, 4); /* kXXH3 */
  rocksdb_block_based_options_set_block_cache(t, cache);
  rocksdb_block_based_options_set_format_version(t, 5);
  if (bloom) {
    rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_whole_key_filtering(t, (unsigned char)whole_key);
    /* Keeps filters of L0 files, which every lookup consults, pinned in the cache. */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
  }
  rocksdb_options_set_block_based_table_factory(cf, t); /* copies t */
  rocksdb_block_based_options_destroy(t);
}

/* L0 uncompressed, LZ4 below it. An L0 file lives only until the next L0 -> L1 compaction,
 * which reads all of it back: compressing it at flush costs one LZ4 compression and one
 * decompression per byte for nothing, on the path that acknowledges appends (flushes compete
 * with the writer for the CPU). Ingested files (the index families) take the bottommost
 * setting, never this one. */
static void set_upper_compression(rocksdb_options_t *o) {
  int levels[STORE_LEVELS] = {rocksdb_no_compression};
  for (size_t i = 1; i < STORE_LEVELS; i++)
    levels[i] = rocksdb_lz4_compression;
  rocksdb_options_set_compression_per_level(o, levels, STORE_LEVELS);
}

static rocksdb_options_t *cf_options(int cf, rocksdb_cache_t *cache) {
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_options_set_num_levels(o, STORE_LEVELS);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
  /* Bodies, headers and index keys are text-heavy: LZ4 below L0 costs little CPU on the write
   * path; ZSTD on the bottommost level (most of the data) saves most of the space. */
  set_upper_compression(o);
  rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
  switch (cf) {
  case CF_TREE:
    /* SHA-256 outputs do not compress: skip the CPU. */
    rocksdb_options_set_compression_per_level(o, NULL, 0);
    rocksdb_options_set_compression(o, rocksdb_no_compression);
    rocksdb_options_set_bottommost_compression(o, rocksdb_no_compression);
    set_table(o, cache, 1, 1, 0);
    break;
  case CF_ENTRIES:
    set_table(o, cache, 1, 1, 0);
    break;
  case CF_FACTS:
    /* Small rows read by point lookups (MultiGet), appended in key order. */
    rocksdb_options_set_bottommost_compression(o, rocksdb_lz4_compression);
    set_table(o, cache, 1, 1, 0);
    break;
  case CF_SUBJECTS:
  case CF_TRACE:
    rocksdb_options_set_prefix_extractor(o, store_index_prefix_extractor());
    /* Ingested index files overlap the whole key range, so every L0 -> L1 compaction rewrites
     * the family's lower level: fewer, larger merges and LZ4 (not ZSTD) there cut compaction CPU
     * by ~15 % (docs/STORAGE.md). The index is small beside the entries; space matters less. */
    rocksdb_options_set_bottommost_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 8);
    /* 16 KiB data blocks: a subject's ~10 rows (each with its entry's copy, 0.5-1 KiB) mostly sit
     * in one block instead of 2-3, and each file's index block is a quarter as long (~1.8 MB at
     * 10^7 entries with 4 KiB). Closed-loop CPU per uncached lookup, index rewritten: 65.3 -> 59.3
     * us at 10^7 entries, 51.3 -> 39.9 at 10^5 (medians of 5; 32 KiB and partitioned indexes did
     * no better: bench/results/lookup-notes.md, session 6). */
    set_table(o, cache, 1, 0, 16384); /* rows are only ever scanned by prefix */
    break;
  default:
    rocksdb_options_set_write_buffer_size(o, 4u << 20); /* small, rarely written families */
    set_table(o, cache, 0, 0, 0);
    break;
  }
  return o;
}

/* ---- Region table ---------------------------------------------------------------------------- */

store_region_t *store_region_find(sj_store_t *s, uint32_t code) {
  store_region_t *r = NULL;
  pthread_rwlock_rdlock(&s->regions_lock);
  for (size_t i = 0; i < s->nregions; i++) {
    if (s->regions[i]->code == code) {
      r = s->regions[i];
      break;
    }
  }
  pthread_rwlock_unlock(&s->regions_lock);
  return r;
}

static store_region_t *region_new(uint32_t code) {
  store_region_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  if (pthread_rwlock_init(&r->lock, NULL) != 0) {
    free(r);
    return NULL;
  }
  if (pthread_mutex_init(&r->pub_lock, NULL) != 0) {
    pthread_rwlock_destroy(&r->lock);
    free(r);
    return NULL;
  }
  if (pthread_cond_init(&r->pub_cond, NULL) != 0) {
    pthread_mutex_destroy(&r->pub_lock);
    pthread_rwlock_destroy(&r->lock);
    free(r);
    return NULL;
  }
  r->code = code;
  atomic_init(&r->busy, 0);
  r->cache_ok = 1;
  sj_merkle_frontier_init(&r->frontier);
  sj_merkle_frontier_root(&r->frontier, r->root);
  store_region_writer_reset(r);
  return r;
}

static void region_free(store_region_t *r) {
  store_batch_destroy(r->spare);
  store_cache_free(r);
  store_memidx_free(&r->memidx);
  store_memidx_free(&r->frozen);
  store_memidx_free(&r->idle);
  pthread_cond_destroy(&r->pub_cond);
  pthread_mutex_destroy(&r->pub_lock);
  pthread_rwlock_destroy(&r->lock);
  free(r);
}

/* Inserts r unless a region of that code got there first; returns the one in the table. */
static store_region_t *table_insert(sj_store_t *s, store_region_t *r) {
  for (size_t i = 0; i < s->nregions; i++) {
    if (s->regions[i]->code == r->code) {
      region_free(r);
      return s->regions[i];
    }
  }
  if (s->nregions == s->capregions) {
    size_t cap = s->capregions ? 2 * s->capregions : 8;
    store_region_t **p = realloc(s->regions, cap * sizeof *p);
    if (p == NULL) {
      region_free(r);
      return NULL;
    }
    s->regions = p;
    s->capregions = cap;
  }
  s->regions[s->nregions++] = r;
  return r;
}

int store_region_get(sj_store_t *s, uint32_t code, store_region_t **out) {
  store_region_t *r = store_region_find(s, code);
  if (r == NULL) {
    r = region_new(code);
    if (r == NULL)
      return -ENOMEM;
    pthread_rwlock_wrlock(&s->regions_lock);
    r = table_insert(s, r);
    pthread_rwlock_unlock(&s->regions_lock);
    if (r == NULL)
      return -ENOMEM;
  }
  *out = r;
  return 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

int sj_store_regions(sj_store_t *s, uint32_t *out, size_t cap, size_t *n) {
  uint32_t *codes = NULL;
  size_t k = 0;
  pthread_rwlock_rdlock(&s->regions_lock);
  if (s->nregions > 0 && (codes = malloc(s->nregions * sizeof *codes)) == NULL) {
    pthread_rwlock_unlock(&s->regions_lock);
    return -ENOMEM;
  }
  for (size_t i = 0; i < s->nregions; i++) {
    store_region_t *r = s->regions[i];
    pthread_rwlock_rdlock(&r->lock);
    if (r->size > 0) /* a region only batched, never committed, is not held */
      codes[k++] = r->code;
    pthread_rwlock_unlock(&r->lock);
  }
  pthread_rwlock_unlock(&s->regions_lock);
  if (k > 0)
    qsort(codes, k, sizeof *codes, cmp_u32);
  for (size_t i = 0; i < k && i < cap; i++)
    out[i] = codes[i];
  *n = k;
  free(codes);
  return 0;
}

void sj_store_head(sj_store_t *s, uint32_t region, uint64_t *size, uint8_t root[SJ_HASH_LEN],
                   uint8_t last_leaf[SJ_HASH_LEN]) {
  store_region_t *r = store_region_find(s, region);
  if (r == NULL) {
    *size = 0;
    if (root != NULL)
      sj_sha256("", 0, root);
    if (last_leaf != NULL)
      memset(last_leaf, 0, SJ_HASH_LEN);
    return;
  }
  pthread_rwlock_rdlock(&r->lock);
  *size = r->size;
  if (root != NULL)
    memcpy(root, r->root, SJ_HASH_LEN);
  if (last_leaf != NULL)
    memcpy(last_leaf, r->last_leaf, SJ_HASH_LEN);
  pthread_rwlock_unlock(&r->lock);
}

/* ---- Reads and writes ------------------------------------------------------------------------ */

int store_write(sj_store_t *s, rocksdb_writebatch_t *wb, int sync) {
  char *err = NULL;
  rocksdb_write(s->db, sync ? s->wo_sync : s->wo_nosync, wb, &err);
  return err != NULL ? store_rocks_error(err) : 0;
}

int sj_store_sync(sj_store_t *s) {
  char *err = NULL;
  rocksdb_flush_wal(s->db, 1, &err);
  return err != NULL ? store_rocks_error(err) : 0;
}

int store_get(sj_store_t *s, int cf, const uint8_t *key, size_t kn, char **val, size_t *vn) {
  char *err = NULL;
  size_t n = 0;
  char *v = rocksdb_get_cf(s->db, s->ro, s->cf[cf], (const char *)key, kn, &n, &err);
  if (err != NULL)
    return store_rocks_error(err);
  *val = v;
  *vn = n;
  return 0;
}

size_t store_facts_make(sj_store_t *s, const sj_entry_header_t *h, const uint8_t *body, size_t bn,
                        const uint8_t *facts, size_t facts_n, uint8_t *out) {
  size_t n = 0;
  if (facts != NULL && facts_n <= SJ_STORE_FACTS_MAX) { /* made already (the writer's entries) */
    memcpy(out, facts, facts_n);
    n = facts_n;
  } else if (s->annotate != NULL) {
    n = s->annotate(s->annotate_ctx, h, body, bn, out, SJ_STORE_FACTS_MAX);
  }
  return n <= SJ_STORE_FACTS_MAX ? n : 0; /* a broken annotator: keep the leaf hash only */
}

void store_facts_put(sj_store_t *s, rocksdb_writebatch_t *wb, const sj_entry_header_t *h,
                     const uint8_t leaf[SJ_HASH_LEN], const uint8_t *facts, size_t facts_n) {
  uint8_t k[ENTRY_KEY_LEN];
  store_entry_key(k, h->region, h->seq);
  const char *kl[1] = {(const char *)k};
  size_t ks[1] = {sizeof k};
  const char *vl[2] = {(const char *)leaf, (const char *)facts};
  size_t vs[2] = {SJ_HASH_LEN, facts_n};
  rocksdb_writebatch_putv_cf(wb, s->cf[CF_FACTS], 1, kl, ks, facts_n > 0 ? 2 : 1, vl, vs);
}

/* Replaces out with the n bytes at v. */
static int buf_set(sj_buf_t *out, const void *v, size_t n) {
  sj_buf_reset(out);
  return sj_buf_append(out, v, n);
}

int sj_store_meta_get(sj_store_t *s, const char *key, sj_buf_t *val) {
  char *v = NULL;
  size_t n = 0;
  int rv = store_get(s, CF_META, (const uint8_t *)key, strlen(key), &v, &n);
  if (rv == 0)
    rv = v == NULL ? SJ_ENOTFOUND : buf_set(val, v, n);
  rocksdb_free(v);
  return rv;
}

static int put_synced(sj_store_t *s, int cf, const uint8_t *key, size_t kn, const void *val,
                      size_t n) {
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_writebatch_put_cf(wb, s->cf[cf], (const char *)key, kn, val, n);
  int rv = store_write(s, wb, 1);
  rocksdb_writebatch_destroy(wb);
  return rv;
}

int sj_store_meta_put(sj_store_t *s, const char *key, const void *val, size_t n) {
  return put_synced(s, CF_META, (const uint8_t *)key, strlen(key), val, n);
}

int sj_store_checkpoint_put(sj_store_t *s, uint32_t region, uint64_t size, const char *note,
                            size_t n) {
  uint8_t k[CKPT_KEY_LEN];
  store_ckpt_key(k, region, size);
  return put_synced(s, CF_CHECKPOINTS, k, sizeof k, note, n);
}

/* The largest checkpoint size readers may see: the committed size (a batch written but not yet
 * synced holds its checkpoint too: sj_store_batch_write), or any for a region the store never
 * held (checkpoints put on their own). */
static uint64_t visible_size(sj_store_t *s, uint32_t region) {
  store_region_t *r = store_region_find(s, region);
  uint64_t size = UINT64_MAX;
  if (r != NULL) {
    pthread_rwlock_rdlock(&r->lock);
    size = r->size;
    pthread_rwlock_unlock(&r->lock);
  }
  return size;
}

int sj_store_checkpoint_get(sj_store_t *s, uint32_t region, uint64_t size, sj_buf_t *note) {
  uint8_t k[CKPT_KEY_LEN];
  char *v = NULL;
  size_t n = 0;
  if (size > visible_size(s, region))
    return SJ_ENOTFOUND;
  store_ckpt_key(k, region, size);
  int rv = store_get(s, CF_CHECKPOINTS, k, sizeof k, &v, &n);
  if (rv == 0)
    rv = v == NULL ? SJ_ENOTFOUND : buf_set(note, v, n);
  rocksdb_free(v);
  return rv;
}

/* The region's checkpoints are one ordered range: the last row at or before (region, visible
 * size) is the largest size. */
int sj_store_checkpoint_latest(sj_store_t *s, uint32_t region, uint64_t *size, sj_buf_t *note) {
  uint8_t k[CKPT_KEY_LEN];
  size_t kn = 0, vn = 0;
  char *err = NULL;
  int rv = SJ_ENOTFOUND;
  store_ckpt_key(k, region, visible_size(s, region));
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_CHECKPOINTS]);
  rocksdb_iter_seek_for_prev(it, (const char *)k, sizeof k);
  if (rocksdb_iter_valid(it)) {
    const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &kn);
    const char *v = rocksdb_iter_value(it, &vn);
    if (kn == CKPT_KEY_LEN && sj_get_be32(key) == region) {
      rv = buf_set(note, v, vn);
      if (rv == 0)
        *size = sj_get_be64(key + 4);
    }
  }
  rocksdb_iter_get_error(it, &err);
  if (err != NULL)
    rv = store_rocks_error(err);
  rocksdb_iter_destroy(it);
  return rv;
}

/* Regions are never removed while the store is open, so the table can be walked by index with
 * the lock taken only to read each slot. */
static int flush_regions(sj_store_t *s) {
  int rv = 0;
  for (size_t i = 0; rv == 0; i++) {
    store_region_t *r = NULL;
    pthread_rwlock_rdlock(&s->regions_lock);
    if (i < s->nregions)
      r = s->regions[i];
    pthread_rwlock_unlock(&s->regions_lock);
    if (r == NULL)
      break;
    rv = store_region_flush_index(s, r);
  }
  return rv;
}

int sj_store_flush(sj_store_t *s, int compact) {
  char *err = NULL;
  int rv = flush_regions(s);
  if (rv != 0)
    return rv;
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, 1);
  for (int i = 0; i < CF_COUNT && err == NULL; i++)
    rocksdb_flush_cf(s->db, fo, s->cf[i], &err);
  rocksdb_flushoptions_destroy(fo);
  for (int i = 0; compact && i < CF_COUNT && err == NULL; i++)
    rocksdb_compact_range_cf(s->db, s->cf[i], NULL, 0, NULL, 0);
  return err != NULL ? store_rocks_error(err) : 0;
}

/* ---- Open and close -------------------------------------------------------------------------- */

/* Checks the schema version, writing it into a store that has none yet. */
static int check_schema(sj_store_t *s) {
  char *v = NULL;
  size_t n = 0;
  uint8_t want[4];
  sj_put_be32(want, STORE_SCHEMA_VERSION);
  int rv = store_get(s, CF_META, schema_key, sizeof schema_key, &v, &n);
  if (rv == 0 && v == NULL)
    rv = put_synced(s, CF_META, schema_key, sizeof schema_key, want, sizeof want);
  else if (rv == 0 && (n != 4 || memcmp(v, want, 4) != 0))
    rv = SJ_EVERSION;
  rocksdb_free(v);
  return rv;
}

/* Head rows (meta 0x00 'h' region -> size) name the regions held and their committed sizes. */
static int recover_regions(sj_store_t *s) {
  uint8_t start[2] = {0x00, 'h'};
  size_t kn = 0, vn = 0;
  char *err = NULL;
  int rv = 0;
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_META]);
  for (rocksdb_iter_seek(it, (const char *)start, 2); rv == 0 && rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kn);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
    if (kn < 2 || memcmp(k, start, 2) != 0)
      break;
    if (kn != HEAD_KEY_LEN || vn != 8) {
      rv = store_corrupt("head row");
      break;
    }
    store_region_t *r = NULL;
    rv = store_region_get(s, sj_get_be32(k + 2), &r);
    if (rv == 0)
      rv = store_region_recover(s, r, sj_get_be64(v));
    if (rv == 0)
      rv = store_memidx_recover(s, r);
  }
  rocksdb_iter_get_error(it, &err);
  if (err != NULL && rv == 0)
    rv = store_rocks_error(err);
  else
    rocksdb_free(err);
  rocksdb_iter_destroy(it);
  return rv;
}

static int open_db(sj_store_t *s, const char *dir, const sj_store_opts_t *o) {
  char *err = NULL;
  s->block_cache = rocksdb_cache_create_lru((o->block_cache_mb ? o->block_cache_mb : 1) << 20);
  s->env = rocksdb_create_default_env();
  s->dbopts = db_options(o, s->env);
  for (int i = 0; i < CF_COUNT; i++)
    s->cfopts[i] = cf_options(i, s->block_cache);
  s->db = rocksdb_open_column_families(s->dbopts, dir, CF_COUNT, cf_names,
                                       (const rocksdb_options_t *const *)s->cfopts, s->cf, &err);
  if (err != NULL) {
    s->db = NULL;
    return store_rocks_error(err);
  }
  s->ro = rocksdb_readoptions_create();
  s->wo_sync = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(s->wo_sync, 1);
  s->wo_nosync = rocksdb_writeoptions_create();
  return 0;
}

int sj_store_open(const char *dir, const sj_store_opts_t *opts, sj_store_t **out) {
  sj_store_opts_t def;
  int rv;
  if (opts == NULL) {
    sj_store_opts_default(&def);
    opts = &def;
  }
  sj_store_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  if (pthread_rwlock_init(&s->regions_lock, NULL) != 0) {
    free(s);
    return -ENOMEM;
  }
  pthread_mutex_init(&s->ingest_mu, NULL);
  pthread_cond_init(&s->ingest_cond, NULL);
  s->index_buffer_rows = opts->index_buffer_rows;
  s->annotate = opts->annotate;
  s->annotate_ctx = opts->annotate_ctx;
  atomic_init(&s->ingest_seq, 0);
  rv = open_db(s, dir, opts);
  if (rv == 0)
    rv = store_ingest_dir_open(s, dir);
  if (rv == 0)
    rv = check_schema(s);
  if (rv == 0)
    rv = recover_regions(s);
  if (rv != 0) {
    sj_store_close(s);
    return rv;
  }
  store_ingester_start(s); /* without it, commits ingest what fills memory themselves */
  *out = s;
  return 0;
}

void sj_store_close(sj_store_t *s) {
  if (s == NULL)
    return;
  store_ingester_stop(s);
  for (size_t i = 0; i < s->nregions; i++)
    region_free(s->regions[i]);
  free(s->regions);
  for (int i = 0; i < CF_COUNT; i++) {
    if (s->cf[i] != NULL)
      rocksdb_column_family_handle_destroy(s->cf[i]);
  }
  if (s->db != NULL)
    rocksdb_close(s->db);
  for (int i = 0; i < CF_COUNT; i++) {
    if (s->cfopts[i] != NULL)
      rocksdb_options_destroy(s->cfopts[i]);
  }
  if (s->dbopts != NULL)
    rocksdb_options_destroy(s->dbopts);
  if (s->ro != NULL)
    rocksdb_readoptions_destroy(s->ro);
  if (s->wo_sync != NULL)
    rocksdb_writeoptions_destroy(s->wo_sync);
  if (s->wo_nosync != NULL)
    rocksdb_writeoptions_destroy(s->wo_nosync);
  if (s->block_cache != NULL)
    rocksdb_cache_destroy(s->block_cache);
  if (s->env != NULL)
    rocksdb_env_destroy(s->env); /* the handle: the default env itself lives on */
  pthread_rwlock_destroy(&s->regions_lock);
  pthread_cond_destroy(&s->ingest_cond);
  pthread_mutex_destroy(&s->ingest_mu);
  free(s->ingest_dir);
  free(s);
}
