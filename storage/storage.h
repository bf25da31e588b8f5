/* storage — the RocksDB log store: every region's log (its own and the replicas it holds), the
 * Merkle tree's perfect subtrees, the subject and trace indexes, checkpoints with their
 * cosignatures, and small metadata (replication cursors, evidence, schema version).
 *
 * Column families (ARCHITECTURE §4, keys big-endian so iteration is ordered): entries, tree,
 * subjects, trace, checkpoints, meta. docs/STORAGE.md records the RocksDB options chosen.
 *
 * Threads: every function may be called from any thread. A region has at most one open batch at a
 * time (its single writer); batches of different regions may run concurrently. Readers see a
 * region's new entries, tree and size only after the batch that wrote them committed. A batch
 * handle is used by one thread at a time (it may move between threads).
 * Errors are the codes of common/common.h; RocksDB's messages are translated here (SJ_ESTORE,
 * SJ_ENOSPACE) and never leave the module. Out-parameters are written only on success. */
#ifndef SJ_STORAGE_H
#define SJ_STORAGE_H

#include "common/common.h"
#include "crypto/crypto.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sj_store sj_store_t;
typedef struct sj_store_batch sj_store_batch_t;

/* An entry of some region's log. */
typedef struct {
  uint32_t region;
  uint64_t seq;
} sj_entry_ref_t;

/* Per-entry facts (docs/STORAGE.md §1, "facts"): when set, the store calls this for every entry it
 * appends (own entries and replicas alike), with the decoded header and the body (NULL when
 * withheld), from inside sj_store_batch_add on the adding thread. It writes at most cap bytes of
 * its own to out and returns their number (0: nothing of its own). The store keeps them, after the
 * entry's leaf hash, in the facts row of the entry, written in the same atomic batch; lookups read
 * them with sj_store_get_entries (SJ_GET_FACTS) instead of decoding bodies. It must not fail,
 * block or call the store. */
#define SJ_STORE_FACTS_MAX 256u
typedef size_t (*sj_store_annotate_fn)(void *ctx, const sj_entry_header_t *h, const uint8_t *body,
                                       size_t bn, uint8_t *out, size_t cap);

typedef struct {
  size_t block_cache_mb;         /* shared LRU block cache; default 256 */
  int mmap_reads;                /* 1: table files are read through memory maps (RocksDB's
                                    allow_mmap_reads) rather than pread; default 0 */
  int create_if_missing;         /* default 1 */
  size_t index_buffer_rows;      /* index rows a region holds in memory before writing them to the
                                    index families in one sorted bulk; default 65536 (see
                                    docs/STORAGE.md); 0 writes them with every commit */
  sj_store_annotate_fn annotate; /* per-entry facts (above); default NULL: only the leaf hash */
  void *annotate_ctx;            /* passed to annotate */
} sj_store_opts_t;

void sj_store_opts_default(sj_store_opts_t *o);

/* Opens (creating if allowed) the store in dir. Recovers each region's size and frontier. After a
 * crash the store holds the last synced batches. Errors: SJ_ESTORE (message logged by caller via
 * sj_store_last_error), SJ_EVERSION (schema version unknown), -ENOMEM. */
int sj_store_open(const char *dir, const sj_store_opts_t *opts, sj_store_t **out);
void sj_store_close(sj_store_t *s); /* no batch may be open; NULL is fine */
/* The RocksDB message of the last failure on this thread (static storage, for logs), or "". */
const char *sj_store_last_error(void);

/* ---- Appending ---------------------------------------------------------------------------------
 * A batch appends entries to one region's log all-or-nothing: entries, tree nodes, index rows,
 * the checkpoint and meta rows go in one RocksDB WriteBatch. Nothing is visible before commit. */

/* Begins a batch for region. Errors: SJ_EBUSY (a batch for region is open), -ENOMEM. */
int sj_store_batch_begin(sj_store_t *s, uint32_t region, sj_store_batch_t **out);

/* Adds one entry. The header is decoded strictly; its region must be the batch's, its seq the next
 * one, its prev the previous leaf hash, and a present body must match its body hash. Index rows
 * are derived from the header's keys (USCC/PERSON/OTHER_ID → subjects, EPC → trace). On error the
 * batch is unchanged and stays usable. The bytes are copied.
 * body == NULL stores the header without its body (withheld).
 * leaf_hash_out (may be NULL) receives the entry's leaf hash.
 * Errors: SJ_EFORMAT/SJ_ETRUNC/SJ_EVERSION (header), SJ_EINVAL (other region), SJ_ESEQ, SJ_ECHAIN,
 * SJ_EVERIFY (body), -ENOMEM. */
int sj_store_batch_add(sj_store_batch_t *b, const uint8_t *header, size_t hn, const uint8_t *body,
                       size_t bn, uint8_t leaf_hash_out[SJ_HASH_LEN]);
/* Same, for the region's own writer only, which built the header from this very body and the
 * SHA-256 it computed of it: the body's length is checked against the header, its hash is not
 * computed again. Entries from anywhere else (replicated, imported) go through sj_store_batch_add.
 * facts (may be NULL) is the annotation the caller already made of this header and body with the
 * store's own hook (sj_store_opts_t.annotate), facts_n <= SJ_STORE_FACTS_MAX bytes of it (0: the
 * hook made none): the store keeps it instead of calling the hook again; NULL: the store calls it.
 */
int sj_store_batch_add_own(sj_store_batch_t *b, const uint8_t *header, size_t hn,
                           const uint8_t *body, size_t bn, const uint8_t *facts, size_t facts_n,
                           uint8_t leaf_hash_out[SJ_HASH_LEN]);

/* The tree the region would have after commit: its size, root and the last leaf hash (all zero
 * for an empty log). */
void sj_store_batch_head(const sj_store_batch_t *b, uint64_t *size, uint8_t root[SJ_HASH_LEN],
                         uint8_t last_leaf[SJ_HASH_LEN]);

/* Stores a signed checkpoint note for the batch's size at the time of the call, i.e. the size
 * sj_store_batch_head reports then (replaces any stored for that size, including one set earlier
 * in this batch). Call it after the last add. The note is copied. */
int sj_store_batch_set_checkpoint(sj_store_batch_t *b, const char *note, size_t n);

/* Puts a meta row (e.g. a replication cursor) in the same atomic batch; key is a NUL-terminated
 * string. Copied. */
int sj_store_batch_put_meta(sj_store_batch_t *b, const char *key, const void *val, size_t n);

/* Writes the batch atomically (fsync'd when sync) and frees it; readers then see the new size.
 * On error nothing was written, the region's state is as before begin, and the batch is freed.
 * Errors: SJ_ESTORE, SJ_ENOSPACE, -ENOMEM. */
int sj_store_batch_commit(sj_store_batch_t *b, int sync);
void sj_store_batch_abort(sj_store_batch_t *b); /* frees; NULL is fine */

/* Commit in two steps, so that a writer builds its next batch while the disk syncs this one.
 * sj_store_batch_write writes the batch to RocksDB without waiting for the disk and frees the
 * region for the next batch, which continues the tree from this one; readers see nothing of it
 * (size, entries, index rows, checkpoint) until sj_store_batch_publish. sj_store_sync then makes
 * every write so far durable (one fsync of the write-ahead log), after which
 * sj_store_batch_publish(b, 1) makes the batch visible and frees it. A region holds at most one
 * written batch: the next one's write waits for its publish. On a failed sync,
 * sj_store_batch_publish(b, 0) frees it unpublished; what was built on it fails (SJ_ESTORE at
 * its write) and the region's next batch continues from the committed state.
 * sj_store_batch_write's errors are sj_store_batch_commit's (the batch is then freed); an entry
 * is durable only once sj_store_sync returned 0 after its write. */
int sj_store_batch_write(sj_store_batch_t *b);
int sj_store_sync(sj_store_t *s);
void sj_store_batch_publish(sj_store_batch_t *b, int ok);

/* ---- Reading -----------------------------------------------------------------------------------
 */

/* Regions the store holds (appended to at least once), ascending. *n receives the count, up to
 * cap written. */
int sj_store_regions(sj_store_t *s, uint32_t *out, size_t cap, size_t *n);

/* Committed size of a region's log (0 if unknown) and, if root/last_leaf are not NULL, its root
 * and last leaf hash. */
void sj_store_head(sj_store_t *s, uint32_t region, uint64_t *size, uint8_t root[SJ_HASH_LEN],
                   uint8_t last_leaf[SJ_HASH_LEN]);

/* Reads entry seq. header is replaced with the header bytes; body (may be NULL) with the body,
 * and *has_body (may be NULL) says whether the body is held. Errors: SJ_ENOTFOUND (seq >= size),
 * SJ_ESTORE. */
int sj_store_get_entry(sj_store_t *s, uint32_t region, uint64_t seq, sj_buf_t *header,
                       sj_buf_t *body, int *has_body);

/* Several entries in one RocksDB MultiGet (per family). what: SJ_GET_ENTRY (header and body),
 * SJ_GET_FACTS (the stored leaf hash and the annotation of sj_store_opts_t.annotate), or both.
 * fn(ctx, i, e) is called for refs[i], i ascending, with e borrowed for the call: e->found is 0 for
 * an entry at or past its region's committed size; with SJ_GET_FACTS, e->leaf is NULL for an
 * entry stored without a facts row (appended before the store kept them): compute it from the
 * header. fn returns 0 to go on, non-zero to stop (a negative value is returned).
 * Errors: SJ_ESTORE (e.g. an entry below the head missing, a corrupt row), -ENOMEM, fn's. */
#define SJ_GET_ENTRY 1
#define SJ_GET_FACTS 2
typedef struct {
  int found;             /* the entry is committed */
  const uint8_t *header; /* SJ_GET_ENTRY: header bytes */
  size_t hn;             /* its length */
  const uint8_t *body;   /* SJ_GET_ENTRY: body bytes when has_body */
  size_t bn;             /* its length */
  int has_body;          /* the body is held */
  const uint8_t *leaf;   /* SJ_GET_FACTS: stored leaf hash (SJ_HASH_LEN bytes), or NULL */
  const uint8_t *facts;  /* SJ_GET_FACTS: the annotation bytes (when leaf is not NULL) */
  size_t facts_n;        /* their length (0: none) */
} sj_store_entry_t;
typedef int (*sj_store_entry_fn)(void *ctx, size_t i, const sj_store_entry_t *e);
int sj_store_get_entries(sj_store_t *s, const sj_entry_ref_t *refs, size_t n, int what,
                         sj_store_entry_fn fn, void *ctx);

/* Leaf hash of entry seq. Errors: SJ_ENOTFOUND, SJ_ESTORE. */
int sj_store_leaf_hash(sj_store_t *s, uint32_t region, uint64_t seq, uint8_t out[SJ_HASH_LEN]);

/* Root of the region's tree at size <= committed size. Errors: SJ_ERANGE, SJ_ESTORE. */
int sj_store_root(sj_store_t *s, uint32_t region, uint64_t size, uint8_t out[SJ_HASH_LEN]);

/* Proofs over committed trees (sizes up to the committed size). path holds SJ_MERKLE_MAX_PATH.
 * Errors: SJ_ERANGE, SJ_ESTORE. */
int sj_store_prove_inclusion(sj_store_t *s, uint32_t region, uint64_t index, uint64_t size,
                             uint8_t path[][SJ_HASH_LEN], size_t *path_len);
int sj_store_prove_consistency(sj_store_t *s, uint32_t region, uint64_t first, uint64_t second,
                               uint8_t path[][SJ_HASH_LEN], size_t *path_len);

/* Checkpoints: the note stored for a size, the latest one (largest size), or put one (e.g. the
 * same checkpoint with more cosignatures) outside a batch, synced. Errors: SJ_ENOTFOUND,
 * SJ_ESTORE. */
int sj_store_checkpoint_get(sj_store_t *s, uint32_t region, uint64_t size, sj_buf_t *note);
int sj_store_checkpoint_latest(sj_store_t *s, uint32_t region, uint64_t *size, sj_buf_t *note);
int sj_store_checkpoint_put(sj_store_t *s, uint32_t region, uint64_t size, const char *note,
                            size_t n);

/* Index scans. Rows are (key, region, seq) with the entry's time as value. Calls fn for each row
 * of key, ascending by (region, seq), starting after (after_region, after_seq) when after is not
 * NULL. fn returns 0 to continue, 1 to stop (not an error), negative to abort with that code.
 * key is an index key as sj_store_index_key makes it (1..1 + SJ_ENTRY_MAX_KEY_LEN bytes, else
 * SJ_EINVAL). Only rows of committed entries are reported. fn runs on the calling thread with no
 * store lock held, so it may call other store functions. Errors: SJ_EINVAL, SJ_ESTORE, fn's. */
typedef enum { SJ_INDEX_SUBJECTS = 0, SJ_INDEX_TRACE = 1 } sj_index_t;
typedef int (*sj_store_scan_fn)(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms);
int sj_store_scan(sj_store_t *s, sj_index_t idx, const uint8_t *key, size_t keylen,
                  const sj_entry_ref_t *after, sj_store_scan_fn fn, void *ctx);

/* The same scan, with the copy of the entry an index row carries (docs/STORAGE.md §1): fn also
 * gets e, the entry as sj_store_get_entries (SJ_GET_ENTRY | SJ_GET_FACTS) would give it (found
 * set, header, body or withheld, the stored leaf hash, the annotation), borrowed for the call;
 * e is NULL when the row holds no copy (rows written before the store kept copies, entries too
 * large to copy, or in-memory rows beyond SJ_STORE_SCAN_COPY_MAX bytes of one scan): read the
 * entry with sj_store_get_entries then. A row whose copy does not parse is SJ_ESTORE.
 * Errors: those of sj_store_scan, -ENOMEM. */
#define SJ_STORE_SCAN_COPY_MAX (4u << 20)
typedef int (*sj_store_scan_entry_fn)(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms,
                                      const sj_store_entry_t *e);
int sj_store_scan_entries(sj_store_t *s, sj_index_t idx, const uint8_t *key, size_t keylen,
                          const sj_entry_ref_t *after, sj_store_scan_entry_fn fn, void *ctx);

/* Meta rows outside a batch (synced on put); key is a NUL-terminated string. get replaces val.
 * Errors: SJ_ENOTFOUND, SJ_ESTORE. */
int sj_store_meta_get(sj_store_t *s, const char *key, sj_buf_t *val);
int sj_store_meta_put(sj_store_t *s, const char *key, const void *val, size_t n);

/* Maintenance: writes the index rows held in memory (opts.index_buffer_rows) and every memtable to
 * table files (waiting for it) and, when compact is set, compacts every column family fully. Not
 * needed for durability (the WAL and the entries are); useful before a backup and in tests, which
 * would otherwise never read table files. May take long. Errors: SJ_EBUSY (a batch is open),
 * SJ_ESTORE, SJ_ENOSPACE, -ENOMEM. */
int sj_store_flush(sj_store_t *s, int compact);

/* The index rows region holds in memory (docs/STORAGE.md §4): in the generation commits add to,
 * and in the sealed one the ingester thread is writing to the families; sealed_state is 0 when
 * none is sealed, 1 while the ingester writes it, 2 if that failed (the next commit that needs
 * room, or a flush, then writes it). Errors: SJ_ENOTFOUND (no such region). */
typedef struct {
  uint64_t memory_rows;
  uint64_t sealed_rows;
  int sealed_state;
} sj_store_index_memory_t;
int sj_store_index_memory(sj_store_t *s, uint32_t region, sj_store_index_memory_t *out);

/* Compacts the index families (subjects, trace) into their lowest level, while other threads read,
 * append and ingest. Index rows reach table files in bulk (index_buffer_rows at a time), each file
 * spanning the whole key range, so after a bulk load a subject's rows lie in several files (level
 * 0 and the levels above the last) and a lookup seeks in each of them; compacted, they are one
 * contiguous range of one file (docs/STORAGE.md). Rows still held in memory are not written. May
 * take long (reads and writes the families whole). *upper_before and *upper_after (either may be
 * NULL): table files of the two families above their last level (separate sorted runs) before and
 * after. Returns 0: RocksDB's C API reports no compaction error, and a failed compaction leaves the
 * files as they were (the counts then show it). */
int sj_store_compact_index(sj_store_t *s, uint64_t *upper_before, uint64_t *upper_after);

/* Makes a running sj_store_compact_index return soon (its families left partly compacted, as a
 * compaction leaves them) and refuses later ones: for a shutdown. Thread-safe. */
void sj_store_cancel_compaction(sj_store_t *s);

/* Families sj_store_warm_cache reads, in this order: what subject lookups, trace lookups and
 * proofs read first, then what entry reads and disclosure facts read. */
#define SJ_WARM_SUBJECTS 0x01u /* the subjects index (subject lookups and reports) */
#define SJ_WARM_TRACE 0x02u    /* the trace index (trace lookups, journeys) */
#define SJ_WARM_TREE 0x04u     /* the Merkle tree's subtrees (proofs) */
#define SJ_WARM_FACTS 0x08u    /* per-entry facts */
#define SJ_WARM_ENTRIES 0x10u  /* the entries themselves (GET /v1/logs/.../entries) */

typedef struct {
  uint64_t bytes_read;    /* keys and values read (uncompressed), over every family */
  unsigned families_done; /* SJ_WARM_* of the families read to their end */
  int cache_full;         /* the block cache was full when it returned */
  int stopped;            /* *stop was set when it returned */
} sj_store_warm_stats_t;

/* Reads the given families (SJ_WARM_*) whole through the block cache, so that later reads of them
 * find their blocks there: for a node whose block cache (opts.block_cache_mb) is sized to what it
 * serves, started with a cold cache. Stops early, returning 0, when *stop (may be NULL) becomes
 * nonzero, or once the block cache is full (reading on would only evict what it read first).
 * Runs beside readers and writers; may take long (seconds per GB). *st (may be NULL) receives what
 * it did. Errors: SJ_ESTORE (a table file could not be read). */
int sj_store_warm_cache(sj_store_t *s, unsigned families, const atomic_int *stop,
                        sj_store_warm_stats_t *st);

/* The block cache's usage and capacity in bytes (either may be NULL). Thread-safe. */
void sj_store_block_cache_usage(sj_store_t *s, size_t *usage, size_t *capacity);

/* Online backup into dir, which must not exist (its parent must): a consistent copy of every
 * committed batch, openable with sj_store_open (restore = start a node on it). Runs while other
 * threads read and write. Errors: SJ_ESTORE (e.g. dir exists), SJ_ENOSPACE. */
int sj_store_backup(sj_store_t *s, const char *dir);

/* Key of an index row for a header key: the key type byte followed by its bytes, so that a USCC
 * and an EPC never collide. out must hold 1 + SJ_ENTRY_MAX_KEY_LEN bytes; returns the length, or 0
 * (out untouched) when n > SJ_ENTRY_MAX_KEY_LEN. */
size_t sj_store_index_key(uint8_t type, const uint8_t *p, size_t n, uint8_t *out);

#endif
