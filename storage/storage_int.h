/* storage internals — layouts shared by the storage module's own .c files (never included from
 * outside storage/). docs/STORAGE.md describes every row byte by byte.
 *
 * Locking, outermost first: store->regions_lock (the region table), then one region's lock.
 * Neither is ever held across a RocksDB write; a region's read lock is held across the RocksDB
 * reads of one proof so that its in-memory cache cannot move underneath. */
#ifndef SJ_STORAGE_INT_H
#define SJ_STORAGE_INT_H

#include "storage/storage.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>

#define STORE_SCHEMA_VERSION 1u

/* The tree family stores tiles, not single nodes: tile (T, j) holds the nodes of tree levels
 * 6T .. 6T+5 under the 64 level-6T nodes 64j .. 64j+63 (64 + 32 + 16 + 8 + 4 + 2 = 126 hashes),
 * as far as they are complete. An append batch rewrites the few tiles it touched (one row per tile
 * level, not ~2 rows per entry), and the six lowest nodes of any inclusion proof come from one
 * row. Levels >= TILE_H (tiles T >= 1: one hash per 32 leaves) are also kept in memory per
 * region, so a proof costs one RocksDB read. docs/STORAGE.md has the measurements. */
#define TILE_H 6u       /* tree levels per tile */
#define TILE_W 64u      /* bottom nodes per tile, 2^TILE_H */
#define TILE_SLOTS 126u /* hashes in a full tile */
#define TILE_LEVELS 11u /* tile levels 0..10 cover tree levels 0..65 */
#define TILE_VAL_MAX (1u + TILE_SLOTS * SJ_HASH_LEN)
#define STORE_CACHE_LEVEL TILE_H
#define STORE_MAX_LEVELS 64u

#define STORE_LEVELS 7 /* RocksDB levels of every family (its default; log_store.c sets it) */

/* Column families, in the order they are opened. CF_DEFAULT exists because RocksDB requires it;
 * nothing is stored there. */
enum {
  CF_DEFAULT = 0,
  CF_ENTRIES,
  CF_TREE,
  CF_SUBJECTS,
  CF_TRACE,
  CF_CHECKPOINTS,
  CF_META,
  CF_FACTS, /* region u32 | seq u64 -> leaf hash | the node's annotation (sj_store_opts_t) */
  CF_COUNT
};

/* Row key lengths. */
#define ENTRY_KEY_LEN 12u                         /* region u32 | seq u64 */
#define TREE_KEY_LEN 13u                          /* region u32 | tile level u8 | tile u64 */
#define CKPT_KEY_LEN 12u                          /* region u32 | size u64 */
#define HEAD_KEY_LEN 6u                           /* 0x00 'h' | region u32 (meta CF) */
#define WMARK_KEY_LEN 6u                          /* 0x00 'i' | region u32 (meta CF) */
#define INDEX_KEY_MAX (1u + SJ_ENTRY_MAX_KEY_LEN) /* type byte | key bytes */
#define INDEX_ROW_MAX (2u + INDEX_KEY_MAX + 12u)  /* u16 len | index key | region | seq */

/* Index row value (subjects, trace; docs/STORAGE.md §1): time_ms u64, then, when the row carries
 * a copy of its entry (rows written before copies were kept do not, nor do rows of entries too
 * large to copy): flags u8 (ENTRY_FLAG_BODY) | facts length u16 | header length u32 | leaf hash |
 * facts | header | body. keys.c encodes and decodes it, nothing else. */
#define IVAL_TIME 8u                                      /* a value without a copy */
#define IVAL_HDR (IVAL_TIME + 1u + 2u + 4u + SJ_HASH_LEN) /* up to the facts */
#define IVAL_COPY_MAX (16u << 10)   /* largest value with a copy (header + body + facts + 47) */
#define IVAL_ENTRY_MAX (256u << 10) /* copy bytes of one entry over all its index rows */

/* Entry row value: flags u8 | header length u32 | header | body. */
#define ENTRY_VAL_HDR 5u
#define ENTRY_FLAG_BODY 0x01u /* set when the body is held (it may be empty) */

/* One level of the in-memory tree cache: the hashes of that level's complete nodes 0..n-1. */
typedef struct {
  uint8_t (*h)[SJ_HASH_LEN]; /* owned; cap entries */
  uint64_t n;                /* complete nodes held */
  uint64_t cap;              /* allocated entries */
} store_level_t;

/* A tile in memory, in a fixed layout: level d (0..5) of the tile at slots tile_off(d).. . */
typedef struct {
  uint64_t index;                     /* j: the tile's index at its tile level */
  unsigned m;                         /* bottom nodes held, 0..TILE_W; level d holds m >> d */
  uint8_t h[TILE_SLOTS][SJ_HASH_LEN]; /* slots of absent nodes are undefined */
} store_tile_t;

/* One index row of the in-memory index (memindex.c). */
typedef struct {
  uint64_t seq;     /* the entry */
  uint64_t time_ms; /* its time */
  uint32_t hash;    /* of (cf, key) */
  uint32_t koff;    /* index key (type byte | key bytes) at keys + koff */
  uint32_t voff;    /* the row's value (IVAL_*: time, copy) at vals + voff, shared by the rows of */
  uint32_t vlen;    /* one entry; vlen bytes */
  uint32_t next;    /* next row of the same bucket, UINT32_MAX at the end */
  uint16_t klen;
  uint8_t cf; /* CF_SUBJECTS or CF_TRACE */
} memidx_row_t;

/* A region's index rows not yet in the index families, for entries watermark..size-1. */
typedef struct {
  memidx_row_t *rows; /* owned; n of cap used, in commit order */
  uint32_t n;
  uint32_t cap;
  uint8_t *keys; /* owned; kn of kcap used */
  uint32_t kn;
  size_t kcap;
  uint8_t *vals; /* owned; row values, vn of vcap used (one per entry, not per row) */
  uint32_t vn;
  size_t vcap;
  uint32_t *bucket; /* owned; nbucket heads (a power of two, >= 2 cap) */
  uint32_t nbucket;
} store_memidx_t;

struct sj_store_batch;
void store_batch_destroy(struct sj_store_batch *b); /* batch.c; NULL is fine */

/* A region's committed state. Created on the first batch for the region (or at open from its
 * head row) and freed only by sj_store_close, so a pointer to it stays valid while the store is
 * open. Every field below lock is guarded by it. */
typedef struct {
  uint32_t code;                   /* GB/T 2260 region code; immutable */
  atomic_int busy;                 /* 1 while a batch is open for the region */
  pthread_rwlock_t lock;           /* readers: lookups; writer: commit's publish */
  uint64_t size;                   /* committed tree size */
  sj_merkle_frontier_t frontier;   /* frontier of the committed tree */
  uint8_t root[SJ_HASH_LEN];       /* root of the committed tree */
  uint8_t last_leaf[SJ_HASH_LEN];  /* leaf hash of entry size-1, zero when empty */
  store_tile_t tiles[TILE_LEVELS]; /* the last (possibly partial) tile of each tile level */
  store_memidx_t memidx;           /* index rows of entries >= the watermark (row in meta) */
  /* The in-memory index's sealed generation (ingest.c): when memidx fills, publish moves it here
   * and the store's ingester thread writes it to the families while appends go on into a fresh
   * memidx. Readers search both under lock; frozen's rows do not change while it is sealed. */
  store_memidx_t frozen;
  uint64_t frozen_upto; /* frozen holds rows of entries below this size (and >= the watermark) */
  int frozen_state;     /* FROZEN_*; under the store's ingest_mu */
  store_memidx_t idle;  /* an emptied generation whose buffers the next seal reuses; touched by
                           the holder of busy while frozen_state is FROZEN_NONE, else by the
                           ingester */
  int cache_ok;                    /* 0 after an allocation failure: read levels from RocksDB */
  store_level_t cache[STORE_MAX_LEVELS]; /* only levels >= STORE_CACHE_LEVEL are used */
  /* The writer's side, touched only by the holder of busy: the tree after the last batch
   * written, which the next batch continues. Equal to the committed fields above, except while
   * a batch written by sj_store_batch_write waits for its sync and publish. */
  sj_merkle_frontier_t wfrontier;
  uint8_t wlast_leaf[SJ_HASH_LEN];
  store_tile_t wtiles[TILE_LEVELS];
  pthread_mutex_t pub_lock;     /* guards the three below */
  pthread_cond_t pub_cond;      /* broadcast when a written batch is published or dropped */
  unsigned unpublished;         /* written batches not yet published or dropped: 0 or 1 */
  int dropped;                  /* a written batch was dropped: the writer's side is ahead of
                                   what is committed, and goes back at the next begin */
  struct sj_store_batch *spare; /* the last batch's buffers, reused; owned */
} store_region_t;

/* The writer's side of r set back to its committed state (at open, and after a drop). Only the
 * holder of busy, or the opener, calls it. */
void store_region_writer_reset(store_region_t *r);

struct sj_store {
  rocksdb_t *db;                                /* owned */
  rocksdb_options_t *dbopts;                    /* owned; DB-wide options */
  rocksdb_env_t *env;                           /* owned handle on RocksDB's default env */
  rocksdb_options_t *cfopts[CF_COUNT];          /* owned; one per column family */
  rocksdb_column_family_handle_t *cf[CF_COUNT]; /* owned */
  rocksdb_cache_t *block_cache;                 /* owned; shared by every family */
  rocksdb_readoptions_t *ro;                    /* owned; shared, never modified after open */
  rocksdb_writeoptions_t *wo_sync;              /* owned; sync = 1 */
  rocksdb_writeoptions_t *wo_nosync;            /* owned; sync = 0 */
  size_t index_buffer_rows;                     /* memidx rows that trigger a bulk write */
  sj_store_annotate_fn annotate;                /* per-entry facts, or NULL; immutable */
  void *annotate_ctx;                           /* its argument */
  char *ingest_dir;                             /* owned; <dir>/ingest, table files built there */
  atomic_ulong ingest_seq;                      /* names the next table file */
  pthread_mutex_t ingest_mu;                    /* guards every region's frozen_state, and: */
  pthread_cond_t ingest_cond;                   /* broadcast when a frozen_state changes */
  int ingest_stop;                              /* the ingester is to end */
  int ingester_on;                              /* the ingester thread runs; immutable after open */
  pthread_t ingester;
  pthread_rwlock_t regions_lock;                /* guards the three fields below */
  store_region_t **regions;                     /* owned, unsorted */
  size_t nregions;
  size_t capregions;
};

/* ---- keys.c: row keys ------------------------------------------------------------------------ */
void store_entry_key(uint8_t out[ENTRY_KEY_LEN], uint32_t region, uint64_t seq);
void store_tree_key(uint8_t out[TREE_KEY_LEN], uint32_t region, unsigned level, uint64_t index);
void store_ckpt_key(uint8_t out[CKPT_KEY_LEN], uint32_t region, uint64_t size);
void store_head_key(uint8_t out[HEAD_KEY_LEN], uint32_t region);
void store_wmark_key(uint8_t out[WMARK_KEY_LEN], uint32_t region);
/* The prefix all rows of one index key share: u16 length | index key. Returns its length. */
size_t store_index_prefix(uint8_t *out, const uint8_t *ikey, size_t iklen);
/* A whole index row key into out (INDEX_ROW_MAX bytes). Returns its length. */
size_t store_index_row(uint8_t *out, const uint8_t *ikey, size_t iklen, uint32_t region,
                       uint64_t seq);
/* Whether an entry of these sizes with nkeys index rows gets copies in its rows: its value is
 * at most IVAL_COPY_MAX bytes with the largest annotation, and IVAL_ENTRY_MAX over all rows. */
int store_ival_copies(size_t hn, size_t bn, size_t nkeys);
/* Length of a value with a copy (facts_n bytes of annotation; body NULL: withheld). */
size_t store_ival_size(size_t hn, const uint8_t *body, size_t bn, size_t facts_n);
/* Encodes a value into out (store_ival_size bytes; IVAL_TIME when hdr is NULL: no copy). Returns
 * its length. */
size_t store_ival_encode(uint8_t *out, uint64_t time_ms, const uint8_t leaf[SJ_HASH_LEN],
                         const uint8_t *facts, size_t facts_n, const uint8_t *hdr, size_t hn,
                         const uint8_t *body, size_t bn);
/* Decodes a value strictly: *time_ms, and *e (found = 1, borrowing from v) when *has_copy is set.
 * A value of any other layout is SJ_ESTORE (store_corrupt). */
int store_ival_decode(const uint8_t *v, size_t n, uint64_t *time_ms, sj_store_entry_t *e,
                      int *has_copy);
/* The prefix extractor of the index families (u16 length | index key). Ownership passes to the
 * options it is set on. */
rocksdb_slicetransform_t *store_index_prefix_extractor(void);

/* ---- log_store.c: errors, regions, writes ---------------------------------------------------- */
/* Records err (a RocksDB message, freed here) for sj_store_last_error and returns SJ_ENOSPACE
 * when it reports a full device, SJ_ESTORE otherwise. */
int store_rocks_error(char *err);
/* Records our own message (e.g. a corrupt row) and returns SJ_ESTORE. */
int store_corrupt(const char *what);
/* The region's state, or NULL if the store has never held it. */
store_region_t *store_region_find(sj_store_t *s, uint32_t code);
/* The region's state, created empty if new. Errors: -ENOMEM. */
int store_region_get(sj_store_t *s, uint32_t code, store_region_t **out);
/* Writes wb (sync or not), translating errors. */
int store_write(sj_store_t *s, rocksdb_writebatch_t *wb, int sync);
/* Point read of one row; *val is rocksdb_malloc'd (free with rocksdb_free) or NULL when absent. */
int store_get(sj_store_t *s, int cf, const uint8_t *key, size_t kn, char **val, size_t *vn);

/* The annotation of entry h into out (SJ_STORE_FACTS_MAX bytes): facts when not NULL (made
 * already, facts_n bytes: the hook is not called), else what s->annotate makes of header and
 * body. Returns its length (0: none). */
size_t store_facts_make(sj_store_t *s, const sj_entry_header_t *h, const uint8_t *body, size_t bn,
                        const uint8_t *facts, size_t facts_n, uint8_t *out);
/* Puts entry h's facts row (leaf hash, then its annotation) into wb. */
void store_facts_put(sj_store_t *s, rocksdb_writebatch_t *wb, const sj_entry_header_t *h,
                     const uint8_t leaf[SJ_HASH_LEN], const uint8_t *facts, size_t facts_n);

/* ---- tile.c: tiles --------------------------------------------------------------------------- */
/* Where node (level, index) lives: tile level, tile index, level within the tile, slot. */
void store_tile_locate(unsigned level, uint64_t index, unsigned *tl, uint64_t *tj, unsigned *d,
                       unsigned *slot);
/* Sets a node of the tile; a bottom node (d == 0) extends m to cover it. */
void store_tile_set(store_tile_t *t, unsigned d, unsigned slot, const uint8_t h[SJ_HASH_LEN]);
/* Reads a node; SJ_ESTORE (corrupt) when the tile does not hold it. */
int store_tile_get(const store_tile_t *t, unsigned d, unsigned slot, uint8_t out[SJ_HASH_LEN]);
/* Row value: u8 m | level 0's m hashes | level 1's m/2 hashes | ... | level 5's m/32 hashes.
 * encode returns the length (out holds TILE_VAL_MAX); decode checks it exactly. */
size_t store_tile_encode(const store_tile_t *t, uint8_t *out);
int store_tile_decode(const uint8_t *v, size_t n, uint64_t index, store_tile_t *t);

/* ---- ingest.c: index rows in bulk ------------------------------------------------------------ */
typedef struct {
  const uint8_t *k; /* index key, borrowed */
  uint64_t seq;
  const uint8_t *v; /* the row's value (IVAL_*), borrowed */
  size_t vn;
  uint16_t klen;
  uint8_t cf;
} store_row_t;

void store_rows_sort(store_row_t *v, size_t n); /* into row key order, family by family */
/* Puts sorted rows of region into wb. */
void store_rows_put(sj_store_t *s, rocksdb_writebatch_t *wb, uint32_t region, const store_row_t *v,
                    size_t n);
/* Writes sorted rows of region into one table file per family and ingests them (durable on
 * return). Errors: SJ_ESTORE, SJ_ENOSPACE. */
int store_rows_ingest(sj_store_t *s, uint32_t region, const store_row_t *v, size_t n);
/* A region's sealed generation: none; sealed and being written by the ingester; or left held
 * because that failed (then the next commit that needs room, or a flush, ingests it itself). */
enum { FROZEN_NONE = 0, FROZEN_PENDING, FROZEN_FAILED };
/* Starts the ingester thread (s->ingester_on says whether it runs) / ends it, after the job in
 * hand (what it leaves sealed is derived again at the next open, like memidx). */
void store_ingester_start(sj_store_t *s);
void store_ingester_stop(sj_store_t *s);
/* r's frozen_state; the _wait form first waits while it is FROZEN_PENDING. */
int store_frozen_state(sj_store_t *s, store_region_t *r);
int store_frozen_wait(sj_store_t *s, store_region_t *r);
/* Sets r's frozen_state (FROZEN_PENDING hands frozen to the ingester). */
void store_frozen_set(sj_store_t *s, store_region_t *r, int state);
/* Sets s->ingest_dir under dir and removes files a crash left there. Errors: -errno, -ENOMEM. */
int store_ingest_dir_open(sj_store_t *s, const char *dir);

/* ---- memindex.c: the in-memory index ------------------------------------------------------------
 * Written only by the region's batch (reserve: under the region's write lock, since it may move
 * memory; add/clear: at publish, under it), read under its read lock. */
void store_memidx_init(store_memidx_t *m);
void store_memidx_free(store_memidx_t *m);
/* Room for rows more rows, bytes more key bytes and vbytes more value bytes. Errors: -ENOMEM
 * (m unchanged but usable). */
int store_memidx_reserve(store_memidx_t *m, size_t rows, size_t bytes, size_t vbytes);
/* Keeps a value (room reserved) for the rows of one entry; returns its offset. */
uint32_t store_memidx_add_value(store_memidx_t *m, const uint8_t *v, size_t n);
/* Adds a row whose value (vlen bytes at voff) store_memidx_add_value kept. Room reserved. */
void store_memidx_add(store_memidx_t *m, uint8_t cf, const uint8_t *ikey, size_t klen, uint64_t seq,
                      uint64_t time_ms, uint32_t voff, uint32_t vlen);
void store_memidx_clear(store_memidx_t *m);
/* Fills v (room for m->n) with m's rows, in commit order; returns m->n. */
size_t store_memidx_rows(const store_memidx_t *m, store_row_t *v);
/* Writes the rows of a, and of b unless NULL, to the index families (ingest.c). */
int store_memidx_ingest(sj_store_t *s, uint32_t region, const store_memidx_t *a,
                        const store_memidx_t *b);
/* r's sealed generation, written, emptied; its buffers become the idle one (under r's write
 * lock, by whoever owns frozen: the ingester, or the holder of busy when it was left). */
void store_region_retire_frozen(store_region_t *r);
/* v: the row's value (IVAL_*), valid while the caller holds the region's lock. */
typedef void (*store_memidx_fn)(void *ctx, uint64_t seq, uint64_t time_ms, const uint8_t *v,
                                size_t vn);
/* Calls fn for every row of (cf, index key), in no particular order. */
void store_memidx_find(const store_memidx_t *m, uint8_t cf, const uint8_t *ikey, size_t klen,
                       store_memidx_fn fn, void *ctx);

/* ---- batch.c --------------------------------------------------------------------------------- */
/* Writes the region's in-memory index rows to the index families (synced) and empties it.
 * Errors: SJ_EBUSY (a batch of the region is open), those of sj_store_batch_commit. */
int store_region_flush_index(sj_store_t *s, store_region_t *r);

/* ---- read.c ---------------------------------------------------------------------------------- */
/* Re-derives the in-memory index of a recovered region (size set) from the headers of its entries
 * at and after the watermark. Errors: SJ_ESTORE (corrupt), -ENOMEM. */
int store_memidx_recover(sj_store_t *s, store_region_t *r);

/* ---- tree.c: tree reads, the upper-level cache ----------------------------------------------- */
/* Recovers a region of the given size at open: frontier, root, last leaf, the cache, and the
 * in-memory index (re-derived from the headers of the entries at and after the watermark). */
int store_region_recover(sj_store_t *s, store_region_t *r, uint64_t size);
/* Appends committed nodes of level >= STORE_CACHE_LEVEL to the cache; the caller holds r's write
 * lock. Nodes of each level arrive in index order. On allocation failure (or a node out of order,
 * which cannot happen) the cache is dropped and reads fall back to RocksDB. */
void store_cache_add(store_region_t *r, unsigned level, uint64_t index,
                     const uint8_t hash[SJ_HASH_LEN]);
void store_cache_free(store_region_t *r);

#endif
