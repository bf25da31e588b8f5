/* node/api_read.c — lookups answered from the node's own store: one record, every record about a
 * subject, every event naming a trace code. Point reads run on the loop (ARCHITECTURE §7). */
#include "node/node_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define SCAN_MAX 200000 /* index rows read for one lookup; beyond it the answer says truncated */
#define COPY_BUDGET (1u << 20) /* bytes of the index rows' entry copies one lookup keeps */

static void answer_record(sj_node_t *n, sj_req_t *req, const caller_t *c, uint32_t region,
                          uint64_t seq, const sj_bytes_t *fetched, uint64_t t0) {
  sj_buf_t out = {0}, hb = {0}, bb = {0};
  int rv = api_entry_json(n, c, region, seq, 1, fetched, &out, &hb, &bb);
  if (rv == SJ_ENOTFOUND)
    api_problem(n, req, R_RECORD_GET, 404, "Not Found", "no such entry in the logs this node holds",
                NULL);
  else if (rv)
    api_problem(n, req, R_RECORD_GET, 500, "Storage error", sj_strerror(rv), NULL);
  else
    api_reply(n, req, R_RECORD_GET, 200, "application/json", &out, t0);
  sj_buf_deinit(&out);
  sj_buf_deinit(&hb);
  sj_buf_deinit(&bb);
}

/* A replica read of a body that stayed at its origin, by a caller allowed to see it. */
typedef struct {
  sj_node_t *n;
  sj_req_t *req;
  caller_t c;
  uint32_t region;
  uint64_t seq, t0;
} remote_read_t;

static void on_remote_body(void *arg, int err, const uint8_t *body, size_t len) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  remote_read_t *rr = arg;
  sj_buf_t hb = {0};
  sj_entry_header_t h;
  if (err == 0)
    err = sj_store_get_entry(rr->n->store, rr->region, rr->seq, &hb, NULL, NULL);
  if (err == 0)
    err = sj_entry_decode(hb.p, hb.n, &h, keys, SJ_ENTRY_MAX_KEYS);
  if (err == 0)
    err = sj_entry_check_body(&h, body, len); /* the origin cannot substitute a body */
  if (err) {
    SJ_LOG_WARN("api", "body of %06u/%llu from its origin: %s", rr->region,
                (unsigned long long)rr->seq, sj_strerror(err));
    answer_record(rr->n, rr->req, &rr->c, rr->region, rr->seq, NULL, rr->t0);
  } else {
    sj_bytes_t b = {body, len};
    answer_record(rr->n, rr->req, &rr->c, rr->region, rr->seq, &b, rr->t0);
  }
  sj_buf_deinit(&hb);
  sj_req_unref(rr->req);
  free(rr);
}

/* Starts a remote read when the entry's body is withheld here but the caller may see it.
 * Returns 1 if started (the answer comes later). */
static int remote_read(sj_node_t *n, sj_req_t *req, const caller_t *c, uint32_t region,
                       uint64_t seq, uint64_t t0) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_buf_t hb = {0};
  sj_entry_header_t h;
  int has_body = 1, started = 0;
  if (region == n->cfg.region || (c->role != SJ_ROLE_AUTHORITY && c->role != SJ_ROLE_SUBJECT))
    return 0;
  if (sj_store_get_entry(n->store, region, seq, &hb, NULL, &has_body) == 0 && !has_body &&
      sj_entry_decode(hb.p, hb.n, &h, keys, SJ_ENTRY_MAX_KEYS) == 0 &&
      api_body_visible(n, c, &h, NULL, 0)) {
    char behalf[64];
    remote_read_t *rr = calloc(1, sizeof *rr);
    if (c->role == SJ_ROLE_AUTHORITY)
      snprintf(behalf, sizeof behalf, "authority");
    else
      snprintf(behalf, sizeof behalf, "subject %s", c->tok->arg);
    if (rr) {
      *rr = (remote_read_t){n, req, *c, region, seq, t0};
      sj_req_ref(req);
      started = repl_fetch_body(n, region, seq, behalf, on_remote_body, rr) == 0;
      if (!started) {
        sj_req_unref(req);
        free(rr);
      }
    }
  }
  sj_buf_deinit(&hb);
  return started;
}

static void get_record(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us(), seq;
  uint32_t region;
  caller_t c;
  if (api_caller(n, req, R_RECORD_GET, &c) || api_region_param(n, req, R_RECORD_GET, &region))
    return;
  if (parse_u64(sj_req_param(req, "seq"), &seq)) {
    api_bad_param(n, req, R_RECORD_GET, "seq", "SEQ_INVALID", "seq must be a decimal integer");
    return;
  }
  if (!remote_read(n, req, &c, region, seq, t0))
    answer_record(n, req, &c, region, seq, NULL, t0);
}

/* ---- index lookups: collect rows, newest first, page with an opaque cursor ----------------------
 */

/* An index row, and where the lookup kept the copy of its entry the row carried (storage.h
 * sj_store_scan_entries): leaf hash | facts | header | body at copies + coff. */
typedef struct {
  uint64_t time_ms;
  uint32_t region;
  uint64_t seq;
  size_t coff;
  uint32_t hn, bn;
  uint16_t fn;
  uint8_t has_copy, has_body;
} row_t;

typedef struct {
  row_t *v;
  size_t n, cap;
  int truncated;
  sj_buf_t copies; /* at most COPY_BUDGET bytes: the rows beyond are read with a MultiGet */
} rows_t;

static int collect(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms,
                   const sj_store_entry_t *e) {
  rows_t *r = ctx;
  if (r->n == SCAN_MAX) {
    r->truncated = 1;
    return 1;
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    row_t *v = realloc(r->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  row_t *x = &r->v[r->n++];
  *x = (row_t){.time_ms = time_ms, .region = region, .seq = seq};
  size_t need = e ? SJ_HASH_LEN + e->facts_n + e->hn + e->bn : 0;
  if (e && need <= COPY_BUDGET - r->copies.n && sj_buf_reserve(&r->copies, need) == 0) {
    x->coff = r->copies.n;
    x->hn = (uint32_t)e->hn;
    x->bn = (uint32_t)e->bn;
    x->fn = (uint16_t)e->facts_n;
    x->has_body = (uint8_t)e->has_body;
    x->has_copy = 1;
    sj_buf_append(&r->copies, e->leaf, SJ_HASH_LEN);
    sj_buf_append(&r->copies, e->facts, e->facts_n);
    sj_buf_append(&r->copies, e->header, e->hn);
    sj_buf_append(&r->copies, e->body, e->bn);
  }
  return 0;
}

/* The entry as the row's copy holds it (found = 0 when it has none). */
static sj_store_entry_t row_entry(const rows_t *r, const row_t *x) {
  if (!x->has_copy)
    return (sj_store_entry_t){0};
  const uint8_t *p = r->copies.p + x->coff;
  return (sj_store_entry_t){.found = 1,
                            .leaf = p,
                            .facts = p + SJ_HASH_LEN,
                            .facts_n = x->fn,
                            .header = p + SJ_HASH_LEN + x->fn,
                            .hn = x->hn,
                            .body = p + SJ_HASH_LEN + x->fn + x->hn,
                            .bn = x->bn,
                            .has_body = x->has_body};
}

/* Newest first; ties by region then seq, descending, so the order is total and stable. */
static int row_cmp(const void *a, const void *b) {
  const row_t *x = a, *y = b;
  if (x->time_ms != y->time_ms)
    return x->time_ms < y->time_ms ? 1 : -1;
  if (x->region != y->region)
    return x->region < y->region ? 1 : -1;
  return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

/* The cursor is the hex of the last row returned (time, region, seq). */
static void cursor_format(const row_t *r, char out[41]) {
  uint8_t b[20];
  sj_put_be64(b, r->time_ms);
  sj_put_be32(b + 8, r->region);
  sj_put_be64(b + 12, r->seq);
  sj_hex_encode(b, sizeof b, out);
}

static int cursor_parse(const char *s, row_t *out) {
  uint8_t b[20];
  if (sj_hex_decode(s, strlen(s), b, sizeof b))
    return SJ_EINVAL;
  *out =
      (row_t){.time_ms = sj_get_be64(b), .region = sj_get_be32(b + 8), .seq = sj_get_be64(b + 12)};
  return 0;
}

typedef struct {
  int route;
  const char *name;  /* "subject" or "code" */
  const char *shown; /* the value echoed back */
  uint8_t key[1 + SJ_ENTRY_MAX_KEY_LEN];
  size_t keylen;
  sj_index_t idx;
} lookup_t;

static int page_params(sj_node_t *n, sj_req_t *req, int route, uint64_t *limit, row_t *after,
                       int *has_after) {
  const char *l = sj_req_query(req, "limit"), *cur = sj_req_query(req, "cursor");
  *limit = LIMIT_DEFAULT;
  *has_after = 0;
  if (l && (parse_u64(l, limit) || *limit == 0 || *limit > LIMIT_MAX)) {
    api_bad_param(n, req, route, "limit", "LIMIT_INVALID", "limit must be an integer 1..1000");
    return -1;
  }
  if (cur && *cur) {
    if (cursor_parse(cur, after)) {
      api_bad_param(n, req, route, "cursor", "CURSOR_INVALID",
                    "cursor must be a next_cursor value from an earlier answer");
      return -1;
    }
    *has_after = 1;
  }
  return 0;
}

/* One page of a lookup being written. */
typedef struct {
  sj_node_t *n;
  const caller_t *c;
  sj_buf_t *out;
  sj_entry_ref_t *refs;         /* owned: the page's entries */
  uint8_t (*leaf)[SJ_HASH_LEN]; /* owned, or NULL: stored leaf hashes of every row ... */
  uint8_t *has_leaf;            /* ... where has_leaf[row] (owned) */
  size_t first;                 /* the page's first row */
  size_t base;                  /* entries read with one MultiGet: page entry of the first */
} page_t;

static int page_entry(void *ctx, size_t i, const sj_store_entry_t *e) {
  page_t *pg = ctx;
  sj_store_entry_t x = *e;
  i += pg->base;
  if (i)
    sj_buf_append_u8(pg->out, ',');
  if (!x.leaf && pg->leaf && pg->has_leaf[pg->first + i])
    x.leaf = pg->leaf[pg->first + i]; /* read with the subject's facts */
  int rv = api_entry_json_read(pg->n, pg->c, pg->refs[i].region, pg->refs[i].seq, 0, &x, pg->out);
  return rv < 0 ? rv : 0;
}

/* The page's entries: from the rows' copies where the scan kept them, the others (rows without a
 * copy, or beyond COPY_BUDGET) in one MultiGet per run, with their leaf hashes unless the fold
 * read them already. */
static int page_write(page_t *pg, const rows_t *rows, size_t count) {
  int rv = 0;
  for (size_t k = 0; rv == 0 && k < count;) {
    const row_t *x = &rows->v[pg->first + k];
    if (x->has_copy) {
      sj_store_entry_t e = row_entry(rows, x);
      pg->base = 0;
      rv = page_entry(pg, k++, &e);
      continue;
    }
    size_t j = k;
    int what = SJ_GET_ENTRY, all = pg->leaf != NULL;
    while (j < count && !rows->v[pg->first + j].has_copy) {
      all = all && pg->has_leaf[pg->first + j];
      j++;
    }
    if (!all)
      what |= SJ_GET_FACTS;
    pg->base = k;
    rv = sj_store_get_entries(pg->n->store, pg->refs + k, j - k, what, page_entry, pg);
    k = j;
  }
  return rv;
}

/* A subject lookup reads every row anyway: the subject's publication windows are folded from them
 * (their facts, with their leaf hashes) before the page is read, so that the fold does not scan
 * and read again, and the page needs no facts of its own (pg->leaf). */
static void prime(sj_node_t *n, const lookup_t *lk, const rows_t *rows, page_t *pg) {
  if (lk->idx != SJ_INDEX_SUBJECTS || rows->truncated || rows->n == 0)
    return;
  sj_entry_ref_t *refs = malloc(rows->n * sizeof *refs);
  uint64_t *times = malloc(rows->n * sizeof *times);
  sj_store_entry_t *copies = malloc(rows->n * sizeof *copies);
  pg->leaf = malloc(rows->n * sizeof *pg->leaf);
  pg->has_leaf = malloc(rows->n);
  int ok = refs && times && copies && pg->leaf && pg->has_leaf;
  for (size_t k = 0; ok && k < rows->n; k++) {
    refs[k] = (sj_entry_ref_t){rows->v[k].region, rows->v[k].seq};
    times[k] = rows->v[k].time_ms;
    copies[k] = row_entry(rows, &rows->v[k]);
  }
  ok = ok && api_public_prime(n, lk->key, lk->keylen, refs, times, copies, rows->n, pg->leaf,
                              pg->has_leaf, pg->c->changes_ms) == 0;
  free(refs);
  free(times);
  free(copies);
  if (!ok) {
    free(pg->leaf);
    free(pg->has_leaf);
    pg->leaf = NULL;
    pg->has_leaf = NULL;
  }
}

static void answer_lookup(sj_node_t *n, sj_req_t *req, const caller_t *c, lookup_t *lk,
                          uint64_t t0) {
  uint64_t limit;
  row_t after;
  int has_after;
  if (page_params(n, req, lk->route, &limit, &after, &has_after))
    return;
  rows_t rows = {0};
  int rv = sj_store_scan_entries(n->store, lk->idx, lk->key, lk->keylen, NULL, collect, &rows);
  if (rv < 0) {
    api_problem(n, req, lk->route, 500, "Storage error", sj_strerror(rv), NULL);
    free(rows.v);
    sj_buf_deinit(&rows.copies);
    return;
  }
  if (rows.n > 1) /* qsort(NULL, 0) is undefined behaviour */
    qsort(rows.v, rows.n, sizeof *rows.v, row_cmp);
  size_t i = 0;
  while (has_after && i < rows.n && row_cmp(&rows.v[i], &after) <= 0)
    i++;
  sj_buf_t out = {0};
  sj_buf_printf(&out, "{\"%s\":", lk->name);
  json_str(&out, lk->shown, strlen(lk->shown));
  sj_buf_append_str(&out, ",\"records\":[");
  /* The page's entries from the rows' copies, the others in one MultiGet per family. */
  size_t first = i, count = rows.n - i < limit ? rows.n - i : (size_t)limit;
  page_t pg = {.n = n,
               .c = c,
               .out = &out,
               .refs = malloc((count ? count : 1) * sizeof *pg.refs),
               .first = first};
  prime(n, lk, &rows, &pg);
  rv = pg.refs ? 0 : -ENOMEM;
  for (size_t k = 0; rv == 0 && k < count; k++)
    pg.refs[k] = (sj_entry_ref_t){rows.v[first + k].region, rows.v[first + k].seq};
  if (rv == 0)
    rv = page_write(&pg, &rows, count);
  free(pg.refs);
  free(pg.leaf);
  free(pg.has_leaf);
  i = first + count;
  if (rv < 0) {
    api_problem(n, req, lk->route, 500, "Storage error", sj_strerror(rv), NULL);
  } else {
    char cur[41];
    sj_buf_append_str(&out, "],\"next_cursor\":");
    if (i < rows.n) {
      cursor_format(&rows.v[i - 1], cur);
      sj_buf_printf(&out, "\"%s\"", cur);
    } else {
      sj_buf_append_str(&out, "null");
    }
    sj_buf_printf(&out, "%s}", rows.truncated ? ",\"truncated\":true" : "");
    uint64_t dep = sj_cache_dep_hash(lk->key, lk->keylen);
    api_to_cache(n, req, c, &dep, 1, c->changes_ms ? *c->changes_ms : 0, &out);
    api_reply(n, req, lk->route, 200, "application/json", &out, t0);
  }
  free(rows.v);
  sj_buf_deinit(&rows.copies);
  sj_buf_deinit(&out);
}

static void get_subject(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us();
  caller_t c;
  uint64_t changes = SJ_CREDIT_FOREVER; /* lowered while the answer is written */
  if (api_from_cache(n, req, R_SUBJECT, t0) || api_caller(n, req, R_SUBJECT, &c))
    return;
  c.changes_ms = &changes;
  const char *id = sj_req_param(req, "id");
  size_t len = strlen(id);
  uint8_t hk[SJ_HASH_LEN];
  lookup_t lk = {.route = R_SUBJECT, .name = "subject", .shown = id, .idx = SJ_INDEX_SUBJECTS};
  if (sj_uscc_check(id, len) == SJ_ID_OK) {
    lk.keylen = sj_store_index_key(SJ_KEY_USCC, (const uint8_t *)id, len, lk.key);
  } else if (sj_record_person_key(n->hmac_key, id, len, hk) == 0) {
    int own = c.role == SJ_ROLE_SUBJECT && c.subject_key_type == SJ_KEY_PERSON &&
              !memcmp(c.subject_key, hk, SJ_HASH_LEN);
    if (c.role != SJ_ROLE_AUTHORITY && !own) {
      api_problem(n, req, R_SUBJECT, 403, "Forbidden",
                  "records about a person need an authority token or the person's own", NULL);
      return;
    }
    lk.keylen = sj_store_index_key(SJ_KEY_PERSON, hk, sizeof hk, lk.key);
  } else {
    /* 17 leading digits: meant as an identity number; otherwise as a credit code. */
    int person = len >= 17 && strspn(id, "0123456789") >= 17;
    sj_id_code_t code = person ? sj_resident_id_check(id, len) : sj_uscc_check(id, len);
    api_bad_param(n, req, R_SUBJECT, "id", sj_id_code_name(code),
                  "id must be a unified social credit code or a resident identity number");
    return;
  }
  answer_lookup(n, req, &c, &lk, t0);
}

static void get_trace(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us();
  caller_t c;
  uint64_t changes = SJ_CREDIT_FOREVER; /* lowered while the answer is written */
  if (api_from_cache(n, req, R_TRACE, t0) || api_caller(n, req, R_TRACE, &c))
    return;
  c.changes_ms = &changes;
  const char *code = sj_req_param(req, "code");
  sj_epc_t epc;
  sj_epc_code_t ec = sj_epc_canonical(code, strlen(code), &epc);
  if (ec != SJ_EPC_OK) {
    api_bad_param(n, req, R_TRACE, "code", sj_epc_code_name(ec), sj_epc_code_message(ec));
    return;
  }
  lookup_t lk = {.route = R_TRACE, .name = "code", .shown = epc.urn, .idx = SJ_INDEX_TRACE};
  lk.keylen = sj_store_index_key(SJ_KEY_EPC, (const uint8_t *)epc.urn, epc.len, lk.key);
  answer_lookup(n, req, &c, &lk, t0);
}

void api_register_read(sj_node_t *n) {
  sj_server_route(n->server, "GET", "/v1/records/{region}/{seq}", NULL, get_record, n);
  sj_server_route(n->server, "GET", "/v1/subjects/{id}", NULL, get_subject, n);
  sj_server_route(n->server, "GET", "/v1/trace/{code*}", NULL, get_trace, n);
}
