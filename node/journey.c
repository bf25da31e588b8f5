/* node/journey.c — trace events parsed for lookups, and the journey walk (see journey.h and
 * docs/TRACE.md for the rules).
 *
 * The walk is a breadth-first search over (code, mode, time window) items. A code is walked in
 * one of two modes:
 *   FULL       the code itself is of interest: its events, and the codes it came from (back) or
 *              went into (forward) through transformations and aggregations;
 *   CONTAINER  the code carried an object of interest during a time window: only its events in
 *              that window count, and only its own containers are followed (never its other
 *              contents, which are the object's siblings, not its history).
 * Windows only grow (a code is re-walked when a wider window reaches it, never for a narrower
 * one), event times are finite, and every item is bounded by depth: the walk ends on any graph,
 * cycles included. Entries read, steps returned and rows per code are capped too; hitting any cap
 * sets "truncated". */
#include "node/journey.h"
#include "node/json.h"

#include "node/epcis.h"
#include "node/node_int.h" /* json_str, json_b64 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define TMIN INT64_MIN
#define TMAX INT64_MAX
#define ROWS_PER_CODE 20000 /* index rows read for one code */
#define LIST_SHOWN 8        /* codes of each role shown in a step */
#define BUCKETS 512

static const char *const ev_types[] = {"ObjectEvent",         "AggregationEvent",
                                       "TransformationEvent", "TransactionEvent",
                                       "AssociationEvent",    NULL};
static const char *const actions[] = {"ADD", "OBSERVE", "DELETE", NULL};
static const char *const role_names[] = {"epc", "parent", "child", "input", "output"};

static int name_index(const char *const *names, const char *s, size_t n) {
  for (int i = 0; names[i]; i++)
    if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
      return i;
  return -1;
}

/* ---- One event ------------------------------------------------------------------------------ */

void sj_trace_ev_deinit(sj_trace_ev_t *e) {
  for (size_t i = 0; i < e->ncodes; i++)
    free(e->codes[i].urn);
  free(e->codes);
  json_decref(e->record);
  memset(e, 0, sizeof *e);
}

typedef struct {
  sj_trace_ev_t *e;
  size_t cap;
  int oom;
} codes_t;

static void add_code(codes_t *c, json_t *v, int role, int qty) {
  sj_epc_t epc;
  if (!json_is_string(v) ||
      sj_epc_canonical(json_string_value(v), json_string_length(v), &epc) != SJ_EPC_OK)
    return;
  sj_trace_ev_t *e = c->e;
  for (size_t i = 0; i < e->ncodes; i++)
    if (e->codes[i].role == role && strcmp(e->codes[i].urn, epc.urn) == 0)
      return;
  if (e->ncodes == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 8;
    sj_tr_code_t *v2 = realloc(e->codes, cap * sizeof *v2);
    if (!v2) {
      c->oom = 1;
      return;
    }
    e->codes = v2;
    c->cap = cap;
  }
  char *urn = strdup(epc.urn);
  if (!urn) {
    c->oom = 1;
    return;
  }
  e->codes[e->ncodes++] = (sj_tr_code_t){urn, (uint8_t)role, (uint8_t)qty};
}

static void add_list(codes_t *c, json_t *ev, const char *name, int role, int qty) {
  json_t *a = json_object_get(ev, name), *v;
  size_t i;
  json_array_foreach(a, i, v) add_code(c, qty ? json_object_get(v, "epcClass") : v, role, qty);
}

static void add_codes(codes_t *c, json_t *ev) {
  add_list(c, ev, "epcList", SJ_TR_EPC, 0);
  add_code(c, json_object_get(ev, "parentID"), SJ_TR_PARENT, 0);
  add_list(c, ev, "childEPCs", SJ_TR_CHILD, 0);
  add_list(c, ev, "inputEPCList", SJ_TR_INPUT, 0);
  add_list(c, ev, "outputEPCList", SJ_TR_OUTPUT, 0);
  add_list(c, ev, "quantityList", SJ_TR_EPC, 1);
  add_list(c, ev, "childQuantityList", SJ_TR_CHILD, 1);
  add_list(c, ev, "inputQuantityList", SJ_TR_INPUT, 1);
  add_list(c, ev, "outputQuantityList", SJ_TR_OUTPUT, 1);
}

/* A vocabulary value as its CBV bare word, or as sent when it is an extension URI. */
static void copy_vocab(char *dst, size_t cap, json_t *v, sj_cbv_vocab_t voc) {
  const char *word = NULL;
  dst[0] = 0;
  if (!json_is_string(v))
    return;
  const char *s = json_string_value(v);
  if (sj_cbv_classify(voc, s, json_string_length(v), &word) == 1)
    s = word;
  snprintf(dst, cap, "%s", s);
}

static void copy_location(char *dst, json_t *ev, const char *name) {
  json_t *id = json_object_get(json_object_get(ev, name), "id");
  sj_epc_t epc;
  dst[0] = 0;
  if (json_is_string(id) &&
      sj_epc_canonical(json_string_value(id), json_string_length(id), &epc) == SJ_EPC_OK)
    memcpy(dst, epc.urn, epc.len + 1);
}

static int parse_event(sj_trace_ev_t *e, json_t *ev) {
  const char *t = json_string_value(json_object_get(ev, "eventTime"));
  const char *z = json_string_value(json_object_get(ev, "eventTimeZoneOffset"));
  const char *a = json_string_value(json_object_get(ev, "action"));
  const char *op = sj_epcis_operator(ev);
  int64_t ms;
  if (t && sj_epcis_parse_time(t, strlen(t), &ms) == 0) {
    e->time_ms = ms;
    snprintf(e->event_time, sizeof e->event_time, "%s", t);
  }
  snprintf(e->tz, sizeof e->tz, "%s", z ? z : "");
  e->action = a ? name_index(actions, a, strlen(a)) : -1;
  copy_vocab(e->biz_step, sizeof e->biz_step, json_object_get(ev, "bizStep"), SJ_CBV_BIZSTEP);
  copy_vocab(e->disposition, sizeof e->disposition, json_object_get(ev, "disposition"),
             SJ_CBV_DISPOSITION);
  copy_location(e->location, ev, "bizLocation");
  copy_location(e->read_point, ev, "readPoint");
  snprintf(e->operator_uscc, sizeof e->operator_uscc, "%s", op ? op : "");
  codes_t c = {.e = e};
  add_codes(&c, ev);
  return c.oom ? -ENOMEM : 0;
}

/* Parses a visible body; a body that is not a trace record becomes "not a trace event". */
static int load_body(sj_trace_ev_t *e, const sj_buf_t *bb, int keep_json) {
  json_t *rec = sj_json_loadb((const char *)bb->p, bb->n, JSON_DECODE_INT_AS_REAL, NULL);
  json_t *ev = json_object_get(rec, "event");
  int rv = 0;
  if (!json_is_object(ev)) {
    e->visible = 0;
    e->withheld = "not a trace event";
  } else {
    rv = parse_event(e, ev);
  }
  if (rv == 0 && keep_json && e->visible)
    e->record = json_incref(rec);
  json_decref(rec);
  return rv;
}

int sj_trace_ev_load(sj_store_t *s, uint32_t region, uint64_t seq, sj_trace_visible_fn vis,
                     void *vis_ctx, int keep_json, sj_trace_ev_t *out) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_buf_t hb = {0}, bb = {0};
  sj_entry_header_t h;
  sj_trace_ev_t e = {.region = region, .seq = seq, .action = -1};
  int has_body = 0;
  int rv = sj_store_get_entry(s, region, seq, &hb, &bb, &has_body);
  if (rv == 0 && sj_entry_decode(hb.p, hb.n, &h, keys, SJ_ENTRY_MAX_KEYS))
    rv = SJ_EFORMAT;
  if (rv == 0) {
    sj_merkle_leaf_hash(hb.p, hb.n, e.leaf);
    e.type = name_index(ev_types, h.type, h.type_len);
    e.time_ms = (int64_t)h.time_ms;
    e.visible = has_body && vis(vis_ctx, &h, bb.p, bb.n);
    e.withheld = !has_body ? "not replicated" : !e.visible ? "disclosure" : NULL;
    if (e.visible)
      rv = load_body(&e, &bb, keep_json);
  }
  sj_buf_deinit(&hb);
  sj_buf_deinit(&bb);
  if (rv) {
    sj_trace_ev_deinit(&e);
    return rv;
  }
  *out = e;
  return 0;
}

/* "urn:epc:idpat:sgtin:CP.IR.*" matches sgtin, lgtin and idpat codes whose CP.IR is the same. */
int sj_trace_code_matches(const char *value, const char *code) {
  static const char pat[] = "urn:epc:idpat:sgtin:";
  if (strcmp(value, code) == 0)
    return 1;
  size_t vn = strlen(value);
  if (strncmp(value, pat, sizeof pat - 1) != 0 || vn < sizeof pat + 1 || value[vn - 1] != '*')
    return 0;
  const char *gtin = value + sizeof pat - 1; /* "CP.IR.*" */
  size_t glen = vn - (sizeof pat - 1) - 1;   /* "CP.IR." */
  static const char *const schemes[] = {"urn:epc:id:sgtin:", "urn:epc:class:lgtin:"};
  for (size_t i = 0; i < 2; i++) {
    size_t k = strlen(schemes[i]);
    if (strncmp(code, schemes[i], k) == 0 && strncmp(code + k, gtin, glen) == 0)
      return 1;
  }
  return 0;
}

/* ---- The walk's tables ---------------------------------------------------------------------- */

typedef struct evnode {
  struct evnode *next; /* hash chain */
  sj_trace_ev_t ev;
  long step; /* index in steps, or -1 */
} evnode_t;

enum { M_FULL = 0, M_CONT = 1 };

typedef struct codestate {
  struct codestate *next; /* hash chain */
  uint64_t h;
  char *urn;
  evnode_t **evs; /* the code's events, by time */
  size_t nevs;
  int loaded;
  int full_set, cont_set; /* walk state of the current direction */
  int64_t full_bound;     /* back: walked up to this time; forward: from this time */
  int64_t clo, chi;       /* container window walked */
} codestate_t;

typedef struct {
  codestate_t *code;
  int mode;
  int64_t lo, hi;
  unsigned depth;
} item_t;

typedef struct {
  evnode_t *e;
  codestate_t *via;
  uint8_t role;
  uint8_t dirs; /* bit 0 back, bit 1 forward */
  unsigned depth;
} step_t;

typedef struct {
  sj_store_t *s;
  const sj_journey_opts_t *o;
  sj_trace_visible_fn vis;
  void *vis_ctx;
  evnode_t *evt[BUCKETS];
  codestate_t *ct[BUCKETS];
  codestate_t **codes; /* every codestate, for resets and freeing */
  size_t ncodes, capcodes;
  size_t nloaded;
  item_t *q;
  size_t qhead, qn, qcap;
  step_t *steps;
  size_t nsteps, capsteps;
  int dir; /* SJ_JOURNEY_BACK or SJ_JOURNEY_FORWARD while walking */
  int truncated, stop, err;
} jctx_t;

static int grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n < *cap)
    return 0;
  size_t c = *cap ? *cap * 2 : 64;
  void *q = realloc(*p, c * size);
  if (!q)
    return -ENOMEM;
  *p = q;
  *cap = c;
  return 0;
}

static void fail(jctx_t *j, int rv) {
  if (!j->err)
    j->err = rv;
  j->stop = 1;
}

static codestate_t *code_get(jctx_t *j, const char *urn) {
  uint64_t h = XXH3_64bits(urn, strlen(urn));
  codestate_t **p = &j->ct[h % BUCKETS];
  for (; *p; p = &(*p)->next)
    if ((*p)->h == h && strcmp((*p)->urn, urn) == 0)
      return *p;
  codestate_t *c = calloc(1, sizeof *c);
  if (!c || !(c->urn = strdup(urn)) ||
      grow((void **)&j->codes, &j->capcodes, j->ncodes, sizeof *j->codes)) {
    if (c)
      free(c->urn);
    free(c);
    fail(j, -ENOMEM);
    return NULL;
  }
  c->h = h;
  *p = c;
  j->codes[j->ncodes++] = c;
  return c;
}

static evnode_t *ev_get(jctx_t *j, uint32_t region, uint64_t seq) {
  size_t b = (size_t)((seq * 0x9E3779B97F4A7C15ull) ^ region) % BUCKETS;
  for (evnode_t *e = j->evt[b]; e; e = e->next)
    if (e->ev.region == region && e->ev.seq == seq)
      return e;
  if (j->nloaded >= j->o->max_events) {
    j->truncated = 1;
    j->stop = 1;
    return NULL;
  }
  evnode_t *e = calloc(1, sizeof *e);
  int rv = e ? sj_trace_ev_load(j->s, region, seq, j->vis, j->vis_ctx, 0, &e->ev) : -ENOMEM;
  if (rv) {
    free(e);
    fail(j, rv);
    return NULL;
  }
  e->step = -1;
  e->next = j->evt[b];
  j->evt[b] = e;
  j->nloaded++;
  return e;
}

typedef struct {
  uint32_t region;
  uint64_t seq;
} row_t;

typedef struct {
  row_t *v;
  size_t n, cap;
  int more;
} rows_t;

static int collect(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms) {
  rows_t *r = ctx;
  (void)time_ms;
  if (r->n == ROWS_PER_CODE) {
    r->more = 1;
    return 1;
  }
  if (grow((void **)&r->v, &r->cap, r->n, sizeof *r->v))
    return -ENOMEM;
  r->v[r->n++] = (row_t){region, seq};
  return 0;
}

static int ev_time_cmp(const void *a, const void *b) {
  const sj_trace_ev_t *x = &(*(evnode_t *const *)a)->ev, *y = &(*(evnode_t *const *)b)->ev;
  if (x->time_ms != y->time_ms)
    return x->time_ms < y->time_ms ? -1 : 1;
  if (x->region != y->region)
    return x->region < y->region ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads the index rows of a code and the events they point to, once per walk. */
static void code_load(jctx_t *j, codestate_t *c) {
  if (c->loaded)
    return;
  c->loaded = 1;
  uint8_t key[1 + SJ_ENTRY_MAX_KEY_LEN];
  size_t klen = sj_store_index_key(SJ_KEY_EPC, (const uint8_t *)c->urn, strlen(c->urn), key);
  if (j->o->read_key)
    j->o->read_key(j->o->read_key_ctx, key, klen);
  rows_t r = {0};
  int rv = sj_store_scan(j->s, SJ_INDEX_TRACE, key, klen, NULL, collect, &r);
  if (rv < 0) {
    free(r.v);
    fail(j, rv);
    return;
  }
  j->truncated |= r.more;
  c->evs = calloc(r.n ? r.n : 1, sizeof *c->evs);
  if (!c->evs) {
    free(r.v);
    fail(j, -ENOMEM);
    return;
  }
  for (size_t i = 0; i < r.n && !j->stop; i++) {
    evnode_t *e = ev_get(j, r.v[i].region, r.v[i].seq);
    if (e)
      c->evs[c->nevs++] = e;
  }
  free(r.v);
  if (c->nevs > 1)
    qsort(c->evs, c->nevs, sizeof *c->evs, ev_time_cmp);
}

/* ---- Walking ------------------------------------------------------------------------------- */

static unsigned role_mask(const sj_trace_ev_t *e, const char *urn) {
  unsigned m = 0;
  for (size_t i = 0; i < e->ncodes; i++)
    if (strcmp(e->codes[i].urn, urn) == 0)
      m |= 1u << e->codes[i].role;
  return m;
}

static const char *first_of_role(const sj_trace_ev_t *e, int role) {
  for (size_t i = 0; i < e->ncodes; i++)
    if (e->codes[i].role == role)
      return e->codes[i].urn;
  return NULL;
}

static int is_agg(const sj_trace_ev_t *e) {
  return e->type == 1 || e->type == 4; /* AggregationEvent, AssociationEvent */
}

static int adds(const sj_trace_ev_t *e) {
  return e->action == SJ_TR_ADD || e->action == SJ_TR_OBSERVE;
}

/* When x was taken out of parent at or after t: the first such DELETE among x's events. */
static int64_t removed_at(const codestate_t *x, const char *parent, int64_t t) {
  for (size_t i = 0; i < x->nevs; i++) {
    const sj_trace_ev_t *e = &x->evs[i]->ev;
    if (e->time_ms < t || !is_agg(e) || e->action != SJ_TR_DELETE)
      continue;
    const char *p = first_of_role(e, SJ_TR_PARENT);
    if (p && strcmp(p, parent) == 0 && (role_mask(e, x->urn) & (1u << SJ_TR_CHILD)))
      return e->time_ms;
  }
  return TMAX;
}

static void enqueue(jctx_t *j, codestate_t *c, int mode, int64_t lo, int64_t hi, unsigned depth) {
  if (grow((void **)&j->q, &j->qcap, j->qn, sizeof *j->q)) {
    fail(j, -ENOMEM);
    return;
  }
  j->q[j->qn++] = (item_t){c, mode, lo, hi, depth};
}

/* Queues (urn, mode, [lo, hi]) unless what was walked already covers it. */
static void push(jctx_t *j, const char *urn, int mode, int64_t lo, int64_t hi, unsigned depth) {
  if (lo > hi)
    return;
  if (depth > j->o->max_depth) {
    j->truncated = 1;
    return;
  }
  codestate_t *c = code_get(j, urn);
  if (!c)
    return;
  int back = j->dir == SJ_JOURNEY_BACK;
  int full_covers = c->full_set && (back ? hi <= c->full_bound : lo >= c->full_bound);
  if (mode == M_FULL) {
    if (full_covers)
      return;
    c->full_set = 1;
    c->full_bound = back ? hi : lo;
  } else {
    if (full_covers || (c->cont_set && lo >= c->clo && hi <= c->chi))
      return;
    if (c->cont_set) {
      lo = lo < c->clo ? lo : c->clo;
      hi = hi > c->chi ? hi : c->chi;
    }
    c->cont_set = 1;
    c->clo = lo;
    c->chi = hi;
  }
  enqueue(j, c, mode, lo, hi, depth);
}

static void push_role(jctx_t *j, const sj_trace_ev_t *e, int role, int64_t lo, int64_t hi,
                      unsigned depth) {
  for (size_t i = 0; i < e->ncodes && !j->stop; i++)
    if (e->codes[i].role == role)
      push(j, e->codes[i].urn, M_FULL, lo, hi, depth);
}

static void add_step(jctx_t *j, evnode_t *en, codestate_t *via, unsigned roles, unsigned depth) {
  uint8_t bit = j->dir == SJ_JOURNEY_BACK ? 1 : 2;
  if (en->step >= 0) {
    step_t *s = &j->steps[en->step];
    s->dirs |= bit;
    if (depth < s->depth)
      s->depth = depth;
    return;
  }
  if (j->nsteps >= j->o->max_steps) {
    j->truncated = 1;
    j->stop = 1;
    return;
  }
  if (grow((void **)&j->steps, &j->capsteps, j->nsteps, sizeof *j->steps)) {
    fail(j, -ENOMEM);
    return;
  }
  uint8_t role = 0;
  while (role < 4 && !(roles & (1u << role)))
    role++;
  en->step = (long)j->nsteps;
  j->steps[j->nsteps++] = (step_t){en, via, role, bit, depth};
}

/* What one event leads to from the code x walked as item it (docs/TRACE.md, "Rules"). */
static void expand(jctx_t *j, const item_t *it, const sj_trace_ev_t *e, unsigned roles, int in) {
  int64_t t = e->time_ms;
  unsigned d = it->depth + 1;
  /* x went into a container: the container's events while x was inside are x's history */
  if (is_agg(e) && adds(e) && (roles & (1u << SJ_TR_CHILD)) && t <= it->hi &&
      (it->mode == M_CONT || in)) {
    const char *parent = first_of_role(e, SJ_TR_PARENT);
    if (parent) {
      int64_t end = removed_at(it->code, parent, t);
      int64_t start = it->mode == M_CONT && it->lo > t ? it->lo : t;
      push(j, parent, M_CONT, start, end < it->hi ? end : it->hi, d);
    }
  }
  if (it->mode == M_CONT || !in)
    return;
  if (j->dir == SJ_JOURNEY_BACK) {
    if (e->type == 2 && (roles & (1u << SJ_TR_OUTPUT))) /* made from its inputs */
      push_role(j, e, SJ_TR_INPUT, TMIN, t, d);
    if (is_agg(e) && adds(e) && (roles & (1u << SJ_TR_PARENT))) /* its contents came in */
      push_role(j, e, SJ_TR_CHILD, TMIN, t, d);
  } else {
    if (e->type == 2 && (roles & (1u << SJ_TR_INPUT))) /* went into its outputs */
      push_role(j, e, SJ_TR_OUTPUT, t, TMAX, d);
    if (is_agg(e) && e->action == SJ_TR_DELETE && (roles & (1u << SJ_TR_PARENT)))
      push_role(j, e, SJ_TR_CHILD, t, TMAX, d); /* its contents went on alone */
  }
}

static void walk_item(jctx_t *j, const item_t *it) {
  codestate_t *x = it->code;
  code_load(j, x);
  for (size_t i = 0; i < x->nevs && !j->stop; i++) {
    evnode_t *en = x->evs[i];
    const sj_trace_ev_t *e = &en->ev;
    unsigned roles = role_mask(e, x->urn);
    int in = e->time_ms >= it->lo && e->time_ms <= it->hi;
    /* a container's dealings with its other contents are not the carried object's history */
    int siblings = it->mode == M_CONT && is_agg(e) && roles == (1u << SJ_TR_PARENT);
    if (in && !siblings)
      add_step(j, en, x, roles, it->depth);
    if (e->visible && !j->stop)
      expand(j, it, e, roles, in);
  }
}

static void walk(jctx_t *j, const char *code, int dir) {
  j->dir = dir;
  j->qhead = j->qn = 0;
  for (size_t i = 0; i < j->ncodes; i++)
    j->codes[i]->full_set = j->codes[i]->cont_set = 0;
  codestate_t *c = code_get(j, code);
  if (!c)
    return;
  c->full_set = 1;
  c->full_bound = dir == SJ_JOURNEY_BACK ? TMAX : TMIN;
  enqueue(j, c, M_FULL, TMIN, TMAX, 0);
  while (j->qhead < j->qn && !j->stop) {
    item_t it = j->q[j->qhead++];
    walk_item(j, &it);
  }
}

/* ---- The answer ---------------------------------------------------------------------------- */

static int step_cmp(const void *a, const void *b) {
  const step_t *x = a, *y = b;
  return ev_time_cmp(&x->e, &y->e);
}

/* Whether s is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points past
 * U+10FFFF). Strings of a step come from bodies the node verified, but a member cut at its buffer's
 * size may end inside a character: such a member is left out, as jansson would. */
static int utf8_ok(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned c = *p, n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
                                     : (c & 0xF8) == 0xF0 ? 3 : 4;
    if (n == 4 || (n == 1 && c < 0xC2) || (c == 0xF4 && p[1] > 0x8F) || c > 0xF4 ||
        (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F) || (c == 0xF0 && p[1] < 0x90))
      return 0;
    for (unsigned k = 1; k <= n; k++)
      if ((p[k] & 0xC0) != 0x80)
        return 0;
    p += n + 1;
  }
  return 1;
}

/* ,"k":"v" — left out when v is NULL, empty or not UTF-8. */
static void put_str(sj_buf_t *b, const char *k, const char *v) {
  if (!v || !*v || !utf8_ok(v))
    return;
  sj_buf_printf(b, ",\"%s\":", k);
  json_str(b, v, strlen(v));
}

/* "children": the first LIST_SHOWN codes of a role, and "children_count" when there are more. */
static void put_role_list(sj_buf_t *b, const sj_trace_ev_t *e, int role, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < e->ncodes; i++) {
    if (e->codes[i].role != role || n++ >= LIST_SHOWN)
      continue;
    sj_buf_printf(b, n == 1 ? ",\"%s\":[" : ",", name);
    json_str(b, e->codes[i].urn, strlen(e->codes[i].urn));
  }
  if (n)
    sj_buf_append_u8(b, ']');
  if (n > LIST_SHOWN)
    sj_buf_printf(b, ",\"%s_count\":%zu", name, n);
}

static void put_step(sj_buf_t *b, const step_t *s) {
  static const char *const dirs[] = {"", "back", "forward", "both"};
  const sj_trace_ev_t *e = &s->e->ev;
  char tbuf[64];
  sj_epcis_format_time(e->time_ms, tbuf);
  sj_buf_printf(b, "{\"region\":\"%06u\",\"seq\":%llu,\"leaf_hash\":", e->region,
                (unsigned long long)e->seq);
  json_b64(b, e->leaf, SJ_HASH_LEN);
  sj_buf_append_str(b, ",\"time\":");
  const char *t = e->event_time[0] ? e->event_time : tbuf;
  json_str(b, t, strlen(t));
  sj_buf_printf(b, ",\"time_ms\":%lld,\"event_type\":\"%s\"", (long long)e->time_ms,
                e->type >= 0 ? ev_types[e->type] : "unknown");
  if (e->action >= 0)
    sj_buf_printf(b, ",\"action\":\"%s\"", actions[e->action]);
  put_str(b, "biz_step", e->biz_step);
  put_str(b, "disposition", e->disposition);
  put_str(b, "location", e->location);
  put_str(b, "read_point", e->read_point);
  put_str(b, "operator", e->operator_uscc);
  sj_buf_append_str(b, ",\"via\":");
  json_str(b, s->via->urn, strlen(s->via->urn));
  sj_buf_printf(b, ",\"role\":\"%s\",\"depth\":%u,\"direction\":\"%s\"", role_names[s->role],
                s->depth, dirs[s->dirs & 3]);
  put_str(b, "parent", first_of_role(e, SJ_TR_PARENT));
  put_role_list(b, e, SJ_TR_CHILD, "children");
  put_role_list(b, e, SJ_TR_INPUT, "inputs");
  put_role_list(b, e, SJ_TR_OUTPUT, "outputs");
  put_role_list(b, e, SJ_TR_EPC, "epcs");
  put_str(b, "withheld", e->withheld);
  sj_buf_append_u8(b, '}');
}

/* The answer, written straight into out (member order as docs/TRACE.md shows it). */
static int answer(jctx_t *j, const char *code, sj_buf_t *out) {
  static const char *const dnames[] = {"", "back", "forward", "both"};
  if (j->nsteps > 1) /* qsort(NULL, 0) is undefined */
    qsort(j->steps, j->nsteps, sizeof *j->steps, step_cmp);
  sj_buf_append_str(out, "{\"code\":");
  json_str(out, code, strlen(code));
  sj_buf_printf(out, ",\"direction\":\"%s\",\"steps\":[", dnames[j->o->dir & 3]);
  uint32_t seen[64];
  size_t nseen = 0;
  for (size_t i = 0; i < j->nsteps; i++) {
    if (i)
      sj_buf_append_u8(out, ',');
    put_step(out, &j->steps[i]);
    uint32_t r = j->steps[i].e->ev.region;
    size_t k = 0;
    while (k < nseen && seen[k] != r)
      k++;
    if (k == nseen && nseen < 64)
      seen[nseen++] = r;
  }
  sj_buf_append_str(out, "],\"regions\":[");
  for (size_t i = 0; i < nseen; i++) { /* ascending */
    size_t m = i;
    for (size_t k = i + 1; k < nseen; k++)
      m = seen[k] < seen[m] ? k : m;
    uint32_t t = seen[i];
    seen[i] = seen[m];
    seen[m] = t;
    sj_buf_printf(out, "%s\"%06u\"", i ? "," : "", seen[i]);
  }
  return sj_buf_printf(out, "],\"truncated\":%s}", j->truncated ? "true" : "false");
}

static void jctx_free(jctx_t *j) {
  for (size_t b = 0; b < BUCKETS; b++)
    for (evnode_t *e = j->evt[b], *next; e; e = next) {
      next = e->next;
      sj_trace_ev_deinit(&e->ev);
      free(e);
    }
  for (size_t i = 0; i < j->ncodes; i++) {
    free(j->codes[i]->urn);
    free(j->codes[i]->evs);
    free(j->codes[i]);
  }
  free(j->codes);
  free(j->q);
  free(j->steps);
  free(j);
}

int sj_journey_walk(sj_store_t *s, const char *code, const sj_journey_opts_t *o,
                    sj_trace_visible_fn vis, void *vis_ctx, sj_buf_t *out) {
  jctx_t *j = calloc(1, sizeof *j);
  if (!j)
    return -ENOMEM;
  j->s = s;
  j->o = o;
  j->vis = vis;
  j->vis_ctx = vis_ctx;
  if (o->dir & SJ_JOURNEY_BACK)
    walk(j, code, SJ_JOURNEY_BACK);
  if ((o->dir & SJ_JOURNEY_FORWARD) && !j->err) {
    j->stop = 0; /* the forward walk gets its chance even when the backward one hit a cap */
    walk(j, code, SJ_JOURNEY_FORWARD);
  }
  int rv = j->err ? j->err : answer(j, code, out);
  jctx_free(j);
  return rv;
}
