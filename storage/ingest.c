/* Index rows in bulk: sorting them, putting them into a WriteBatch, or writing them into a table
 * file per family that RocksDB ingests whole (why: memindex.c; figures: docs/STORAGE.md); and
 * the ingester thread, which does the last for a region's sealed in-memory generation while its
 * commits go on.
 *
 * An ingested file bypasses the WAL and the memtable: RocksDB links it into level 0 (or lower,
 * where nothing overlaps it) with a fresh sequence number, which is what a flush would have
 * produced, minus the skiplist inserts. Ingestion is durable on return.
 *
 * The ingester. Building and ingesting ~65k rows takes tens of milliseconds; done by the commit
 * that fills the in-memory index, it stalled the region's writer (and every submission queued
 * behind it) that long every few groups. Instead publish seals the full memidx as the region's
 * frozen generation (FROZEN_PENDING) and continues in an empty one; the ingester writes frozen's
 * rows, moves the watermark to frozen_upto (not synced: if it is lost, open derives those rows
 * again, and rows ingested twice are the same rows), then under the region's lock empties frozen,
 * whose buffers become the idle generation the next seal continues in. Scans search memidx and
 * frozen before the families, so every row is seen throughout. One generation is sealed at a
 * time: while it is written, memidx grows (to 4x the buffer, then rows go with their batch). If
 * writing it fails, frozen stays held (FROZEN_FAILED) and the next commit that needs room ingests
 * it with memidx itself, returning the error to its submitter as before. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "storage/storage_int.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Row key order: family, then u16 length | index key, then seq (rows of one region). */
static int cmp_rows(const void *x, const void *y) {
  const store_row_t *a = x, *b = y;
  if (a->cf != b->cf)
    return a->cf < b->cf ? -1 : 1;
  if (a->klen != b->klen)
    return a->klen < b->klen ? -1 : 1;
  int c = memcmp(a->k, b->k, a->klen);
  if (c != 0)
    return c;
  return (a->seq > b->seq) - (a->seq < b->seq);
}

void store_rows_sort(store_row_t *v, size_t n) {
  if (n > 1)
    qsort(v, n, sizeof *v, cmp_rows);
}

void store_rows_put(sj_store_t *s, rocksdb_writebatch_t *wb, uint32_t region, const store_row_t *v,
                    size_t n) {
  uint8_t row[INDEX_ROW_MAX];
  for (size_t i = 0; i < n; i++) {
    size_t rn = store_index_row(row, v[i].k, v[i].klen, region, v[i].seq);
    rocksdb_writebatch_put_cf(wb, s->cf[v[i].cf], (const char *)row, rn, (const char *)v[i].v,
                              v[i].vn);
  }
}

/* Writes rows v[0..n) (sorted, all of family cf) into the table file path. A key an entry names
 * twice gives the same row twice; a table file takes each key once. The file is not compressed:
 * its keys are spread over the whole index, so it lands in level 0 and the next compaction
 * reads it back and rewrites it (compressed) with the level below; compressing it here cost
 * the ingester ~12 % of its time for nothing (docs/STORAGE.md §5). */
static int write_table(sj_store_t *s, const char *path, uint32_t region, const store_row_t *v,
                       size_t n) {
  uint8_t row[INDEX_ROW_MAX];
  char *err = NULL;
  rocksdb_options_t *o = rocksdb_options_create_copy(s->cfopts[v[0].cf]);
  rocksdb_options_set_compression_per_level(o, NULL, 0);
  rocksdb_options_set_compression(o, rocksdb_no_compression);
  rocksdb_options_set_bottommost_compression(o, rocksdb_no_compression);
  rocksdb_envoptions_t *eo = rocksdb_envoptions_create();
  rocksdb_sstfilewriter_t *w = rocksdb_sstfilewriter_create(eo, o);
  rocksdb_sstfilewriter_open(w, path, &err);
  for (size_t i = 0; err == NULL && i < n; i++) {
    if (i > 0 && cmp_rows(&v[i - 1], &v[i]) == 0)
      continue;
    size_t rn = store_index_row(row, v[i].k, v[i].klen, region, v[i].seq);
    rocksdb_sstfilewriter_put(w, (const char *)row, rn, (const char *)v[i].v, v[i].vn, &err);
  }
  if (err == NULL)
    rocksdb_sstfilewriter_finish(w, &err);
  rocksdb_sstfilewriter_destroy(w);
  rocksdb_envoptions_destroy(eo);
  rocksdb_options_destroy(o);
  return err != NULL ? store_rocks_error(err) : 0;
}

static int ingest_one(sj_store_t *s, uint32_t region, const store_row_t *v, size_t n) {
  char path[4096];
  char *err = NULL;
  unsigned long id = atomic_fetch_add(&s->ingest_seq, 1);
  snprintf(path, sizeof path, "%s/%u-%lu.sst", s->ingest_dir, region, id);
  int rv = write_table(s, path, region, v, n);
  if (rv == 0) {
    const char *files[1] = {path};
    rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
    rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
    rocksdb_ingest_external_file_cf(s->db, s->cf[v[0].cf], files, 1, io, &err);
    rocksdb_ingestexternalfileoptions_destroy(io);
    if (err != NULL)
      rv = store_rocks_error(err);
  }
  unlink(path); /* moved into the DB on success (a link remains there); leftover otherwise */
  return rv;
}

int store_rows_ingest(sj_store_t *s, uint32_t region, const store_row_t *v, size_t n) {
  size_t i = 0;
  int rv = 0;
  while (rv == 0 && i < n) {
    size_t j = i;
    while (j < n && v[j].cf == v[i].cf)
      j++;
    rv = ingest_one(s, region, v + i, j - i);
    i = j;
  }
  return rv;
}

/* Table files of the index families above the last level: each is a separate sorted run a
 * lookup may have to seek in (ingested files go to the lowest level they overlap nothing in). */
static uint64_t index_upper_files(sj_store_t *s) {
  uint64_t n = 0;
  char prop[64];
  for (int cf = CF_SUBJECTS; cf <= CF_TRACE; cf++)
    for (int level = 0; level < STORE_LEVELS - 1; level++) {
      snprintf(prop, sizeof prop, "rocksdb.num-files-at-level%d", level); /* not an int property */
      char *v = rocksdb_property_value_cf(s->db, s->cf[cf], prop);
      if (v != NULL)
        n += strtoull(v, NULL, 10);
      rocksdb_free(v);
    }
  return n;
}

int sj_store_compact_index(sj_store_t *s, uint64_t *upper_before, uint64_t *upper_after) {
  if (upper_before != NULL)
    *upper_before = index_upper_files(s);
  rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
  /* Not exclusive: RocksDB's own compactions (and ingestion) go on beside it. */
  rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
  for (int cf = CF_SUBJECTS; cf <= CF_TRACE; cf++)
    rocksdb_compact_range_cf_opt(s->db, s->cf[cf], co, NULL, 0, NULL, 0);
  rocksdb_compactoptions_destroy(co);
  if (upper_after != NULL)
    *upper_after = index_upper_files(s);
  return 0;
}

void sj_store_cancel_compaction(sj_store_t *s) {
  rocksdb_disable_manual_compaction(s->db);
}

/* The directory the table files are built in, emptied of what a crash left behind. */
int store_ingest_dir_open(sj_store_t *s, const char *dir) {
  char path[4096];
  size_t n = strlen(dir);
  s->ingest_dir = malloc(n + sizeof "/ingest");
  if (s->ingest_dir == NULL)
    return -ENOMEM;
  memcpy(s->ingest_dir, dir, n);
  memcpy(s->ingest_dir + n, "/ingest", sizeof "/ingest");
  if (mkdir(s->ingest_dir, 0700) != 0 && errno != EEXIST)
    return -errno;
  DIR *d = opendir(s->ingest_dir);
  if (d == NULL)
    return -errno;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", s->ingest_dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  return 0;
}

/* ---- the ingester ---------------------------------------------------------------------------- */

int store_frozen_state(sj_store_t *s, store_region_t *r) {
  pthread_mutex_lock(&s->ingest_mu);
  int st = r->frozen_state;
  pthread_mutex_unlock(&s->ingest_mu);
  return st;
}

int store_frozen_wait(sj_store_t *s, store_region_t *r) {
  pthread_mutex_lock(&s->ingest_mu);
  while (r->frozen_state == FROZEN_PENDING && !s->ingest_stop)
    pthread_cond_wait(&s->ingest_cond, &s->ingest_mu);
  int st = r->frozen_state;
  pthread_mutex_unlock(&s->ingest_mu);
  return st;
}

void store_frozen_set(sj_store_t *s, store_region_t *r, int state) {
  pthread_mutex_lock(&s->ingest_mu);
  r->frozen_state = state;
  pthread_cond_broadcast(&s->ingest_cond);
  pthread_mutex_unlock(&s->ingest_mu);
}

int sj_store_index_memory(sj_store_t *s, uint32_t region, sj_store_index_memory_t *out) {
  store_region_t *r = store_region_find(s, region);
  if (r == NULL)
    return SJ_ENOTFOUND;
  pthread_rwlock_rdlock(&r->lock);
  out->memory_rows = r->memidx.n;
  out->sealed_rows = r->frozen.n;
  pthread_rwlock_unlock(&r->lock);
  out->sealed_state = store_frozen_state(s, r);
  return 0;
}

/* A region whose sealed generation waits for the ingester, or NULL (under ingest_mu). */
static store_region_t *next_sealed(sj_store_t *s) {
  store_region_t *found = NULL;
  pthread_rwlock_rdlock(&s->regions_lock);
  for (size_t i = 0; i < s->nregions && !found; i++)
    if (s->regions[i]->frozen_state == FROZEN_PENDING)
      found = s->regions[i];
  pthread_rwlock_unlock(&s->regions_lock);
  return found;
}

int store_memidx_ingest(sj_store_t *s, uint32_t region, const store_memidx_t *a,
                        const store_memidx_t *b) {
  size_t n = a->n + (b ? b->n : 0);
  store_row_t *v = malloc((n ? n : 1) * sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  size_t k = store_memidx_rows(a, v);
  if (b)
    store_memidx_rows(b, v + k);
  store_rows_sort(v, n);
  int rv = store_rows_ingest(s, region, v, n);
  free(v);
  return rv;
}

/* Writes r's sealed generation to the families and moves the watermark past it. Nothing else
 * touches frozen while it is FROZEN_PENDING. */
static int ingest_frozen(sj_store_t *s, store_region_t *r) {
  int rv = store_memidx_ingest(s, r->code, &r->frozen, NULL);
  if (rv != 0)
    return rv;
  uint8_t k[WMARK_KEY_LEN], val[8];
  char *err = NULL;
  store_wmark_key(k, r->code);
  sj_put_be64(val, r->frozen_upto);
  rocksdb_put_cf(s->db, s->wo_nosync, s->cf[CF_META], (const char *)k, sizeof k, (const char *)val,
                 sizeof val, &err);
  return err != NULL ? store_rocks_error(err) : 0;
}

static void *ingester_main(void *arg) {
  sj_store_t *s = arg;
  pthread_setname_np(pthread_self(), "sj-ingest");
  /* Below the writer and its prepare threads: it has a whole buffer's worth of commits to
   * finish in, they are what submitters wait for. */
  setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
  pthread_mutex_lock(&s->ingest_mu);
  for (;;) {
    store_region_t *r = NULL;
    while (!s->ingest_stop && (r = next_sealed(s)) == NULL)
      pthread_cond_wait(&s->ingest_cond, &s->ingest_mu);
    if (s->ingest_stop)
      break;
    pthread_mutex_unlock(&s->ingest_mu);
    int rv = ingest_frozen(s, r);
    if (rv == 0) {
      pthread_rwlock_wrlock(&r->lock); /* its rows are in the families now */
      store_region_retire_frozen(r);
      pthread_rwlock_unlock(&r->lock);
    }
    pthread_mutex_lock(&s->ingest_mu);
    r->frozen_state = rv == 0 ? FROZEN_NONE : FROZEN_FAILED;
    pthread_cond_broadcast(&s->ingest_cond);
  }
  pthread_mutex_unlock(&s->ingest_mu);
  return NULL;
}

void store_ingester_start(sj_store_t *s) {
  s->ingester_on =
      s->index_buffer_rows > 0 && pthread_create(&s->ingester, NULL, ingester_main, s) == 0;
}

void store_ingester_stop(sj_store_t *s) {
  if (!s->ingester_on)
    return;
  pthread_mutex_lock(&s->ingest_mu);
  s->ingest_stop = 1;
  pthread_cond_broadcast(&s->ingest_cond);
  pthread_mutex_unlock(&s->ingest_mu);
  pthread_join(s->ingester, NULL);
  s->ingester_on = 0; /* what it left sealed stays FROZEN_PENDING: open derives it again */
}
