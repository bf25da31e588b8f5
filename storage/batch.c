/* Batches: one region's entries, tree tiles, index rows, checkpoint and meta rows gathered in one
 * RocksDB WriteBatch and written atomically. batch_add validates everything before it touches
 * the WriteBatch or the working frontier, and reserves the memory it needs first, so a refused
 * add leaves the batch exactly as it was.
 *
 * A region has two states: the committed one readers see (size, frontier, last tiles, in-memory
 * index; under its lock) and the writer's side, which batches build on. They differ only between
 * sj_store_batch_write and sj_store_batch_publish, while the written batch waits for the fsync
 * that makes it durable: the next batch is built meanwhile, and its write waits for the publish. */
#include "storage/storage_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A node of level >= STORE_CACHE_LEVEL completed by this batch, cached when it commits. */
typedef struct {
  unsigned level;
  uint64_t index;
  uint8_t h[SJ_HASH_LEN];
} pending_node_t;

/* An index row of this batch: index key (type byte | key bytes) at arena + off, its value (time,
 * and the entry's copy: keys.c) at vals + voff, shared by the rows of one entry. */
typedef struct {
  size_t off;
  size_t voff;
  size_t vlen;
  uint64_t seq;
  uint64_t time_ms;
  uint16_t klen;
  uint8_t cf;
} index_row_t;

#define BATCH_SPARE_MAX (64u << 20)

/* What publish does with the in-memory index (why rows wait in memory: memindex.c; its two
 * generations: ingest.c). */
typedef struct {
  int clear;        /* its rows were ingested: empty it */
  int clear_frozen; /* the sealed generation's rows (left by a failed ingester) were too */
  int seal;         /* it is full: seal it for the ingester, continue in the idle generation */
  int hold;         /* add this batch's rows to it (after the seal: to the fresh one) */
  uint64_t upto;    /* seal: the committed size its rows cover */
} index_plan_t;

struct sj_store_batch {
  sj_store_t *s;
  store_region_t *r;              /* busy flag held by this batch */
  rocksdb_writebatch_t *wb;       /* owned */
  sj_merkle_frontier_t f;         /* the tree after the adds so far */
  store_tile_t cur[TILE_LEVELS];  /* each tile level's last tile, copied from the region on
                                     first touch (bit set in loaded) */
  unsigned loaded;                /* bit tl: cur[tl] is valid */
  unsigned dirty;                 /* bit tl: cur[tl] changed since it was last written */
  uint8_t last_leaf[SJ_HASH_LEN]; /* leaf hash of entry f.size-1 */
  uint64_t added;                 /* entries added */
  int force_bulk;                 /* write the in-memory index rows even if few (flush) */
  index_plan_t plan;              /* made at write, carried out at publish */
  pending_node_t *pend;           /* owned; npend of cappend used */
  size_t npend;
  size_t cappend;
  sj_buf_t arena;    /* index keys of rows */
  sj_buf_t vals;     /* row values, one per entry with index rows */
  index_row_t *rows; /* owned; nrows of caprows used */
  size_t nrows;
  size_t caprows;
  sj_index_key_t keys[SJ_ENTRY_MAX_KEYS]; /* decode scratch */
};

int sj_store_batch_begin(sj_store_t *s, uint32_t region, sj_store_batch_t **out) {
  store_region_t *r = NULL;
  int expected = 0;
  int rv = store_region_get(s, region, &r);
  if (rv != 0)
    return rv;
  if (!atomic_compare_exchange_strong(&r->busy, &expected, 1))
    return SJ_EBUSY;
  /* The region's previous batch, when it left one: its WriteBatch and buffers keep their
   * capacity, so a group commit does not grow them again from nothing (realloc and copy of a
   * few MB per commit; batch_release). */
  pthread_mutex_lock(&r->pub_lock);
  sj_store_batch_t *b = r->spare;
  r->spare = NULL;
  int dropped = r->dropped && r->unpublished == 0;
  if (dropped)
    r->dropped = 0;
  pthread_mutex_unlock(&r->pub_lock);
  if (dropped)
    store_region_writer_reset(r);
  if (b != NULL) {
    rocksdb_writebatch_clear(b->wb);
    sj_buf_reset(&b->arena);
    sj_buf_reset(&b->vals);
  } else if ((b = calloc(1, sizeof *b)) != NULL) {
    b->wb = rocksdb_writebatch_create();
    sj_buf_init(&b->arena);
    sj_buf_init(&b->vals);
  } else {
    atomic_store(&r->busy, 0);
    return -ENOMEM;
  }
  b->s = s;
  b->r = r;
  b->added = 0;
  b->force_bulk = 0;
  b->loaded = b->dirty = 0;
  b->npend = 0;
  b->nrows = 0;
  /* The writer's side: only the holder of busy touches it. */
  b->f = r->wfrontier;
  memcpy(b->last_leaf, r->wlast_leaf, SJ_HASH_LEN);
  *out = b;
  return 0;
}

void store_region_writer_reset(store_region_t *r) {
  pthread_rwlock_rdlock(&r->lock);
  r->wfrontier = r->frontier;
  memcpy(r->wlast_leaf, r->last_leaf, SJ_HASH_LEN);
  memcpy(r->wtiles, r->tiles, sizeof r->wtiles);
  pthread_rwlock_unlock(&r->lock);
}

/* After a write: the next batch continues from this one. */
static void writer_advance(sj_store_batch_t *b) {
  store_region_t *r = b->r;
  r->wfrontier = b->f;
  memcpy(r->wlast_leaf, b->last_leaf, SJ_HASH_LEN);
  for (unsigned tl = 0; tl < TILE_LEVELS; tl++) {
    if (b->loaded & (1u << tl))
      r->wtiles[tl] = b->cur[tl];
  }
}

void store_batch_destroy(sj_store_batch_t *b) {
  if (b == NULL)
    return;
  rocksdb_writebatch_destroy(b->wb);
  free(b->pend);
  sj_buf_deinit(&b->arena);
  sj_buf_deinit(&b->vals);
  free(b->rows);
  free(b);
}

/* Keeps b as the region's spare for the next batch, unless there is one or b grew past
 * BATCH_SPARE_MAX (a rare huge batch does not pin its memory). Under pub_lock. */
static void batch_release(sj_store_batch_t *b) {
  store_region_t *r = b->r;
  size_t wn = 0;
  rocksdb_writebatch_data(b->wb, &wn);
  if (r->spare == NULL &&
      wn + b->arena.cap + b->vals.cap + b->caprows * sizeof *b->rows <= BATCH_SPARE_MAX)
    r->spare = b;
  else
    store_batch_destroy(b);
}

/* Ends a batch that holds the region: released, and the region is free. */
static void batch_free(sj_store_batch_t *b) {
  store_region_t *r = b->r;
  pthread_mutex_lock(&r->pub_lock);
  batch_release(b);
  pthread_mutex_unlock(&r->pub_lock);
  atomic_store(&r->busy, 0);
}

void sj_store_batch_abort(sj_store_batch_t *b) {
  if (b != NULL)
    batch_free(b);
}

/* tree: (region, tile level, tile index) -> tile. A tile is rewritten whole each time it grows. */
static void put_tile(sj_store_batch_t *b, unsigned tl, const store_tile_t *t) {
  uint8_t k[TREE_KEY_LEN], v[TILE_VAL_MAX];
  store_tree_key(k, b->r->code, tl, t->index);
  size_t n = store_tile_encode(t, v);
  rocksdb_writebatch_put_cf(b->wb, b->s->cf[CF_TREE], (const char *)k, sizeof k, (const char *)v,
                            n);
}

/* An append completes at most 64 nodes; room for them is made before anything changes. */
static int pend_reserve(sj_store_batch_t *b) {
  if (b->cappend - b->npend >= STORE_MAX_LEVELS)
    return 0;
  size_t cap = b->cappend ? 2 * b->cappend : 256;
  pending_node_t *p = realloc(b->pend, cap * sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  b->pend = p;
  b->cappend = cap;
  return 0;
}

/* The batch's copy of the last tile of level tl, moved on to tile j when the node to be set is
 * the first of a new tile: the previous one is then complete and written now if it changed. */
static store_tile_t *batch_tile(sj_store_batch_t *b, unsigned tl, uint64_t j) {
  store_tile_t *t = &b->cur[tl];
  if (!(b->loaded & (1u << tl))) {
    *t = b->r->wtiles[tl]; /* the writer's side: only the holder of busy touches it */
    b->loaded |= 1u << tl;
  }
  if (t->index != j) {
    if (b->dirty & (1u << tl))
      put_tile(b, tl, t);
    t->index = j;
    t->m = 0;
  }
  b->dirty |= 1u << tl;
  return t;
}

/* Receives the leaf (level 0) and every perfect subtree the append completes. Never fails:
 * pend_reserve ran before. */
static int emit_node(void *ctx, unsigned level, uint64_t index, const uint8_t hash[SJ_HASH_LEN]) {
  sj_store_batch_t *b = ctx;
  unsigned tl, d, slot;
  uint64_t j;
  store_tile_locate(level, index, &tl, &j, &d, &slot);
  store_tile_set(batch_tile(b, tl, j), d, slot, hash);
  if (level >= STORE_CACHE_LEVEL) {
    pending_node_t *p = &b->pend[b->npend++];
    p->level = level;
    p->index = index;
    memcpy(p->h, hash, SJ_HASH_LEN);
  }
  return 0;
}

/* own: the caller made the header's body hash from body itself (sj_store_batch_add_own), so only
 * the length is compared; everything else hashes the body. */
static int check_entry(const sj_store_batch_t *b, const sj_entry_header_t *h, const uint8_t *body,
                       size_t bn, int own) {
  if (h->region != b->r->code)
    return SJ_EINVAL;
  if (h->seq != b->f.size)
    return SJ_ESEQ;
  if (memcmp(h->prev, b->last_leaf, SJ_HASH_LEN) != 0)
    return SJ_ECHAIN;
  if (body != NULL && own)
    return bn == h->body_len ? 0 : SJ_EVERIFY;
  if (body != NULL)
    return sj_entry_check_body(h, body, bn);
  return 0;
}

/* entries: (region, seq) -> flags | header length | header | body. */
static void put_entry_row(sj_store_batch_t *b, const sj_entry_header_t *h, const uint8_t *hdr,
                          size_t hn, const uint8_t *body, size_t bn) {
  uint8_t k[ENTRY_KEY_LEN], pre[ENTRY_VAL_HDR];
  store_entry_key(k, h->region, h->seq);
  pre[0] = body != NULL ? ENTRY_FLAG_BODY : 0;
  sj_put_be32(pre + 1, (uint32_t)hn);
  const char *kl[1] = {(const char *)k};
  size_t ks[1] = {sizeof k};
  const char *vl[3] = {(const char *)pre, (const char *)hdr, (const char *)body};
  size_t vs[3] = {sizeof pre, hn, body != NULL ? bn : 0};
  rocksdb_writebatch_putv_cf(b->wb, b->s->cf[CF_ENTRIES], 1, kl, ks, body != NULL ? 3 : 2, vl, vs);
}

/* Room for the entry's index rows and their value (vbytes), made before anything changes. */
static int rows_reserve(sj_store_batch_t *b, const sj_entry_header_t *h, size_t vbytes) {
  size_t bytes = 0;
  for (uint16_t i = 0; i < h->nkeys; i++)
    bytes += 1u + h->keys[i].len;
  if (b->caprows - b->nrows < h->nkeys) {
    size_t cap = b->caprows ? 2 * b->caprows : 256;
    while (cap - b->nrows < h->nkeys)
      cap *= 2;
    index_row_t *p = realloc(b->rows, cap * sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    b->rows = p;
    b->caprows = cap;
  }
  int rv = sj_buf_reserve(&b->arena, bytes);
  return rv == 0 && h->nkeys > 0 ? sj_buf_reserve(&b->vals, vbytes) : rv;
}

/* Index rows: USCC / PERSON / OTHER_ID keys go to subjects, EPC keys to trace. Their value is
 * the entry's time and, when copy is set, what a lookup reads of the entry (keys.c): leaf hash,
 * annotation, header and body. */
static void add_index_rows(sj_store_batch_t *b, const sj_entry_header_t *h, const uint8_t *hdr,
                           size_t hn, const uint8_t *body, size_t bn,
                           const uint8_t leaf[SJ_HASH_LEN], const uint8_t *facts, size_t facts_n,
                           int copy) {
  uint8_t ikey[INDEX_KEY_MAX];
  if (h->nkeys == 0)
    return;
  size_t voff = b->vals.n; /* reserved: cannot fail */
  size_t vlen = store_ival_encode(b->vals.p + voff, h->time_ms, leaf, facts, facts_n,
                                  copy ? hdr : NULL, hn, body, bn);
  b->vals.n += vlen;
  b->vals.p[b->vals.n] = 0; /* an sj_buf_t keeps a NUL after its data (reserved with it) */
  for (uint16_t i = 0; i < h->nkeys; i++) {
    const sj_index_key_t *k = &h->keys[i];
    index_row_t *r = &b->rows[b->nrows++];
    r->klen = (uint16_t)sj_store_index_key(k->type, k->p, k->len, ikey);
    r->off = b->arena.n;
    r->voff = voff;
    r->vlen = vlen;
    r->seq = h->seq;
    r->time_ms = h->time_ms;
    r->cf = k->type == SJ_KEY_EPC ? CF_TRACE : CF_SUBJECTS;
    sj_buf_append(&b->arena, ikey, r->klen); /* reserved: cannot fail */
  }
}

/* ---- Index rows at commit (why they wait in memory: memindex.c) ------------------------------ */

static void put_wmark(sj_store_batch_t *b, uint64_t wm) {
  uint8_t k[WMARK_KEY_LEN], v[8];
  store_wmark_key(k, b->r->code);
  sj_put_be64(v, wm);
  rocksdb_writebatch_put_cf(b->wb, b->s->cf[CF_META], (const char *)k, sizeof k, (const char *)v,
                            sizeof v);
}

/* Ingests the region's in-memory rows, and those of its sealed generation when the ingester
 * left it (all of committed entries, so a failure of this commit leaves nothing wrong behind:
 * rows ingested twice are the same rows), and moves the watermark to the committed size in this
 * batch. */
static int ingest_memory(sj_store_batch_t *b, int with_frozen) {
  const store_region_t *r = b->r; /* only this batch changes memidx, and frozen when it is left */
  int rv = store_memidx_ingest(b->s, r->code, &r->memidx, with_frozen ? &r->frozen : NULL);
  if (rv == 0)
    put_wmark(b, r->size); /* only this batch changes size: no lock to read */
  return rv;
}

/* The batch's rows straight into the WriteBatch, sorted. When nothing is held in memory the
 * watermark moves past this batch. */
static int put_direct(sj_store_batch_t *b, int memory_empty) {
  store_row_t *v = malloc(b->nrows * sizeof *v);
  if (v == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < b->nrows; i++)
    v[i] = (store_row_t){b->arena.p + b->rows[i].off,
                         b->rows[i].seq,
                         b->vals.p + b->rows[i].voff,
                         b->rows[i].vlen,
                         b->rows[i].klen,
                         b->rows[i].cf};
  store_rows_sort(v, b->nrows);
  store_rows_put(b->s, b->wb, b->r->code, v, b->nrows);
  free(v);
  if (memory_empty)
    put_wmark(b, b->f.size);
  return 0;
}

/* Holds the batch's rows in memory (room made now: publish cannot fail). When the rows held
 * reach index_buffer_rows, publish seals them for the ingester thread, which writes them to the
 * families while commits go on (ingest.c); if the ingester does not run, or left its last
 * generation unwritten, this commit ingests what is held itself. With index_buffer_rows 0, or
 * no memory to hold them, the rows go into this batch's WriteBatch. A flush (force_bulk) waits
 * for the ingester and ingests everything held. */
static int plan_index(sj_store_batch_t *b, index_plan_t *p) {
  store_region_t *r = b->r;
  sj_store_t *s = b->s;
  size_t held = r->memidx.n;
  int rv = 0;
  int st = !s->ingester_on ? FROZEN_NONE
           : b->force_bulk ? store_frozen_wait(s, r)
                           : store_frozen_state(s, r);
  int full = held + b->nrows >= s->index_buffer_rows;
  int left = st == FROZEN_FAILED; /* a sealed generation the ingester could not write */
  *p = (index_plan_t){0};
  if ((held > 0 || left) && (b->force_bulk || (full && (left || !s->ingester_on)))) {
    p->clear = 1;
    p->clear_frozen = left;
    if ((rv = ingest_memory(b, left)) != 0)
      return rv;
  } else if (full && held > 0 && st == FROZEN_NONE) {
    p->seal = 1;
    p->upto = r->size;
  }
  if (b->nrows == 0)
    return 0;
  if (p->seal) { /* idle is the writer's while nothing is sealed, and invisible to readers */
    p->hold = store_memidx_reserve(&r->idle, b->nrows, b->arena.n, b->vals.n) == 0;
    p->seal = p->hold;
  }
  if (!p->hold && s->index_buffer_rows > 0 &&
      (st != FROZEN_PENDING || held < 4 * s->index_buffer_rows)) {
    pthread_rwlock_wrlock(&r->lock); /* reserve may move the rows readers look at */
    p->hold = store_memidx_reserve(&r->memidx, b->nrows, b->arena.n, b->vals.n) == 0;
    pthread_rwlock_unlock(&r->lock);
  }
  return p->hold ? 0 : put_direct(b, p->clear || (held == 0 && st == FROZEN_NONE));
}

static int batch_add(sj_store_batch_t *b, const uint8_t *header, size_t hn, const uint8_t *body,
                     size_t bn, const uint8_t *facts, size_t facts_n,
                     uint8_t leaf_hash_out[SJ_HASH_LEN], int own) {
  sj_entry_header_t h;
  uint8_t leaf[SJ_HASH_LEN], ann[SJ_STORE_FACTS_MAX];
  if (body == NULL && bn != 0)
    return SJ_EINVAL;
  int rv = sj_entry_decode(header, hn, &h, b->keys, SJ_ENTRY_MAX_KEYS);
  int copy = rv == 0 && store_ival_copies(hn, bn, h.nkeys);
  if (rv == 0)
    rv = check_entry(b, &h, body, bn, own);
  if (rv == 0)
    rv = pend_reserve(b);
  if (rv == 0)
    rv = rows_reserve(b, &h, copy ? IVAL_HDR + SJ_STORE_FACTS_MAX + hn + bn : IVAL_TIME);
  if (rv != 0)
    return rv;
  /* Nothing below can fail. */
  sj_merkle_leaf_hash(header, hn, leaf);
  put_entry_row(b, &h, header, hn, body, bn);
  /* leaf hash and annotation (log_store.c), also copied into the index rows */
  size_t ann_n = store_facts_make(b->s, &h, body, bn, facts, facts_n, ann);
  store_facts_put(b->s, b->wb, &h, leaf, ann, ann_n);
  add_index_rows(b, &h, header, hn, body, bn, leaf, ann, ann_n, copy);
  rv = sj_merkle_frontier_append(&b->f, leaf, emit_node, b);
  (void)rv; /* emit_node never fails */
  memcpy(b->last_leaf, leaf, SJ_HASH_LEN);
  b->added++;
  if (leaf_hash_out != NULL)
    memcpy(leaf_hash_out, leaf, SJ_HASH_LEN);
  return 0;
}

int sj_store_batch_add(sj_store_batch_t *b, const uint8_t *header, size_t hn, const uint8_t *body,
                       size_t bn, uint8_t leaf_hash_out[SJ_HASH_LEN]) {
  return batch_add(b, header, hn, body, bn, NULL, 0, leaf_hash_out, 0);
}

int sj_store_batch_add_own(sj_store_batch_t *b, const uint8_t *header, size_t hn,
                           const uint8_t *body, size_t bn, const uint8_t *facts, size_t facts_n,
                           uint8_t leaf_hash_out[SJ_HASH_LEN]) {
  return batch_add(b, header, hn, body, bn, facts, facts_n, leaf_hash_out, 1);
}

void sj_store_batch_head(const sj_store_batch_t *b, uint64_t *size, uint8_t root[SJ_HASH_LEN],
                         uint8_t last_leaf[SJ_HASH_LEN]) {
  *size = b->f.size;
  if (root != NULL)
    sj_merkle_frontier_root(&b->f, root);
  if (last_leaf != NULL)
    memcpy(last_leaf, b->last_leaf, SJ_HASH_LEN);
}

int sj_store_batch_set_checkpoint(sj_store_batch_t *b, const char *note, size_t n) {
  uint8_t k[CKPT_KEY_LEN];
  store_ckpt_key(k, b->r->code, b->f.size);
  rocksdb_writebatch_put_cf(b->wb, b->s->cf[CF_CHECKPOINTS], (const char *)k, sizeof k, note, n);
  return 0;
}

int sj_store_batch_put_meta(sj_store_batch_t *b, const char *key, const void *val, size_t n) {
  rocksdb_writebatch_put_cf(b->wb, b->s->cf[CF_META], key, strlen(key), val, n);
  return 0;
}

/* Makes the written batch visible: size, frontier, root, last leaf, cache and index rows, all at
 * once. */
static void publish(sj_store_batch_t *b, const index_plan_t *plan) {
  store_region_t *r = b->r;
  uint8_t root[SJ_HASH_LEN];
  sj_merkle_frontier_root(&b->f, root);
  pthread_rwlock_wrlock(&r->lock);
  r->size = b->f.size;
  r->frontier = b->f;
  memcpy(r->root, root, SJ_HASH_LEN);
  memcpy(r->last_leaf, b->last_leaf, SJ_HASH_LEN);
  for (unsigned tl = 0; tl < TILE_LEVELS; tl++) {
    if (b->loaded & (1u << tl))
      r->tiles[tl] = b->cur[tl];
  }
  for (size_t i = 0; i < b->npend; i++)
    store_cache_add(r, b->pend[i].level, b->pend[i].index, b->pend[i].h);
  if (plan->clear)
    store_memidx_clear(&r->memidx);
  if (plan->clear_frozen)
    store_region_retire_frozen(r);
  if (plan->seal) {
    r->frozen = r->memidx;
    r->frozen_upto = plan->upto;
    r->memidx = r->idle; /* room for this batch's rows was reserved in it */
    store_memidx_init(&r->idle);
  }
  uint32_t voff = 0;
  for (size_t i = 0; plan->hold && i < b->nrows; i++) {
    const index_row_t *x = &b->rows[i];
    if (i == 0 || x->voff != b->rows[i - 1].voff) /* an entry's rows share its value */
      voff = store_memidx_add_value(&r->memidx, b->vals.p + x->voff, x->vlen);
    store_memidx_add(&r->memidx, x->cf, b->arena.p + x->off, x->klen, x->seq, x->time_ms, voff,
                     (uint32_t)x->vlen);
  }
  pthread_rwlock_unlock(&r->lock);
  if (plan->seal)
    store_frozen_set(b->s, r, FROZEN_PENDING);
  else if (plan->clear_frozen)
    store_frozen_set(b->s, r, FROZEN_NONE);
}

/* Waits until the region's written batch, if any, is published: plan_index works on the
 * committed in-memory index and the watermark on the committed size. SJ_ESTORE if it was dropped
 * (this batch was built on it). */
static int wait_published(store_region_t *r) {
  pthread_mutex_lock(&r->pub_lock);
  while (r->unpublished > 0)
    pthread_cond_wait(&r->pub_cond, &r->pub_lock);
  int rv = r->dropped ? SJ_ESTORE : 0;
  pthread_mutex_unlock(&r->pub_lock);
  return rv;
}

/* Completes the batch (index rows, last tiles, head row) and writes it. */
static int batch_write(sj_store_batch_t *b, int sync) {
  int rv = wait_published(b->r);
  if (rv == 0)
    rv = plan_index(b, &b->plan);
  if (rv != 0)
    return rv;
  for (unsigned tl = 0; tl < TILE_LEVELS; tl++) {
    if (b->dirty & (1u << tl))
      put_tile(b, tl, &b->cur[tl]);
  }
  if (b->added > 0) {
    uint8_t k[HEAD_KEY_LEN], v[8];
    store_head_key(k, b->r->code);
    sj_put_be64(v, b->f.size);
    rocksdb_writebatch_put_cf(b->wb, b->s->cf[CF_META], (const char *)k, sizeof k, (const char *)v,
                              sizeof v);
  }
  return store_write(b->s, b->wb, sync);
}

int sj_store_batch_commit(sj_store_batch_t *b, int sync) {
  int rv = batch_write(b, sync);
  if (rv == 0) {
    writer_advance(b);
    if (b->added > 0 || b->plan.clear)
      publish(b, &b->plan);
  }
  batch_free(b);
  return rv;
}

int sj_store_batch_write(sj_store_batch_t *b) {
  store_region_t *r = b->r;
  int rv = batch_write(b, 0);
  if (rv != 0) {
    batch_free(b);
    return rv;
  }
  writer_advance(b);
  pthread_mutex_lock(&r->pub_lock);
  r->unpublished++;
  pthread_mutex_unlock(&r->pub_lock);
  atomic_store(&r->busy, 0);
  return 0;
}

void sj_store_batch_publish(sj_store_batch_t *b, int ok) {
  store_region_t *r = b->r;
  if (ok && (b->added > 0 || b->plan.clear))
    publish(b, &b->plan);
  pthread_mutex_lock(&r->pub_lock);
  if (!ok)
    r->dropped = 1;
  r->unpublished--;
  batch_release(b);
  pthread_cond_broadcast(&r->pub_cond);
  pthread_mutex_unlock(&r->pub_lock);
}

int store_region_flush_index(sj_store_t *s, store_region_t *r) {
  sj_store_batch_t *b = NULL;
  int rv = sj_store_batch_begin(s, r->code, &b);
  if (rv != 0)
    return rv;
  b->force_bulk = 1;
  return sj_store_batch_commit(b, 1);
}
