/* tests/rawdb.h — a store opened with RocksDB itself, for tests that write rows as an older binary
 * or a damaged disk would (test_storage, test_node). The family names are the store's
 * (storage/log_store.c, docs/STORAGE.md §1): a new family must be added here too, or the open
 * fails and says so. Header only: the suites link RocksDB already, sj_testsupport does not. */
#ifndef SJ_TESTS_RAWDB_H
#define SJ_TESTS_RAWDB_H

#include <check.h>
#include <rocksdb/c.h>
#include <string.h>

#define RAWDB_CFS 8

typedef struct {
  rocksdb_t *db;
  rocksdb_options_t *o;
  rocksdb_column_family_handle_t *h[RAWDB_CFS];
} rawdb_t;

static const char *const rawdb_names[RAWDB_CFS] = {"default", "entries",     "tree", "subjects",
                                                   "trace",   "checkpoints", "meta", "facts"};

/* Opens the (closed) store in dir with every family. */
static inline void rawdb_open(rawdb_t *r, const char *dir) {
  const rocksdb_options_t *cfo[RAWDB_CFS];
  char *err = NULL;
  r->o = rocksdb_options_create();
  for (int i = 0; i < RAWDB_CFS; i++)
    cfo[i] = r->o;
  r->db = rocksdb_open_column_families(r->o, dir, RAWDB_CFS, rawdb_names, cfo, r->h, &err);
  ck_assert_msg(err == NULL, "raw open of %s: %s", dir, err);
}

/* The handle of the family called name. */
static inline rocksdb_column_family_handle_t *rawdb_cf(const rawdb_t *r, const char *name) {
  for (int i = 0; i < RAWDB_CFS; i++)
    if (strcmp(rawdb_names[i], name) == 0)
      return r->h[i];
  ck_abort_msg("no column family %s", name);
  return NULL;
}

static inline void rawdb_close(rawdb_t *r) {
  for (int i = 0; i < RAWDB_CFS; i++)
    rocksdb_column_family_handle_destroy(r->h[i]);
  rocksdb_close(r->db);
  rocksdb_options_destroy(r->o);
}

#endif
