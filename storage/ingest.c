/* Index rows in bulk: sorting them, putting them into a WriteBatch, or writing them into a table
 * file per family that RocksDB ingests whole (why: memindex.c; figures: docs/STORAGE.md).
 *
 * An ingested file bypasses the WAL and the memtable: RocksDB links it into level 0 (or lower,
 * where nothing overlaps it) with a fresh sequence number, which is what a flush would have
 * produced, minus the skiplist inserts. Ingestion is durable on return. */
#include "storage/storage_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * the writer thread ~12 % of its time for nothing (docs/STORAGE.md §5). */
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
