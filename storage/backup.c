/* storage/backup.c — online backup: a RocksDB checkpoint of the whole store (every column family,
 * hard-linked where the file system allows) taken while the node keeps serving and appending.
 * The copy is a complete store: a node started on it (sj_store_open) holds every batch that was
 * committed before the backup began; that is the restore. */
#include "storage/storage.h"
#include "storage/storage_int.h"

#include <rocksdb/c.h>

int sj_store_backup(sj_store_t *s, const char *dir) {
  char *err = NULL;
  rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &err);
  if (err)
    return store_rocks_error(err);
  /* log_size_for_flush 0: flush the memtables first, so the copy needs no WAL replay. */
  rocksdb_checkpoint_create(cp, dir, 0, &err);
  rocksdb_checkpoint_object_destroy(cp);
  return err ? store_rocks_error(err) : 0;
}
