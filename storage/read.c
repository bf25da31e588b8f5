/* Entry reads, index scans (the index families merged with the in-memory rows), and re-deriving
 * the in-memory index at open. */
#include "storage/storage_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int committed_size(sj_store_t *s, uint32_t region, uint64_t *size) {
  store_region_t *r = store_region_find(s, region);
  *size = 0;
  if (r != NULL) {
    pthread_rwlock_rdlock(&r->lock);
    *size = r->size;
    pthread_rwlock_unlock(&r->lock);
  }
  return 0;
}

/* Splits an entry row value; every length is checked against the bytes there (disk is input). */
static int parse_entry(const uint8_t *v, size_t n, sj_bytes_t *hdr, sj_bytes_t *body,
                       int *has_body) {
  if (n < ENTRY_VAL_HDR || (v[0] & ~ENTRY_FLAG_BODY) != 0)
    return store_corrupt("entry row header");
  uint32_t hn = sj_get_be32(v + 1);
  if (hn > n - ENTRY_VAL_HDR)
    return store_corrupt("entry row header length");
  *has_body = (v[0] & ENTRY_FLAG_BODY) != 0;
  if (!*has_body && n - ENTRY_VAL_HDR != hn)
    return store_corrupt("withheld entry row carries a body");
  hdr->p = v + ENTRY_VAL_HDR;
  hdr->n = hn;
  body->p = v + ENTRY_VAL_HDR + hn;
  body->n = n - ENTRY_VAL_HDR - hn;
  return 0;
}

/* Replaces out with bytes. */
static int buf_set(sj_buf_t *out, sj_bytes_t bytes) {
  sj_buf_reset(out);
  return sj_buf_append(out, bytes.p, bytes.n);
}

int sj_store_get_entry(sj_store_t *s, uint32_t region, uint64_t seq, sj_buf_t *header,
                       sj_buf_t *body, int *has_body) {
  uint8_t k[ENTRY_KEY_LEN];
  uint64_t size;
  char *v = NULL;
  size_t n = 0;
  sj_bytes_t h = {NULL, 0}, bd = {NULL, 0};
  int held = 0;
  committed_size(s, region, &size);
  if (seq >= size)
    return SJ_ENOTFOUND;
  store_entry_key(k, region, seq);
  int rv = store_get(s, CF_ENTRIES, k, sizeof k, &v, &n);
  if (rv == 0 && v == NULL)
    rv = store_corrupt("entry below the head is missing");
  if (rv == 0)
    rv = parse_entry((const uint8_t *)v, n, &h, &bd, &held);
  /* Only -ENOMEM can fail from here on (then header may already hold the new bytes). */
  if (rv == 0)
    rv = buf_set(header, h);
  if (rv == 0 && body != NULL)
    rv = buf_set(body, bd);
  if (rv == 0 && has_body != NULL)
    *has_body = held;
  rocksdb_free(v);
  return rv;
}

/* ---- Several entries at once ------------------------------------------------------------------
 */

#define MULTI_MAX 64 /* keys per MultiGet call */

/* One family's rows for keys[0..n-1] (sorted: in key order), into vals (NULL where absent). */
static int multi_get(sj_store_t *s, int cf, const char *const *keys, const size_t *kn, size_t n,
                     int sorted, rocksdb_pinnableslice_t **vals) {
  char *errs[MULTI_MAX];
  int rv = 0;
  rocksdb_batched_multi_get_cf(s->db, s->ro, s->cf[cf], n, keys, kn, vals, errs, sorted != 0);
  for (size_t i = 0; i < n; i++) {
    if (errs[i] != NULL && rv == 0)
      rv = store_rocks_error(errs[i]);
    else
      rocksdb_free(errs[i]);
  }
  return rv;
}

static void slices_free(rocksdb_pinnableslice_t **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i] != NULL)
      rocksdb_pinnableslice_destroy(v[i]);
}

/* refs[0..n-1] (n <= MULTI_MAX): looks up each committed one, then calls fn in order. */
static int get_chunk(sj_store_t *s, const sj_entry_ref_t *refs, size_t n, size_t base, int what,
                     sj_store_entry_fn fn, void *ctx) {
  uint8_t kb[MULTI_MAX][ENTRY_KEY_LEN];
  const char *keys[MULTI_MAX];
  size_t kn[MULTI_MAX], idx[MULTI_MAX], m = 0;
  rocksdb_pinnableslice_t *ev[MULTI_MAX] = {0}, *fv[MULTI_MAX] = {0};
  uint32_t size_region = 0;
  uint64_t size = 0;
  int have_size = 0, rv = 0;
  for (size_t i = 0; i < n; i++) {
    if (!have_size || refs[i].region != size_region) {
      committed_size(s, refs[i].region, &size);
      size_region = refs[i].region;
      have_size = 1;
    }
    if (refs[i].seq >= size)
      continue;
    store_entry_key(kb[m], refs[i].region, refs[i].seq);
    keys[m] = (const char *)kb[m];
    kn[m] = ENTRY_KEY_LEN;
    idx[m++] = i;
  }
  /* MultiGet wants sorted keys; refs usually are, so sort only when they are not. */
  int sorted = 1;
  for (size_t j = 1; j < m && sorted; j++)
    sorted = memcmp(keys[j - 1], keys[j], ENTRY_KEY_LEN) < 0;
  if (m > 0 && (what & SJ_GET_ENTRY))
    rv = multi_get(s, CF_ENTRIES, keys, kn, m, sorted, ev);
  if (m > 0 && rv == 0 && (what & SJ_GET_FACTS))
    rv = multi_get(s, CF_FACTS, keys, kn, m, sorted, fv);
  size_t j = 0;
  for (size_t i = 0; i < n && rv == 0; i++) {
    sj_store_entry_t e = {0};
    if (j < m && idx[j] == i) {
      e.found = 1;
      if (what & SJ_GET_ENTRY) {
        size_t vn = 0;
        const uint8_t *v = ev[j] ? (const uint8_t *)rocksdb_pinnableslice_value(ev[j], &vn) : NULL;
        sj_bytes_t h = {NULL, 0}, bd = {NULL, 0};
        rv = v == NULL ? store_corrupt("entry below the head is missing")
                       : parse_entry(v, vn, &h, &bd, &e.has_body);
        e.header = h.p, e.hn = h.n, e.body = bd.p, e.bn = bd.n;
      }
      if (rv == 0 && (what & SJ_GET_FACTS) && fv[j] != NULL) {
        size_t vn = 0;
        const uint8_t *v = (const uint8_t *)rocksdb_pinnableslice_value(fv[j], &vn);
        if (vn < SJ_HASH_LEN || vn > SJ_HASH_LEN + SJ_STORE_FACTS_MAX)
          rv = store_corrupt("facts row");
        e.leaf = v, e.facts = v + SJ_HASH_LEN, e.facts_n = vn - SJ_HASH_LEN;
      }
      j++;
    }
    if (rv == 0) {
      int frv = fn(ctx, base + i, &e);
      if (frv != 0)
        rv = frv > 0 ? 1 : frv;
    }
  }
  slices_free(ev, m);
  slices_free(fv, m);
  return rv;
}

int sj_store_get_entries(sj_store_t *s, const sj_entry_ref_t *refs, size_t n, int what,
                         sj_store_entry_fn fn, void *ctx) {
  int rv = 0;
  for (size_t i = 0; i < n && rv == 0; i += MULTI_MAX)
    rv = get_chunk(s, refs + i, n - i < MULTI_MAX ? n - i : MULTI_MAX, i, what, fn, ctx);
  return rv > 0 ? 0 : rv;
}

/* The smallest key greater than every key starting with prefix: the prefix "plus one". Returns 0
 * when no such key exists (the prefix is all 0xFF), which cannot happen for index prefixes. */
static size_t prefix_successor(const uint8_t *p, size_t n, uint8_t *out) {
  memcpy(out, p, n);
  while (n > 0) {
    if (out[n - 1] != 0xFF) {
      out[n - 1]++;
      return n;
    }
    n--;
  }
  return 0;
}

/* ---- Scans: the index families merged with the regions' in-memory rows ----------------------- */

typedef struct {
  uint32_t region;
  uint64_t seq;
  uint64_t time_ms;
  size_t voff; /* in-memory rows: the row's value copied at copies + voff ... */
  size_t vlen; /* ... vlen bytes; 0: not copied */
} ref_t;

typedef struct {
  ref_t *v; /* owned */
  size_t n;
  size_t cap;
  int oom;
  int want_copy;               /* copy the values of rows that carry a copy (up to a budget) */
  sj_buf_t copies;             /* owned: those values */
  uint32_t region;             /* the region being gathered */
  const sj_entry_ref_t *after; /* NULL: from the start */
} refs_t;

static int ref_cmp(uint32_t ra, uint64_t sa, uint32_t rb, uint64_t sb) {
  if (ra != rb)
    return ra < rb ? -1 : 1;
  return (sa > sb) - (sa < sb);
}

static int ref_sort(const void *x, const void *y) {
  const ref_t *a = x, *b = y;
  return ref_cmp(a->region, a->seq, b->region, b->seq);
}

static int after_it(const sj_entry_ref_t *after, uint32_t region, uint64_t seq) {
  return after == NULL || ref_cmp(region, seq, after->region, after->seq) > 0;
}

/* Runs under the region's read lock: the value is copied out (the arena may move later). */
static void refs_add(void *ctx, uint64_t seq, uint64_t time_ms, const uint8_t *v, size_t vn) {
  refs_t *r = ctx;
  if (r->oom || !after_it(r->after, r->region, seq))
    return;
  if (r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 64;
    ref_t *p = realloc(r->v, cap * sizeof *p);
    if (p == NULL) {
      r->oom = 1;
      return;
    }
    r->v = p;
    r->cap = cap;
  }
  ref_t *x = &r->v[r->n++];
  *x = (ref_t){r->region, seq, time_ms, 0, 0};
  if (r->want_copy && vn > IVAL_TIME && vn <= SJ_STORE_SCAN_COPY_MAX - r->copies.n &&
      sj_buf_append(&r->copies, v, vn) == 0) {
    x->voff = r->copies.n - vn;
    x->vlen = vn;
  }
}

/* The in-memory rows of (cf, key) of every region, sorted. Gathered before the families are read:
 * a row that moves from memory to a family meanwhile is then seen at least once. */
static int gather_memory(sj_store_t *s, uint8_t cf, const uint8_t *key, size_t keylen,
                         refs_t *refs) {
  pthread_rwlock_rdlock(&s->regions_lock);
  for (size_t i = 0; i < s->nregions; i++) {
    store_region_t *r = s->regions[i];
    pthread_rwlock_rdlock(&r->lock);
    refs->region = r->code;
    store_memidx_find(&r->memidx, cf, key, keylen, refs_add, refs);
    store_memidx_find(&r->frozen, cf, key, keylen, refs_add, refs); /* being ingested */
    pthread_rwlock_unlock(&r->lock);
  }
  pthread_rwlock_unlock(&s->regions_lock);
  if (refs->oom)
    return -ENOMEM;
  if (refs->n > 1)
    qsort(refs->v, refs->n, sizeof *refs->v, ref_sort);
  return 0;
}

/* A cursor over the family rows of one key: committed rows after `after`, in order. */
typedef struct {
  sj_store_t *s;
  rocksdb_iterator_t *it;
  size_t pn; /* row prefix length */
  const sj_entry_ref_t *after;
  uint32_t size_region; /* committed size of size_region, cached */
  uint64_t size;
  int have_size;
  int valid; /* ref holds the current row */
  ref_t ref;
  int has_copy;       /* the current row carries a copy of its entry: */
  sj_store_entry_t e; /* it, borrowing from the iterator until it moves */
} db_cursor_t;

/* Moves to the next row to report (the first one when called after the seek). */
static int db_next(db_cursor_t *c, int advance) {
  size_t kn = 0, vn = 0;
  c->valid = 0;
  for (; rocksdb_iter_valid(c->it); rocksdb_iter_next(c->it)) {
    if (advance) {
      advance = 0;
      continue;
    }
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(c->it, &kn);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(c->it, &vn);
    if (kn != c->pn + 12)
      return store_corrupt("index row");
    ref_t r = {sj_get_be32(k + c->pn), sj_get_be64(k + c->pn + 4), 0, 0, 0};
    if (!after_it(c->after, r.region, r.seq))
      continue; /* the seek landed on the row to resume after */
    if (!c->have_size || r.region != c->size_region) {
      committed_size(c->s, r.region, &c->size);
      c->size_region = r.region;
      c->have_size = 1;
    }
    if (r.seq >= c->size)
      continue; /* written by a commit that has not published its head yet */
    int rv = store_ival_decode(v, vn, &r.time_ms, &c->e, &c->has_copy);
    if (rv != 0)
      return rv;
    c->ref = r;
    c->valid = 1;
    return 0;
  }
  return 0;
}

/* Merges the two sorted streams, reporting each (region, seq) once. */
static int merge(db_cursor_t *c, const refs_t *mem, sj_store_scan_entry_fn fn, void *ctx) {
  size_t mi = 0;
  ref_t last = {0, 0, 0, 0, 0};
  int have_last = 0;
  int rv = db_next(c, 0);
  while (rv == 0 && (c->valid || mi < mem->n)) {
    int from_db = c->valid && (mi == mem->n || ref_cmp(c->ref.region, c->ref.seq, mem->v[mi].region,
                                                       mem->v[mi].seq) <= 0);
    ref_t r = from_db ? c->ref : mem->v[mi];
    /* In memory and in the family, or a key named twice by one entry: reported once. */
    if (!have_last || ref_cmp(r.region, r.seq, last.region, last.seq) != 0) {
      sj_store_entry_t me;
      const sj_store_entry_t *e = from_db && c->has_copy ? &c->e : NULL;
      int has = 0;
      last = r;
      have_last = 1;
      if (!from_db && r.vlen > 0) {
        uint64_t t;
        if ((rv = store_ival_decode(mem->copies.p + r.voff, r.vlen, &t, &me, &has)) != 0)
          return rv;
        e = has ? &me : NULL;
      }
      int frv = fn(ctx, r.region, r.seq, r.time_ms, e);
      if (frv != 0)
        return frv > 0 ? 0 : frv;
    }
    if (from_db)
      rv = db_next(c, 1);
    else
      mi++;
  }
  return rv;
}

static int scan(sj_store_t *s, sj_index_t idx, const uint8_t *key, size_t keylen,
                const sj_entry_ref_t *after, int want_copy, sj_store_scan_entry_fn fn, void *ctx) {
  uint8_t start[INDEX_ROW_MAX], upper[2 + INDEX_KEY_MAX];
  char *err = NULL;
  refs_t mem = {.after = after, .want_copy = want_copy};
  if (keylen == 0 || keylen > INDEX_KEY_MAX || (idx != SJ_INDEX_SUBJECTS && idx != SJ_INDEX_TRACE))
    return SJ_EINVAL;
  uint8_t cf = idx == SJ_INDEX_TRACE ? CF_TRACE : CF_SUBJECTS;
  int rv = gather_memory(s, cf, key, keylen, &mem);
  if (rv != 0) {
    free(mem.v);
    sj_buf_deinit(&mem.copies);
    return rv;
  }
  size_t pn = store_index_prefix(start, key, keylen);
  size_t sn = after != NULL ? store_index_row(start, key, keylen, after->region, after->seq) : pn;
  size_t un = prefix_successor(start, pn, upper);
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)upper, un);
  rocksdb_readoptions_set_prefix_same_as_start(ro, 1);
  db_cursor_t c = {.s = s, .pn = pn, .after = after};
  c.it = rocksdb_create_iterator_cf(s->db, ro, s->cf[cf]);
  rocksdb_iter_seek(c.it, (const char *)start, sn);
  rv = merge(&c, &mem, fn, ctx);
  rocksdb_iter_get_error(c.it, &err);
  if (err != NULL && rv == 0)
    rv = store_rocks_error(err);
  else
    rocksdb_free(err);
  rocksdb_iter_destroy(c.it);
  rocksdb_readoptions_destroy(ro);
  free(mem.v);
  sj_buf_deinit(&mem.copies);
  return rv;
}

int sj_store_scan_entries(sj_store_t *s, sj_index_t idx, const uint8_t *key, size_t keylen,
                          const sj_entry_ref_t *after, sj_store_scan_entry_fn fn, void *ctx) {
  return scan(s, idx, key, keylen, after, 1, fn, ctx);
}

/* sj_store_scan: the same rows, without their copies. */
typedef struct {
  sj_store_scan_fn fn;
  void *ctx;
} refs_only_t;

static int refs_only(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms,
                     const sj_store_entry_t *e) {
  const refs_only_t *x = ctx;
  (void)e;
  return x->fn(x->ctx, region, seq, time_ms);
}

int sj_store_scan(sj_store_t *s, sj_index_t idx, const uint8_t *key, size_t keylen,
                  const sj_entry_ref_t *after, sj_store_scan_fn fn, void *ctx) {
  refs_only_t x = {fn, ctx};
  return scan(s, idx, key, keylen, after, 0, refs_only, &x);
}

/* ---- Re-deriving the in-memory index at open ------------------------------------------------- */

/* The facts row of an entry at recovery, read with an iterator that moves along with the entries:
 * *leaf and the annotation, or leaf NULL when the entry has none (stored before they were kept). */
typedef struct {
  rocksdb_iterator_t *it; /* over the facts family, at or after the entry looked for last */
  const uint8_t *leaf;
  const uint8_t *facts;
  size_t facts_n;
} facts_cursor_t;

static int facts_at(facts_cursor_t *f, const uint8_t k[ENTRY_KEY_LEN]) {
  size_t kn = 0, vn = 0;
  f->leaf = NULL;
  f->facts_n = 0;
  for (; rocksdb_iter_valid(f->it); rocksdb_iter_next(f->it)) {
    const char *key = rocksdb_iter_key(f->it, &kn);
    int c = memcmp(key, k, kn < ENTRY_KEY_LEN ? kn : ENTRY_KEY_LEN);
    if (c < 0 || (c == 0 && kn < ENTRY_KEY_LEN))
      continue;
    if (c > 0 || kn != ENTRY_KEY_LEN)
      return 0; /* no row for this entry */
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(f->it, &vn);
    if (vn < SJ_HASH_LEN || vn > SJ_HASH_LEN + SJ_STORE_FACTS_MAX)
      return store_corrupt("facts row");
    f->leaf = v;
    f->facts = v + SJ_HASH_LEN;
    f->facts_n = vn - SJ_HASH_LEN;
    return 0;
  }
  return 0;
}

/* The entry's rows, with the copy its commit put in them (batch.c) where it had one. */
static int memidx_add_entry(store_region_t *r, const uint8_t *v, size_t n, sj_index_key_t *keys,
                            const facts_cursor_t *f, sj_buf_t *val) {
  sj_bytes_t hdr = {NULL, 0}, body = {NULL, 0};
  sj_entry_header_t h = {0};
  uint8_t ikey[INDEX_KEY_MAX], leaf[SJ_HASH_LEN];
  int has = 0;
  int rv = parse_entry(v, n, &hdr, &body, &has);
  if (rv == 0 && sj_entry_decode(hdr.p, hdr.n, &h, keys, SJ_ENTRY_MAX_KEYS) != 0)
    rv = store_corrupt("stored header does not decode");
  if (rv != 0 || h.nkeys == 0)
    return rv;
  size_t bytes = 0;
  for (uint16_t i = 0; i < h.nkeys; i++)
    bytes += 1u + keys[i].len;
  int copy = store_ival_copies(hdr.n, body.n, h.nkeys);
  const uint8_t *bp = has ? body.p : NULL;
  sj_buf_reset(val);
  rv = sj_buf_reserve(val, copy ? store_ival_size(hdr.n, bp, body.n, f->facts_n) : IVAL_TIME);
  if (rv != 0)
    return rv;
  if (f->leaf != NULL)
    memcpy(leaf, f->leaf, SJ_HASH_LEN);
  else
    sj_merkle_leaf_hash(hdr.p, hdr.n, leaf);
  val->n = store_ival_encode(val->p, h.time_ms, leaf, f->facts, f->facts_n, copy ? hdr.p : NULL,
                             hdr.n, bp, body.n);
  val->p[val->n] = 0; /* an sj_buf_t keeps a NUL after its data (reserved with it) */
  rv = store_memidx_reserve(&r->memidx, h.nkeys, bytes, val->n);
  if (rv != 0)
    return rv;
  uint32_t voff = store_memidx_add_value(&r->memidx, val->p, val->n);
  for (uint16_t i = 0; i < h.nkeys; i++) {
    size_t kn = sj_store_index_key(keys[i].type, keys[i].p, keys[i].len, ikey);
    store_memidx_add(&r->memidx, keys[i].type == SJ_KEY_EPC ? CF_TRACE : CF_SUBJECTS, ikey, kn,
                     h.seq, h.time_ms, voff, (uint32_t)val->n);
  }
  return 0;
}

int store_memidx_recover(sj_store_t *s, store_region_t *r) {
  uint8_t wk[WMARK_KEY_LEN], k[ENTRY_KEY_LEN];
  char *v = NULL, *err = NULL;
  size_t n = 0, kn = 0, vn = 0;
  uint64_t wm = 0, seq;
  sj_buf_t val = {0};
  store_wmark_key(wk, r->code);
  int rv = store_get(s, CF_META, wk, sizeof wk, &v, &n);
  if (rv == 0 && v != NULL && n != 8)
    rv = store_corrupt("index watermark");
  if (rv == 0 && v != NULL)
    wm = sj_get_be64((const uint8_t *)v);
  rocksdb_free(v);
  if (rv != 0 || wm >= r->size)
    return rv;
  sj_index_key_t *keys = malloc(SJ_ENTRY_MAX_KEYS * sizeof *keys);
  if (keys == NULL)
    return -ENOMEM;
  store_entry_key(k, r->code, wm);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_ENTRIES]);
  facts_cursor_t f = {rocksdb_create_iterator_cf(s->db, s->ro, s->cf[CF_FACTS]), NULL, NULL, 0};
  rocksdb_iter_seek(it, (const char *)k, sizeof k);
  rocksdb_iter_seek(f.it, (const char *)k, sizeof k);
  for (seq = wm; rv == 0 && seq < r->size && rocksdb_iter_valid(it); seq++, rocksdb_iter_next(it)) {
    const char *key = rocksdb_iter_key(it, &kn);
    const char *value = rocksdb_iter_value(it, &vn);
    store_entry_key(k, r->code, seq);
    if (kn != sizeof k || memcmp(key, k, sizeof k) != 0)
      rv = store_corrupt("entries below the head are missing");
    if (rv == 0)
      rv = facts_at(&f, k);
    if (rv == 0)
      rv = memidx_add_entry(r, (const uint8_t *)value, vn, keys, &f, &val);
  }
  rocksdb_iter_get_error(it, &err);
  if (err == NULL)
    rocksdb_iter_get_error(f.it, &err);
  if (err != NULL && rv == 0)
    rv = store_rocks_error(err);
  else
    rocksdb_free(err);
  if (rv == 0 && seq < r->size)
    rv = store_corrupt("entries below the head are missing");
  rocksdb_iter_destroy(it);
  rocksdb_iter_destroy(f.it);
  sj_buf_deinit(&val);
  free(keys);
  return rv;
}
