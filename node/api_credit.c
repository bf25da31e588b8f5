/* node/api_credit.c — the credit issue's endpoints: GET /v1/subjects/{id}/report (a subject's
 * entries from every region this node holds, folded into current status; docs/CREDIT.md) and
 * GET /v1/subjects/{id}/audit (who read the subject's non-public data; docs/DISCLOSURE.md), and
 * the node glue they share with node/disclosure.c (audit.h). Loop thread. */
#include "node/audit.h"
#include "node/credit.h"
#include "node/json.h"
#include "node/node_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPORT_CAP 20000 /* entries folded into one report; beyond it "truncated" */
#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 1000

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Copies text keeping printable ASCII and well-formed UTF-8 sequences, '?' for anything else, so
 * that every row serialises as JSON. */
static void sanitize(char *dst, size_t cap, const char *src, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < cap;) {
    unsigned char ch = (unsigned char)src[i];
    size_t len = ch < 0x80             ? 1
                 : (ch & 0xE0) == 0xC0 ? 2
                 : (ch & 0xF0) == 0xE0 ? 3
                 : (ch & 0xF8) == 0xF0 ? 4
                                       : 0;
    int ok =
        len && i + len <= n && !(len == 1 && (ch < 0x20 || ch == 0x7F)) && !(len == 2 && ch < 0xC2);
    for (size_t k = 1; ok && k < len; k++)
      ok = ((unsigned char)src[i + k] & 0xC0) == 0x80;
    if (!ok)
      len = 1;
    if (o + (ok ? len : 1) >= cap)
      break;
    if (ok)
      memcpy(dst + o, src + i, len), o += len;
    else
      dst[o++] = '?';
    i += len;
  }
  dst[o] = 0;
}

void api_audit_read(sj_node_t *n, const caller_t *c, const sj_entry_header_t *h) {
  const sj_index_key_t *k = NULL;
  for (uint16_t i = 0; i < h->nkeys && !k; i++)
    if (h->keys[i].type != SJ_KEY_EPC && h->keys[i].len <= SJ_HASH_LEN)
      k = &h->keys[i];
  sj_audit_t *a = n->audit;
  if (!k || !a)
    return;
  sj_audit_row_t r = {.time_ms = wall_ms(),
                      .role = (uint8_t)c->role,
                      .key_type = k->type,
                      .key_len = (uint8_t)k->len,
                      .region = h->region,
                      .seq = h->seq};
  memcpy(r.key, k->p, k->len);
  if (c->tok)
    sanitize(r.who, sizeof r.who, c->tok->label, strlen(c->tok->label));
  if (c->purpose)
    sanitize(r.purpose, sizeof r.purpose, c->purpose, strlen(c->purpose));
  if (sj_audit_add(a, &r))
    SJ_LOG_WARN("audit", "audit queue full: a read of %06u/%llu was not recorded", h->region,
                (unsigned long long)h->seq);
}

/* ---- a subject's entries, loaded and folded
 * -------------------------------------------------------- */

#define COPY_BUDGET (4u << 20) /* bytes of index-row copies one report keeps */

/* The subject's index rows, with the copy of the entry each row carries (docs/STORAGE.md §1), as
 * long as they fit COPY_BUDGET: those entries need no read of their own. */
typedef struct {
  sj_entry_ref_t ref;
  size_t off;   /* its copy (header, then body) at copies.p + off; SIZE_MAX: none */
  size_t hn;    /* the copy's header length */
  size_t bn;    /* its body length */
  int has_body; /* the copy holds the body */
} ref_t;

typedef struct {
  ref_t *v;
  size_t n, cap, max;
  int truncated;
  sj_buf_t copies;
} refs_t;

static void refs_free(refs_t *r) {
  free(r->v);
  sj_buf_deinit(&r->copies);
}

static int collect_ref(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms,
                       const sj_store_entry_t *e) {
  refs_t *r = ctx;
  (void)time_ms;
  if (r->n == r->max) {
    r->truncated = 1;
    return 1;
  }
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 32;
    ref_t *v = realloc(r->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    r->v = v;
    r->cap = cap;
  }
  ref_t *x = &r->v[r->n++];
  *x = (ref_t){.ref = {region, seq}, .off = SIZE_MAX};
  if (e && e->hn + e->bn <= COPY_BUDGET - r->copies.n &&
      sj_buf_reserve(&r->copies, e->hn + e->bn) == 0) {
    x->off = r->copies.n;
    x->hn = e->hn;
    x->bn = e->bn;
    x->has_body = e->has_body;
    sj_buf_append(&r->copies, e->header, e->hn);
    sj_buf_append(&r->copies, e->body, e->bn);
  }
  return 0;
}

void api_subject_free(api_subject_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->hdr)
      sj_buf_deinit(&s->hdr[i]);
    if (s->body)
      sj_buf_deinit(&s->body[i]);
    if (s->rec)
      json_decref(s->rec[i]);
  }
  free(s->hdr);
  free(s->body);
  free(s->has_body);
  free(s->rec);
  free(s->e);
  free(s->s);
  memset(s, 0, sizeof *s);
}

/* Entry i of the subject: from its index row's copy, else read from the store. */
static int load_one(sj_node_t *n, api_subject_t *S, size_t i, const refs_t *r) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_entry_header_t h;
  const ref_t *x = &r->v[i];
  uint32_t region = x->ref.region;
  uint64_t seq = x->ref.seq;
  int rv;
  if (x->off != SIZE_MAX) {
    const uint8_t *p = r->copies.p + x->off;
    S->has_body[i] = x->has_body;
    rv = sj_buf_append(&S->hdr[i], p, x->hn);
    if (rv == 0 && x->has_body)
      rv = sj_buf_append(&S->body[i], p + x->hn, x->bn);
  } else {
    rv = sj_store_get_entry(n->store, region, seq, &S->hdr[i], &S->body[i], &S->has_body[i]);
  }
  if (rv == 0)
    rv = sj_entry_decode(S->hdr[i].p, S->hdr[i].n, &h, keys, SJ_ENTRY_MAX_KEYS);
  if (rv)
    return rv;
  sj_credit_entry_t *e = &S->e[i];
  e->region = region;
  e->seq = seq;
  e->time_ms = h.time_ms;
  e->disclosure = h.disclosure;
  for (uint16_t k = 0; k < h.nkeys; k++)
    e->person |= h.keys[k].type == SJ_KEY_PERSON;
  sj_merkle_leaf_hash(S->hdr[i].p, S->hdr[i].n, e->leaf_hash);
  if (S->has_body[i] && h.kind == SJ_KIND_CREDIT)
    S->rec[i] =
        sj_json_loadb((const char *)S->body[i].p, S->body[i].n, JSON_DECODE_INT_AS_REAL, NULL);
  e->rec = S->rec[i];
  return 0;
}

int api_subject_load(sj_node_t *n, const uint8_t *key, size_t keylen, size_t cap, uint64_t now,
                     api_subject_t *out) {
  refs_t refs = {.max = cap};
  api_subject_t S = {0};
  int rv =
      sj_store_scan_entries(n->store, SJ_INDEX_SUBJECTS, key, keylen, NULL, collect_ref, &refs);
  if (rv < 0)
    goto done;
  rv = 0;
  size_t m = refs.n ? refs.n : 1;
  S.hdr = calloc(m, sizeof *S.hdr);
  S.body = calloc(m, sizeof *S.body);
  S.has_body = calloc(m, sizeof *S.has_body);
  S.rec = calloc(m, sizeof *S.rec);
  S.e = calloc(m, sizeof *S.e);
  S.s = calloc(m, sizeof *S.s);
  if (!S.hdr || !S.body || !S.has_body || !S.rec || !S.e || !S.s) {
    rv = -ENOMEM;
    goto done;
  }
  S.n = refs.n;
  S.truncated = refs.truncated;
  for (size_t i = 0; i < S.n && rv == 0; i++)
    rv = load_one(n, &S, i, &refs);
  if (rv == 0)
    rv = sj_credit_fold(S.e, S.n, now, S.s);
done:
  refs_free(&refs);
  if (rv)
    api_subject_free(&S);
  else
    *out = S;
  return rv;
}

/* ---- {id}: the subject's index key and whether the caller is that subject -----------------------
 */

typedef struct {
  const char *id;
  uint8_t key[1 + SJ_HASH_LEN];
  size_t keylen;
  int own; /* the caller is this subject's own token */
} subject_t;

/* Answers 400 (bad id) or 403 (a person's records without the right token) and returns -1. */
static int subject_param(sj_node_t *n, sj_req_t *req, int route, const caller_t *c, subject_t *s) {
  size_t len = strlen(s->id = sj_req_param(req, "id"));
  uint8_t hk[SJ_HASH_LEN];
  if (sj_uscc_check(s->id, len) == SJ_ID_OK) {
    s->keylen = sj_store_index_key(SJ_KEY_USCC, (const uint8_t *)s->id, len, s->key);
    s->own = c->role == SJ_ROLE_SUBJECT && c->subject_key_type == SJ_KEY_USCC &&
             c->subject_key_len == len && !memcmp(c->subject_key, s->id, len);
    return 0;
  }
  if (sj_record_person_key(n->hmac_key, s->id, len, hk) == 0) {
    s->own = c->role == SJ_ROLE_SUBJECT && c->subject_key_type == SJ_KEY_PERSON &&
             !memcmp(c->subject_key, hk, SJ_HASH_LEN);
    if (c->role != SJ_ROLE_AUTHORITY && !s->own) {
      api_problem(n, req, route, 403, "Forbidden",
                  "records about a person need an authority token or the person's own", NULL);
      return -1;
    }
    s->keylen = sj_store_index_key(SJ_KEY_PERSON, hk, sizeof hk, s->key);
    return 0;
  }
  int person = len >= 17 && strspn(s->id, "0123456789") >= 17;
  sj_id_code_t code = person ? sj_resident_id_check(s->id, len) : sj_uscc_check(s->id, len);
  api_bad_param(n, req, route, "id", sj_id_code_name(code),
                "id must be a unified social credit code or a resident identity number");
  return -1;
}

/* ---- GET /v1/subjects/{id}/report
 * ------------------------------------------------------------------ */

typedef struct {
  sj_node_t *n;
  const caller_t *c;
  api_subject_t *S;
  int full; /* authority, or the subject itself: history, actions and dates too */
  uint64_t now;
  size_t *order; /* entries newest first (start, then append time) */
  uint32_t regions[64];
  size_t nregions;
} report_t;

static _Thread_local report_t *sorting_report;

static int newest_first(const void *a, const void *b) {
  const report_t *R = sorting_report;
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  const sj_credit_state_t *sx = &R->S->s[x], *sy = &R->S->s[y];
  if (sx->start_ms != sy->start_ms)
    return sx->start_ms < sy->start_ms ? 1 : -1;
  if (R->S->e[x].time_ms != R->S->e[y].time_ms)
    return R->S->e[x].time_ms < R->S->e[y].time_ms ? 1 : -1;
  return x < y ? 1 : -1;
}

static void put_date(sj_buf_t *b, const char *name, uint64_t ms) {
  char d[11];
  if (ms == SJ_CREDIT_FOREVER || ms == 0) {
    sj_buf_printf(b, ",\"%s\":null", name);
    return;
  }
  sj_credit_date_format(ms, d);
  sj_buf_printf(b, ",\"%s\":\"%s\"", name, d);
}

static void put_ref(report_t *R, sj_buf_t *b, size_t i) {
  const sj_credit_entry_t *e = &R->S->e[i];
  sj_buf_printf(b, "{\"region\":\"%06u\",\"seq\":%llu,\"leaf_hash\":", e->region,
                (unsigned long long)e->seq);
  json_b64(b, e->leaf_hash, sizeof e->leaf_hash);
}

static void put_member_str(sj_buf_t *b, const char *name, const json_t *v) {
  if (!json_is_string(v))
    return;
  sj_buf_printf(b, ",\"%s\":", name);
  json_str(b, json_string_value(v), strlen(json_string_value(v)));
}

/* What the record says that a reader of the report wants without opening it. */
static void put_facts(sj_buf_t *b, const json_t *rec) {
  put_member_str(b, "type", json_object_get(rec, "type"));
  put_member_str(b, "severity", json_object_get(rec, "severity"));
  if (json_is_true(json_object_get(rec, "specific_serious")))
    sj_buf_append_str(b, ",\"specific_serious\":true");
  const json_t *rating = json_object_get(rec, "rating");
  put_member_str(b, "scheme", json_object_get(rating, "scheme"));
  put_member_str(b, "grade", json_object_get(rating, "grade"));
  put_member_str(b, "list", json_object_get(json_object_get(rec, "list"), "name"));
  put_member_str(
      b, "authority",
      json_object_get(json_object_get(json_object_get(rec, "decision"), "authority"), "name"));
  put_member_str(b, "decision_number", json_object_get(json_object_get(rec, "decision"), "number"));
  const json_t *ref = json_object_get(rec, "ref"), *seq = json_object_get(ref, "seq");
  if (json_is_string(json_object_get(ref, "region")) && json_is_number(seq)) {
    sj_buf_append_str(b, ",\"ref\":{\"region\":");
    json_str(b, json_string_value(json_object_get(ref, "region")),
             strlen(json_string_value(json_object_get(ref, "region"))));
    sj_buf_printf(b, ",\"seq\":%.0f}", json_number_value(seq));
  }
}

/* Dates and the entries that changed it: only for authorities and the subject. */
static void put_lifecycle(report_t *R, sj_buf_t *b, size_t i) {
  const sj_credit_state_t *s = &R->S->s[i];
  sj_buf_printf(b, ",\"published\":%s", s->published ? "true" : "false");
  put_date(b, "public_until", s->public_until_ms);
  if (s->category == SJ_CREDIT_CAT_PENALTY || s->category == SJ_CREDIT_CAT_LIST ||
      s->category == SJ_CREDIT_CAT_BAN)
    put_date(b, "repairable_from", s->repairable_ms >= s->end_ms ? 0 : s->repairable_ms);
  if (s->ended_by != SJ_CREDIT_NONE) {
    sj_buf_append_str(b, ",\"ended_by\":");
    put_ref(R, b, s->ended_by);
    sj_buf_printf(b, ",\"action\":\"%s\"", sj_credit_action_name(R->S->s[s->ended_by].action));
    put_date(b, "date", s->ended_ms);
    sj_buf_append_u8(b, '}');
  }
  int first = 1;
  for (size_t j = 0; j < R->S->n; j++) { /* every older version that leads to this one */
    size_t k = j, hops = 0;
    while (R->S->s[k].superseded_by != SJ_CREDIT_NONE && hops++ < R->S->n)
      k = R->S->s[k].superseded_by;
    if (j == i || k != i)
      continue;
    sj_buf_append_str(b, first ? ",\"corrects\":[" : ",");
    put_ref(R, b, j);
    sj_buf_append_u8(b, '}');
    first = 0;
  }
  if (!first)
    sj_buf_append_u8(b, ']');
  if (s->reject)
    sj_buf_printf(b, ",\"not_applied\":\"%s\"", s->reject);
  if (s->target != SJ_CREDIT_NONE) {
    sj_buf_append_str(b, ",\"target\":");
    put_ref(R, b, s->target);
    sj_buf_append_u8(b, '}');
  }
}

static void note_region(report_t *R, uint32_t region) {
  for (size_t k = 0; k < R->nregions; k++)
    if (R->regions[k] == region)
      return;
  if (R->nregions < sizeof R->regions / sizeof *R->regions)
    R->regions[R->nregions++] = region;
}

/* One item; returns 1 (nothing written) when the caller may not see the record. */
static int put_item(report_t *R, sj_buf_t *out, size_t i) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  api_subject_t *S = R->S;
  const sj_credit_state_t *s = &S->s[i];
  sj_entry_header_t h;
  sj_buf_t rec = {0};
  if (sj_entry_decode(S->hdr[i].p, S->hdr[i].n, &h, keys, SJ_ENTRY_MAX_KEYS))
    return 1;
  int hidden =
      !S->has_body[i] || api_disclose_record(R->n, R->c, &h, S->body[i].p, S->body[i].n, &rec);
  if (hidden && !R->full) {
    sj_buf_deinit(&rec);
    return 1;
  }
  put_ref(R, out, i);
  sj_buf_printf(out, ",\"status\":\"%s\",\"category\":\"%s\"",
                sj_credit_status_name((sj_credit_status_t)s->status),
                sj_credit_category_name((sj_credit_category_t)s->category));
  if (s->action)
    sj_buf_printf(out, ",\"action\":\"%s\"", sj_credit_action_name(s->action));
  put_facts(out, S->rec[i]);
  put_date(out, "from", s->start_ms);
  put_date(out, "until", s->end_ms);
  if (R->full)
    put_lifecycle(R, out, i);
  if (rec.n)
    sj_buf_append(out, rec.p, rec.n);
  else
    sj_buf_printf(out, ",\"withheld\":\"%s\"", S->has_body[i] ? "disclosure" : "not replicated");
  sj_buf_append_u8(out, '}');
  sj_buf_deinit(&rec);
  note_region(R, S->e[i].region);
  return 0;
}

typedef int (*pick_fn)(const report_t *R, size_t i, int arg);

static int pick_current(const report_t *R, size_t i, int category) {
  const sj_credit_state_t *s = &R->S->s[i];
  return s->category == category &&
         (s->status == SJ_CREDIT_ACTIVE || s->status == SJ_CREDIT_PENDING);
}

static int pick_status(const report_t *R, size_t i, int status) {
  uint8_t st = R->S->s[i].status;
  if (status == SJ_CREDIT_EXPIRED)
    return st == SJ_CREDIT_EXPIRED || st == SJ_CREDIT_REPLACED || st == SJ_CREDIT_REMOVED;
  return st == status;
}

static void put_array(report_t *R, sj_buf_t *out, const char *name, pick_fn pick, int arg) {
  sj_buf_printf(out, ",\"%s\":[", name);
  size_t mark = out->n;
  for (size_t k = 0; k < R->S->n; k++) {
    size_t i = R->order[k];
    if (!pick(R, i, arg))
      continue;
    size_t before = out->n;
    if (out->n > mark)
      sj_buf_append_u8(out, ',');
    if (put_item(R, out, i))
      out->n = before; /* not shown: take the comma back */
  }
  sj_buf_append_u8(out, ']');
}

static void put_report(report_t *R, const subject_t *sub, sj_buf_t *out) {
  static const char *const views[] = {"public", "authority", "subject"};
  int view = R->c->role == SJ_ROLE_AUTHORITY ? 1 : sub->own ? 2 : 0;
  time_t t = (time_t)(R->now / 1000u);
  struct tm tm;
  char asof[32];
  gmtime_r(&t, &tm);
  strftime(asof, sizeof asof, "%Y-%m-%dT%H:%M:%SZ", &tm);
  sj_buf_append_str(out, "{\"subject\":");
  json_str(out, sub->id, strlen(sub->id));
  sj_buf_printf(out, ",\"view\":\"%s\",\"as_of\":\"%s\",\"entries\":%zu,\"truncated\":%s",
                views[view], asof, R->S->n, R->S->truncated ? "true" : "false");
  put_array(R, out, "lists", pick_current, SJ_CREDIT_CAT_LIST);
  put_array(R, out, "ratings", pick_current, SJ_CREDIT_CAT_RATING);
  put_array(R, out, "penalties", pick_current, SJ_CREDIT_CAT_PENALTY);
  put_array(R, out, "bans", pick_current, SJ_CREDIT_CAT_BAN);
  put_array(R, out, "other", pick_current, SJ_CREDIT_CAT_OTHER);
  if (R->full) {
    put_array(R, out, "expired", pick_status, SJ_CREDIT_EXPIRED);
    put_array(R, out, "repaired", pick_status, SJ_CREDIT_REPAIRED);
    put_array(R, out, "revoked", pick_status, SJ_CREDIT_REVOKED);
    put_array(R, out, "actions", pick_status, SJ_CREDIT_ACTION);
    put_array(R, out, "withheld", pick_status, SJ_CREDIT_UNKNOWN);
  }
  sj_buf_append_str(out, ",\"regions\":[");
  for (size_t k = 0; k < R->nregions; k++)
    sj_buf_printf(out, "%s\"%06u\"", k ? "," : "", R->regions[k]);
  sj_buf_append_str(out, "]}");
}

static void get_report(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us();
  caller_t c;
  subject_t sub;
  api_subject_t S;
  uint64_t changes = SJ_CREDIT_FOREVER; /* lowered while the report is written */
  if (api_from_cache(n, req, R_REPORT, t0) || api_caller(n, req, R_REPORT, &c) ||
      subject_param(n, req, R_REPORT, &c, &sub))
    return;
  c.changes_ms = &changes;
  report_t R = {.n = n, .c = &c, .S = &S, .now = wall_ms()};
  R.full = c.role == SJ_ROLE_AUTHORITY || sub.own;
  int rv = api_subject_load(n, sub.key, sub.keylen, REPORT_CAP, R.now, &S);
  if (rv) {
    api_problem(n, req, R_REPORT, 500, "Storage error", sj_strerror(rv), NULL);
    return;
  }
  R.order = malloc((S.n ? S.n : 1) * sizeof *R.order);
  sj_buf_t out = {0};
  if (!R.order) {
    api_problem(n, req, R_REPORT, 500, "Out of memory", "cannot build the report", NULL);
  } else {
    for (size_t i = 0; i < S.n; i++)
      R.order[i] = i;
    sorting_report = &R;
    qsort(R.order, S.n, sizeof *R.order, newest_first);
    put_report(&R, &sub, &out);
    /* A public report stays exact until an entry about the subject is appended (the subject's
     * generation) or any item's state may change with time (the fold's changes_ms); as_of is
     * then the instant it was folded (docs/API.md). */
    for (size_t i = 0; i < S.n; i++)
      changes = S.s[i].changes_ms < changes ? S.s[i].changes_ms : changes;
    uint64_t dep = sj_cache_dep_hash(sub.key, sub.keylen);
    api_to_cache(n, req, &c, &dep, 1, changes, &out);
    api_reply(n, req, R_REPORT, 200, "application/json", &out, t0);
  }
  sj_buf_deinit(&out);
  free(R.order);
  api_subject_free(&S);
}

/* ---- GET /v1/subjects/{id}/audit
 * ----------------------------------------------------------------- */

static int put_audit_row(void *ctx, const sj_audit_row_t *r) {
  sj_buf_t *b = ctx;
  time_t t = (time_t)(r->time_ms / 1000u);
  struct tm tm;
  char when[32];
  gmtime_r(&t, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  if (b->p[b->n - 1] != '[')
    sj_buf_append_u8(b, ',');
  sj_buf_printf(b, "{\"time\":\"%s.%03uZ\",\"time_ms\":%llu,\"role\":\"%s\",\"who\":", when,
                (unsigned)(r->time_ms % 1000u), (unsigned long long)r->time_ms,
                sj_role_name((sj_role_t)r->role));
  json_str(b, r->who, strlen(r->who));
  sj_buf_printf(b, ",\"region\":\"%06u\",\"seq\":%llu,\"purpose\":", r->region,
                (unsigned long long)r->seq);
  json_str(b, r->purpose, strlen(r->purpose));
  sj_buf_append_u8(b, '}');
  return 0;
}

static int audit_params(sj_node_t *n, sj_req_t *req, uint64_t *limit, uint64_t *before) {
  const char *l = sj_req_query(req, "limit"), *cur = sj_req_query(req, "cursor");
  *limit = AUDIT_LIMIT_DEFAULT;
  *before = UINT64_MAX;
  if (l && (parse_u64(l, limit) || *limit == 0 || *limit > AUDIT_LIMIT_MAX)) {
    api_bad_param(n, req, R_AUDIT, "limit", "LIMIT_INVALID", "limit must be an integer 1..1000");
    return -1;
  }
  if (cur && *cur && (parse_u64(cur, before) || *before == 0)) {
    api_bad_param(n, req, R_AUDIT, "cursor", "CURSOR_INVALID",
                  "cursor must be a next_cursor value from an earlier answer");
    return -1;
  }
  return 0;
}

static void get_audit(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us(), limit, before, next = 0;
  caller_t c;
  subject_t sub;
  if (api_caller(n, req, R_AUDIT, &c) || subject_param(n, req, R_AUDIT, &c, &sub) ||
      audit_params(n, req, &limit, &before))
    return;
  if (c.role != SJ_ROLE_AUTHORITY && !sub.own) {
    int status = c.role == SJ_ROLE_PUBLIC ? 401 : 403;
    api_problem(n, req, R_AUDIT, status, status == 401 ? "Unauthorized" : "Forbidden",
                "the audit trail is for the subject's own token or an authority", NULL);
    return;
  }
  sj_audit_t *a = n->audit;
  if (!a) {
    api_problem(n, req, R_AUDIT, 503, "Service Unavailable", "the audit trail is not open", NULL);
    return;
  }
  sj_buf_t out = {0};
  sj_buf_append_str(&out, "{\"subject\":");
  json_str(&out, sub.id, strlen(sub.id));
  sj_buf_append_str(&out, ",\"entries\":[");
  int rv = sj_audit_query(a, sub.key[0], sub.key + 1, sub.keylen - 1, before, (size_t)limit,
                          put_audit_row, &out, &next);
  if (rv) {
    api_problem(n, req, R_AUDIT, 500, "Audit trail error", sj_strerror(rv), NULL);
  } else {
    if (next)
      sj_buf_printf(&out, "],\"next_cursor\":\"%llu\"}", (unsigned long long)next);
    else
      sj_buf_append_str(&out, "],\"next_cursor\":null}");
    api_reply(n, req, R_AUDIT, 200, "application/json", &out, t0);
  }
  sj_buf_deinit(&out);
}

void api_register_credit(sj_node_t *n) {
  /* One segment more than "/v1/subjects/{id}" (node/api_read.c), so the routes never compete. */
  sj_server_route(n->server, "GET", "/v1/subjects/{id}/report", NULL, get_report, n);
  sj_server_route(n->server, "GET", "/v1/subjects/{id}/audit", NULL, get_audit, n);
}
