/* node/api_trace.c — the traceability endpoints (docs/API.md, docs/TRACE.md):
 *   GET  /v1/trace/{code}/journey       a code's journey over every region held (node/journey.c)
 *   POST /v1/epcis/capture              an EPCISDocument or one event, appended all-or-nothing
 *   GET  /v1/epcis/capture/{id}         the capture job (finished when the POST is answered)
 *   GET  /v1/epcis/events               the EPCIS 2.0 query subset (MATCH_anyEPC, MATCH_epcClass,
 *                                       MATCH_anyEPCClass, EQ_bizStep, GE/LT_eventTime, eventType,
 *                                       perPage, nextPageToken)
 * Lookups run on the loop, bounded (ARCHITECTURE §7); captures go through the writer thread. */
#include "node/epcis.h"
#include "node/journey.h"
#include "node/node_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CAPTURE_MAX_EVENTS 100000
#define CAPTURE_META "epcis-capture/"

/* Who asks, for the journey and query walkers' visibility callback. */
typedef struct {
  sj_node_t *n;
  const caller_t *c;
} vis_t;

static int visible(void *ctx, const sj_entry_header_t *h, const uint8_t *body, size_t len) {
  const vis_t *v = ctx;
  return api_body_visible(v->n, v->c, h, body, len);
}

/* Replies with extra headers (content-type first) and counts the request in the metrics. */
static void reply_hdrs(sj_node_t *n, sj_req_t *req, int route, int status, sj_header_t *h,
                       size_t nh, sj_buf_t *b, uint64_t t0) {
  size_t len = b->n;
  void *p = b->p;
  sj_buf_init(b);
  sj_req_respond_owned(req, status, h, nh, p, len, free);
  sj_metrics_request(n->metrics, n->route_ids[route], status, t0 ? api_now_us() - t0 : 0);
}

/* ---- GET /v1/trace/{code}/journey --------------------------------------------------------- */

/* The trace codes a journey read, for the response cache: the answer stays exact while none of
 * them gets a new entry (a new event naming only other codes cannot reach the walk). One more
 * than the cache takes means "too many". */
typedef struct {
  uint64_t h[SJ_CACHE_MAX_DEPS + 1];
  size_t n;
} deps_t;

static void dep_add(void *ctx, const uint8_t *key, size_t n) {
  deps_t *d = ctx;
  if (d->n <= SJ_CACHE_MAX_DEPS)
    d->h[d->n++] = sj_cache_dep_hash(key, n);
}

static int journey_params(sj_node_t *n, sj_req_t *req, sj_journey_opts_t *o) {
  const char *d = sj_req_query(req, "direction"), *depth = sj_req_query(req, "depth");
  const char *limit = sj_req_query(req, "limit");
  uint64_t v;
  o->dir = SJ_JOURNEY_BOTH;
  o->max_depth = SJ_JOURNEY_DEPTH_DEFAULT;
  o->max_steps = SJ_JOURNEY_STEPS_DEFAULT;
  if (d && strcmp(d, "back") && strcmp(d, "forward") && strcmp(d, "both")) {
    api_bad_param(n, req, R_JOURNEY, "direction", "DIRECTION_INVALID",
                  "direction must be back, forward or both");
    return -1;
  }
  if (d)
    o->dir = !strcmp(d, "back")      ? SJ_JOURNEY_BACK
             : !strcmp(d, "forward") ? SJ_JOURNEY_FORWARD
                                     : SJ_JOURNEY_BOTH;
  if (depth && (parse_u64(depth, &v) || v < 1 || v > SJ_JOURNEY_DEPTH_MAX)) {
    api_bad_param(n, req, R_JOURNEY, "depth", "DEPTH_INVALID", "depth must be an integer 1..64");
    return -1;
  }
  if (depth)
    o->max_depth = (unsigned)v;
  if (limit && (parse_u64(limit, &v) || v < 1 || v > SJ_JOURNEY_STEPS_MAX)) {
    api_bad_param(n, req, R_JOURNEY, "limit", "LIMIT_INVALID", "limit must be an integer 1..10000");
    return -1;
  }
  if (limit)
    o->max_steps = (size_t)v;
  o->max_events = o->max_steps * 4 < 5000 ? 5000 : o->max_steps * 4;
  return 0;
}

static void get_journey(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us();
  caller_t c;
  sj_journey_opts_t o = {0};
  uint64_t changes = SJ_CREDIT_FOREVER; /* lowered by any disclosure that depends on time */
  deps_t deps = {0};
  if (api_from_cache(n, req, R_JOURNEY, t0) || api_caller(n, req, R_JOURNEY, &c) ||
      journey_params(n, req, &o))
    return;
  c.changes_ms = &changes;
  o.read_key = dep_add;
  o.read_key_ctx = &deps;
  const char *code = sj_req_param(req, "code");
  sj_epc_t epc;
  sj_epc_code_t ec = sj_epc_canonical(code, strlen(code), &epc);
  if (ec != SJ_EPC_OK) {
    api_bad_param(n, req, R_JOURNEY, "code", sj_epc_code_name(ec), sj_epc_code_message(ec));
    return;
  }
  sj_buf_t out = {0};
  vis_t vis = {n, &c};
  int rv = sj_journey_walk(n->store, epc.urn, &o, visible, &vis, &out);
  if (rv)
    api_problem(n, req, R_JOURNEY, rv == -ENOMEM ? 503 : 500, "Journey failed", sj_strerror(rv),
                NULL);
  else {
    if (deps.n <= SJ_CACHE_MAX_DEPS) /* else too many codes to watch: not kept */
      api_to_cache(n, req, &c, deps.h, deps.n, changes, &out);
    api_reply(n, req, R_JOURNEY, 200, "application/json", &out, t0);
  }
  sj_buf_deinit(&out);
}

/* ---- POST /v1/epcis/capture ----------------------------------------------------------------- */

/* The time the entry (region, seq) was appended, ms since the epoch; 0 if unreadable. */
static int64_t entry_time(sj_node_t *n, uint32_t region, uint64_t seq) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_buf_t hb = {0};
  sj_entry_header_t h;
  int64_t t = 0;
  if (sj_store_get_entry(n->store, region, seq, &hb, NULL, NULL) == 0 &&
      sj_entry_decode(hb.p, hb.n, &h, keys, SJ_ENTRY_MAX_KEYS) == 0)
    t = (int64_t)h.time_ms;
  sj_buf_deinit(&hb);
  return t;
}

/* The capture job as EPCIS 2.0 describes it, plus where each event went. */
static void job_json(sj_node_t *n, const char *id, uint64_t first, size_t count,
                     uint8_t (*leaf)[SJ_HASH_LEN], uint64_t tree_size, int64_t finished,
                     sj_buf_t *b) {
  char t[64];
  sj_epcis_format_time(finished, t);
  sj_buf_printf(b,
                "{\"captureID\":\"%s\",\"running\":false,\"success\":true,"
                "\"captureErrorBehaviour\":\"rollback\",\"finishedAt\":\"%s\",\"errors\":[],"
                "\"accepted\":[",
                id, t);
  for (size_t i = 0; i < count; i++) {
    sj_buf_printf(b, "%s{\"region\":\"%s\",\"seq\":%llu,\"leaf_hash\":", i ? "," : "",
                  n->region_str, (unsigned long long)(first + i));
    json_b64(b, leaf[i], SJ_HASH_LEN);
    sj_buf_append_u8(b, '}');
  }
  sj_buf_printf(b, "],\"tree_size\":%llu}", (unsigned long long)tree_size);
}

/* 202 with the finished job, for a capture just appended or replayed (its Idempotency-Key). */
static void capture_accepted(sj_node_t *n, sj_req_t *req, const char *mkey, uint64_t first,
                             size_t count, uint8_t (*leaf)[SJ_HASH_LEN], uint64_t tree_size,
                             uint64_t t0) {
  const char *id = mkey + strlen(CAPTURE_META); /* meta_key always names the job */
  sj_buf_t b = {0};
  char loc[80];
  snprintf(loc, sizeof loc, "/v1/epcis/capture/%s", id);
  job_json(n, id, first, count, leaf, tree_size, entry_time(n, (uint32_t)n->cfg.region, first),
           &b);
  sj_header_t h[2] = {{"content-type", "application/json"}, {"location", loc}};
  reply_hdrs(n, req, R_EPCIS_CAPTURE, 202, h, 2, &b, t0);
}

static void capture_failed(sj_node_t *n, sj_req_t *req, int rv, size_t nrecs) {
  SJ_LOG_ERR("api", "%s stream %d: capture of %zu events failed: %s", sj_req_peer(req),
             sj_req_stream_id(req), nrecs, sj_strerror(rv));
  api_problem(n, req, R_EPCIS_CAPTURE,
              rv == SJ_ENOSPACE  ? 507
              : rv == SJ_ECLOSED ? 503
                                 : 500,
              "Capture failed", "nothing was written; retry later", NULL);
}

/* Record errors name "/event/..." of record i; the client sent "/epcisBody/eventList/i/..." (a
 * document) or "/..." (one event). */
static void remap_errors(sj_rec_errors_t *e, int is_document) {
  for (size_t i = 0; i < e->n; i++) {
    sj_rec_error_t *x = &e->v[i];
    if (strncmp(x->field, "/event", 6) != 0 || (x->field[6] && x->field[6] != '/'))
      continue;
    char f[sizeof x->field];
    if (is_document)
      snprintf(f, sizeof f, "/epcisBody/eventList/%zu%s", x->index, x->field + 6);
    else
      snprintf(f, sizeof f, "%s", x->field + 6);
    memcpy(x->field, f, sizeof f);
    size_t k = strspn(x->message + 5, "0123456789"); /* "line N: " names a line we made up */
    if (!strncmp(x->message, "line ", 5) && k && !strncmp(x->message + 5 + k, ": ", 2))
      memmove(x->message, x->message + 7 + k, strlen(x->message + 7 + k) + 1);
  }
}

static void capture_refused(sj_node_t *n, sj_req_t *req, int rv, sj_rec_errors_t *errs) {
  sj_buf_t ej = {0};
  char detail[96];
  int listed = sj_rec_errors_to_json(errs, &ej) == 0; /* else the problem without the list */
  snprintf(detail, sizeof detail, "%zu error(s); nothing was written", errs->total);
  int status = rv == SJ_ETOOBIG ? 413 : rv == -ENOMEM ? 503 : 400;
  api_problem(n, req, R_EPCIS_CAPTURE, status, "Invalid EPCIS capture", detail,
              listed ? &ej : NULL);
  sj_buf_deinit(&ej);
}

/* Any thread: the document's (or the bare event's) events as trace records, errors naming places
 * in the document. The Content-Type was checked on the loop. */
static int capture_parse(const uint8_t *body, size_t len, const char *ctype,
                         const uint8_t *hmac_key, sj_record_t **recs, size_t *nrecs,
                         sj_rec_errors_t *errs) {
  sj_epcis_doc_t d = {0};
  sj_buf_t nd = {0};
  (void)ctype;
  int rv = sj_epcis_split(body, len, CAPTURE_MAX_EVENTS, &d, errs);
  if (rv == 0)
    rv = sj_epcis_to_ndjson(body, &d, &nd);
  if (rv == 0) {
    rv = sj_record_parse_request(nd.p, nd.n, "application/x-ndjson", hmac_key,
                                 CAPTURE_MAX_EVENTS, recs, nrecs, errs);
    remap_errors(errs, d.is_document);
  }
  sj_epcis_doc_free(&d);
  sj_buf_deinit(&nd);
  return rv;
}

/* Every capture has a job row, "epcis-capture/<id>". Its id is random, or with an
 * Idempotency-Key the first 16 bytes of SHA-256(token hash || "epcis-capture" || key) in hex, so
 * that a retry finds the job of the first request. */
static int capture_meta_key(const caller_t *c, const char *key, size_t len, char out[72]) {
  uint8_t h[SJ_HASH_LEN];
  if (key) {
    uint8_t buf[32 + 13 + 255];
    size_t n = len < 255 ? len : 255;
    memcpy(buf, c->tok->hash, 32);
    memcpy(buf + 32, "epcis-capture", 13);
    memcpy(buf + 45, key, n);
    sj_sha256(buf, 45 + n, h);
  } else {
    randombytes_buf(h, 16);
  }
  memcpy(out, CAPTURE_META, sizeof CAPTURE_META - 1);
  sj_hex_encode(h, 16, out + sizeof CAPTURE_META - 1);
  return 1;
}

static const api_submit_ops_t capture_ops = {
    .route = R_EPCIS_CAPTURE,
    .parse = capture_parse,
    .refused = capture_refused,
    .failed = capture_failed,
    .accepted = capture_accepted,
    .meta_key = capture_meta_key,
};

/* application/json or application/ld+json (EPCIS 2.0), UTF-8. */
static int capture_ctype_ok(sj_req_t *req) {
  const char *ct = sj_req_header(req, "content-type", NULL);
  if (!ct)
    return 0;
  size_t k = strcspn(ct, "; \t");
  if (!((k == 16 && !strncasecmp(ct, "application/json", k)) ||
        (k == 19 && !strncasecmp(ct, "application/ld+json", k))))
    return 0;
  const char *cs = strstr(ct, "charset=");
  return !cs || !strncasecmp(cs + 8, "utf-8", 5) || !strncasecmp(cs + 8, "\"utf-8\"", 7);
}

static void post_capture(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  caller_t c;
  if (api_caller(n, req, R_EPCIS_CAPTURE, &c) ||
      api_require_submit(n, req, &c, R_EPCIS_CAPTURE, "capturing events", "capture events"))
    return;
  if (!capture_ctype_ok(req)) {
    api_problem(n, req, R_EPCIS_CAPTURE, 415, "Unsupported Media Type",
                "Content-Type must be application/ld+json or application/json (UTF-8)", NULL);
    return;
  }
  api_submit_records(n, req, &c, &capture_ops, api_now_us());
}

/* ---- GET /v1/epcis/capture/{id} ------------------------------------------------------------ */

static void get_capture(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us();
  caller_t c;
  if (api_caller(n, req, R_EPCIS_CAPTURE, &c))
    return;
  if (c.role != SJ_ROLE_SUBMIT && c.role != SJ_ROLE_AUTHORITY) {
    api_problem(n, req, R_EPCIS_CAPTURE, c.role == SJ_ROLE_PUBLIC ? 401 : 403, "Unauthorized",
                "capture jobs are shown to tokens of role submit or authority", NULL);
    return;
  }
  const char *id = sj_req_param(req, "id");
  uint8_t raw[16];
  if (strlen(id) != 32 || sj_hex_decode(id, 32, raw, sizeof raw)) {
    api_bad_param(n, req, R_EPCIS_CAPTURE, "id", "CAPTURE_ID_INVALID",
                  "a capture id is the 32 hex digits of a Location header");
    return;
  }
  char mkey[sizeof CAPTURE_META + 32], lid[33];
  sj_hex_encode(raw, sizeof raw, lid); /* lower case, as issued */
  snprintf(mkey, sizeof mkey, CAPTURE_META "%s", lid);
  sj_buf_t v = {0}, b = {0};
  int rv = sj_store_meta_get(n->store, mkey, &v);
  if (rv || v.n != SJ_HASH_LEN + 20) {
    sj_buf_deinit(&v);
    api_problem(n, req, R_EPCIS_CAPTURE, rv == SJ_ENOTFOUND || rv == 0 ? 404 : 500, "Not Found",
                "no capture job with this id on this node", NULL);
    return;
  }
  uint64_t first = sj_get_be64(v.p + 32), size = sj_get_be64(v.p + 44);
  uint32_t count = sj_get_be32(v.p + 40);
  uint8_t(*leaf)[SJ_HASH_LEN] = calloc(count ? count : 1, SJ_HASH_LEN);
  rv = leaf ? 0 : -ENOMEM;
  for (uint32_t i = 0; rv == 0 && i < count; i++)
    rv = sj_store_leaf_hash(n->store, (uint32_t)n->cfg.region, first + i, leaf[i]);
  if (rv) {
    api_problem(n, req, R_EPCIS_CAPTURE, 500, "Storage error", sj_strerror(rv), NULL);
  } else {
    job_json(n, lid, first, count, leaf, size, entry_time(n, (uint32_t)n->cfg.region, first), &b);
    api_reply(n, req, R_EPCIS_CAPTURE, 200, "application/json", &b, t0);
  }
  free(leaf);
  sj_buf_deinit(&v);
  sj_buf_deinit(&b);
}

/* ---- GET /v1/epcis/events: the EPCIS 2.0 query subset ------------------------------------- */

#define PER_PAGE_DEFAULT 30
#define PER_PAGE_MAX 1000
#define QUERY_LOAD_MAX 50000 /* entries read for one query; beyond it the query is too broad */
#define QUERY_VALUES_MAX 64

typedef struct {
  char *v[QUERY_VALUES_MAX];
  size_t n;
  int pattern; /* some value is a GTIN pattern: the index cannot find it */
} codes_param_t;

typedef struct {
  codes_param_t any, cls, anycls;
  char *steps[QUERY_VALUES_MAX]; /* EQ_bizStep: bare words or extension URIs */
  size_t nsteps;
  int types; /* eventType bit mask, 0 = all */
  int64_t ge, lt;
  uint64_t per_page;
  int has_after;
  int64_t after_t;
  uint32_t after_region;
  uint64_t after_seq;
} query_t;

static const char *const qnames[] = {
    "MATCH_anyEPC", "MATCH_epcClass", "MATCH_anyEPCClass", "EQ_bizStep",    "GE_eventTime",
    "LT_eventTime", "eventType",      "perPage",           "nextPageToken", NULL};

static void query_free(query_t *q) {
  for (size_t i = 0; i < q->any.n; i++)
    free(q->any.v[i]);
  for (size_t i = 0; i < q->cls.n; i++)
    free(q->cls.v[i]);
  for (size_t i = 0; i < q->anycls.n; i++)
    free(q->anycls.v[i]);
  for (size_t i = 0; i < q->nsteps; i++)
    free(q->steps[i]);
}

/* Every query parameter must be one this node implements (EPCIS: QueryParameterException). */
static int query_names_ok(sj_node_t *n, sj_req_t *req) {
  const char *p = sj_req_header(req, ":path", NULL);
  const char *qs = p ? strchr(p, '?') : NULL;
  while (qs && *qs) {
    qs++;
    size_t k = strcspn(qs, "=&");
    int known = k == 0;
    for (size_t i = 0; !known && qnames[i]; i++)
      known = strlen(qnames[i]) == k && !strncmp(qnames[i], qs, k);
    if (!known) {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)(k < 60 ? k : 60), qs);
      api_bad_param(n, req, R_EPCIS_EVENTS, name, "QUERY_PARAMETER_UNSUPPORTED",
                    "supported: MATCH_anyEPC, MATCH_epcClass, MATCH_anyEPCClass, EQ_bizStep, "
                    "GE_eventTime, LT_eventTime, eventType, perPage, nextPageToken");
      return -1;
    }
    qs = strchr(qs, '&');
  }
  return 0;
}

/* A list of codes: the whole value if it is one code (a lot may hold a ','), else split at ','. */
static int codes_param(sj_node_t *n, sj_req_t *req, const char *name, codes_param_t *out) {
  const char *v = sj_req_query(req, name);
  sj_epc_t epc;
  if (!v)
    return 0;
  int whole = sj_epc_canonical(v, strlen(v), &epc) == SJ_EPC_OK;
  for (const char *p = v; *p || p == v;) {
    size_t k = whole ? strlen(p) : strcspn(p, ",");
    sj_epc_code_t ec = sj_epc_canonical(p, k, &epc);
    if (ec != SJ_EPC_OK || out->n == QUERY_VALUES_MAX) {
      api_bad_param(n, req, R_EPCIS_EVENTS, name, ec ? sj_epc_code_name(ec) : "TOO_MANY_VALUES",
                    ec ? sj_epc_code_message(ec) : "at most 64 values per parameter");
      return -1;
    }
    out->pattern |= epc.scheme == SJ_EPC_GTIN_CLASS;
    if (!(out->v[out->n++] = strdup(epc.urn)))
      return -1;
    p += k;
    if (*p != ',')
      break;
    p++;
  }
  return 0;
}

static int time_param(sj_node_t *n, sj_req_t *req, const char *name, int64_t *out) {
  const char *v = sj_req_query(req, name);
  if (v && sj_epcis_parse_time(v, strlen(v), out)) {
    api_bad_param(n, req, R_EPCIS_EVENTS, name, "TIME_INVALID",
                  "times are RFC 3339 date-times with an offset ('+' written %2B)");
    return -1;
  }
  return 0;
}

static int steps_param(sj_node_t *n, sj_req_t *req, query_t *q) {
  const char *v = sj_req_query(req, "EQ_bizStep");
  for (const char *p = v; p && *p;) {
    size_t k = strcspn(p, ",");
    const char *word = NULL;
    int cls = sj_cbv_classify(SJ_CBV_BIZSTEP, p, k, &word);
    if (cls < 0 || q->nsteps == QUERY_VALUES_MAX) {
      api_bad_param(n, req, R_EPCIS_EVENTS, "EQ_bizStep", "BIZ_STEP_INVALID",
                    "EQ_bizStep takes CBV business steps or extension URIs, comma-separated");
      return -1;
    }
    q->steps[q->nsteps++] = cls == 1 ? strdup(word) : strndup(p, k);
    p += k + (p[k] == ',');
  }
  return 0;
}

static int types_param(sj_node_t *n, sj_req_t *req, query_t *q) {
  static const char *const types[] = {"ObjectEvent", "AggregationEvent", "TransformationEvent",
                                      "TransactionEvent", "AssociationEvent"};
  const char *v = sj_req_query(req, "eventType");
  for (const char *p = v; p && *p;) {
    size_t k = strcspn(p, ","), i = 0;
    while (i < 5 && !(strlen(types[i]) == k && !strncmp(types[i], p, k)))
      i++;
    if (i == 5) {
      api_bad_param(n, req, R_EPCIS_EVENTS, "eventType", "EVENT_TYPE_INVALID",
                    "eventType takes EPCIS 2.0 event types, comma-separated");
      return -1;
    }
    q->types |= 1 << i;
    p += k + (p[k] == ',');
  }
  return 0;
}

/* nextPageToken: hex of (event time, region, seq) of the last event returned. */
static int page_params(sj_node_t *n, sj_req_t *req, query_t *q) {
  const char *pp = sj_req_query(req, "perPage"), *tok = sj_req_query(req, "nextPageToken");
  q->per_page = PER_PAGE_DEFAULT;
  if (pp && (parse_u64(pp, &q->per_page) || q->per_page < 1 || q->per_page > PER_PAGE_MAX)) {
    api_bad_param(n, req, R_EPCIS_EVENTS, "perPage", "PER_PAGE_INVALID",
                  "perPage must be an integer 1..1000");
    return -1;
  }
  uint8_t b[20];
  if (tok && (strlen(tok) != 40 || sj_hex_decode(tok, 40, b, sizeof b))) {
    api_bad_param(n, req, R_EPCIS_EVENTS, "nextPageToken", "PAGE_TOKEN_INVALID",
                  "nextPageToken must be a value from an earlier answer");
    return -1;
  }
  if (tok) {
    q->has_after = 1;
    q->after_t = (int64_t)(sj_get_be64(b) ^ (1ull << 63));
    q->after_region = sj_get_be32(b + 8);
    q->after_seq = sj_get_be64(b + 12);
  }
  return 0;
}

static int query_parse(sj_node_t *n, sj_req_t *req, query_t *q) {
  memset(q, 0, sizeof *q);
  q->ge = INT64_MIN;
  q->lt = INT64_MAX;
  if (query_names_ok(n, req) || codes_param(n, req, "MATCH_anyEPC", &q->any) ||
      codes_param(n, req, "MATCH_epcClass", &q->cls) ||
      codes_param(n, req, "MATCH_anyEPCClass", &q->anycls) || steps_param(n, req, q) ||
      types_param(n, req, q) || time_param(n, req, "GE_eventTime", &q->ge) ||
      time_param(n, req, "LT_eventTime", &q->lt) || page_params(n, req, q))
    return -1;
  return 0;
}

/* Whether one of the values matches a code of the event in one of the roles of mask, instance
 * (qty 0) or class (qty 1) as want_qty says (-1: either). */
static int codes_match(const codes_param_t *p, const sj_trace_ev_t *e, unsigned mask,
                       int want_qty) {
  for (size_t i = 0; i < e->ncodes; i++) {
    const sj_tr_code_t *c = &e->codes[i];
    if (!(mask & (1u << c->role)) || (want_qty >= 0 && c->qty != want_qty))
      continue;
    for (size_t k = 0; k < p->n; k++)
      if (sj_trace_code_matches(p->v[k], c->urn))
        return 1;
  }
  return 0;
}

static int event_matches(const query_t *q, const sj_trace_ev_t *e) {
  const unsigned all = 0x1f, epc_child = (1u << SJ_TR_EPC) | (1u << SJ_TR_CHILD);
  if (!e->visible || e->time_ms < q->ge || e->time_ms >= q->lt)
    return 0;
  if (q->types && (e->type < 0 || !(q->types & (1 << e->type))))
    return 0;
  if (q->any.n && !codes_match(&q->any, e, all, 0))
    return 0;
  if (q->cls.n && !codes_match(&q->cls, e, epc_child, 1))
    return 0;
  if (q->anycls.n && !codes_match(&q->anycls, e, all, 1))
    return 0;
  int step_ok = q->nsteps == 0;
  for (size_t i = 0; i < q->nsteps && !step_ok; i++)
    step_ok = strcmp(q->steps[i], e->biz_step) == 0;
  return step_ok;
}

typedef struct {
  int64_t t;
  uint32_t region;
  uint64_t seq;
} qrow_t;

typedef struct {
  qrow_t *v;
  size_t n, cap;
  size_t loaded;
  int too_broad;
  sj_node_t *node;
  const caller_t *c;
  const query_t *q;
  qrow_t *seen; /* candidates already tried (index scans of several codes overlap) */
  size_t nseen, capseen;
} qres_t;

static int qrow_cmp(const void *a, const void *b) {
  const qrow_t *x = a, *y = b;
  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  if (x->region != y->region)
    return x->region < y->region ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int qgrow(qrow_t **v, size_t *cap, size_t n) {
  if (n < *cap)
    return 0;
  size_t c = *cap ? *cap * 2 : 64;
  qrow_t *p = realloc(*v, c * sizeof *p);
  if (!p)
    return -ENOMEM;
  *v = p;
  *cap = c;
  return 0;
}

/* Loads one candidate and keeps it if it matches. Returns 0, 1 (stop: too broad) or < 0. */
static int consider(qres_t *r, uint32_t region, uint64_t seq) {
  if (r->loaded++ == QUERY_LOAD_MAX) {
    r->too_broad = 1;
    return 1;
  }
  sj_trace_ev_t e;
  vis_t vis = {r->node, r->c};
  int rv = sj_trace_ev_load(r->node->store, region, seq, visible, &vis, 0, &e);
  if (rv)
    return rv == SJ_ENOTFOUND ? 0 : rv;
  if (event_matches(r->q, &e)) {
    rv = qgrow(&r->v, &r->cap, r->n);
    if (rv == 0)
      r->v[r->n++] = (qrow_t){e.time_ms, region, seq};
  }
  sj_trace_ev_deinit(&e);
  return rv;
}

static int scan_row(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms) {
  qres_t *r = ctx;
  (void)time_ms;
  if (r->nseen > QUERY_LOAD_MAX) {
    r->too_broad = 1;
    return 1;
  }
  if (qgrow(&r->seen, &r->capseen, r->nseen))
    return -ENOMEM;
  r->seen[r->nseen++] = (qrow_t){0, region, seq};
  return 0;
}

/* Tries every distinct candidate the index scans found (several codes of one event: once). */
static int consider_seen(qres_t *r) {
  if (r->nseen > 1)
    qsort(r->seen, r->nseen, sizeof *r->seen, qrow_cmp);
  int rv = 0;
  for (size_t i = 0; rv == 0 && i < r->nseen; i++)
    if (i == 0 || qrow_cmp(&r->seen[i], &r->seen[i - 1]))
      rv = consider(r, r->seen[i].region, r->seen[i].seq);
  return rv;
}

/* Candidates: the index rows of the MATCH_ codes when every one is a plain code; otherwise every
 * trace entry of every region held, up to QUERY_LOAD_MAX. */
static int query_collect(sj_node_t *n, const query_t *q, qres_t *r) {
  const codes_param_t *lists[] = {&q->any, &q->cls, &q->anycls};
  const codes_param_t *use = NULL;
  for (size_t i = 0; i < 3; i++)
    if (lists[i]->n && !lists[i]->pattern && (!use || lists[i]->n < use->n))
      use = lists[i];
  int rv = 0;
  for (size_t i = 0; use && rv == 0 && i < use->n; i++) {
    uint8_t key[1 + SJ_ENTRY_MAX_KEY_LEN];
    size_t klen =
        sj_store_index_key(SJ_KEY_EPC, (const uint8_t *)use->v[i], strlen(use->v[i]), key);
    rv = sj_store_scan(n->store, SJ_INDEX_TRACE, key, klen, NULL, scan_row, r);
  }
  if (use && rv >= 0 && !r->too_broad)
    rv = consider_seen(r);
  if (use)
    return rv < 0 ? rv : 0;
  uint32_t regions[256];
  size_t nr = 0;
  rv = sj_store_regions(n->store, regions, 256, &nr);
  for (size_t i = 0; rv == 0 && i < nr && i < 256; i++) {
    uint64_t size = 0;
    sj_store_head(n->store, regions[i], &size, NULL, NULL);
    for (uint64_t s = 0; rv == 0 && s < size; s++)
      rv = consider(r, regions[i], s);
  }
  return rv < 0 ? rv : 0;
}

/* The page's events, each the stored event with "sanjiao:region", "sanjiao:seq" and
 * "sanjiao:leafHash" added, so that every one can be proved. */
static int page_json(sj_node_t *n, const caller_t *c, const qrow_t *rows, size_t count,
                     sj_buf_t *out) {
  int rv = 0;
  for (size_t i = 0; rv == 0 && i < count; i++) {
    sj_trace_ev_t e;
    vis_t vis = {n, c};
    rv = sj_trace_ev_load(n->store, rows[i].region, rows[i].seq, visible, &vis, 1, &e);
    if (rv)
      break;
    json_t *ev = json_deep_copy(json_object_get(e.record, "event"));
    char region[12], leaf[64];
    snprintf(region, sizeof region, "%06u", e.region);
    sj_base64_encode(e.leaf, SJ_HASH_LEN, leaf);
    json_object_set_new(ev, "sanjiao:region", json_string(region));
    json_object_set_new(ev, "sanjiao:seq", json_integer((json_int_t)e.seq));
    json_object_set_new(ev, "sanjiao:leafHash", json_string(leaf));
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rv = s ? sj_buf_printf(out, "%s%s", i ? "," : "", s) : -ENOMEM;
    free(s);
    json_decref(ev);
    sj_trace_ev_deinit(&e);
  }
  return rv;
}

/* The Link header of the next page: this request's :path with nextPageToken replaced. */
static void next_link(sj_req_t *req, const char *tok, sj_buf_t *link) {
  const char *p = sj_req_header(req, ":path", NULL);
  const char *q = p ? strchr(p, '?') : NULL;
  sj_buf_printf(link, "<%.*s?", (int)(q ? q - p : (p ? (long)strlen(p) : 0)), p ? p : "");
  int first = 1;
  while (q && *q) {
    q++;
    size_t k = strcspn(q, "&");
    if (k && strncmp(q, "nextPageToken=", 14) && strncmp(q, "nextPageToken&", 14) &&
        !(k == 13 && !strncmp(q, "nextPageToken", 13))) {
      sj_buf_printf(link, "%s%.*s", first ? "" : "&", (int)k, q);
      first = 0;
    }
    q += k;
  }
  sj_buf_printf(link, "%snextPageToken=%s>; rel=\"next\"", first ? "" : "&", tok);
}

static void answer_events(sj_node_t *n, sj_req_t *req, const caller_t *c, const query_t *q,
                          qres_t *r, uint64_t t0) {
  if (r->n > 1)
    qsort(r->v, r->n, sizeof *r->v, qrow_cmp);
  size_t i = 0;
  qrow_t after = {q->after_t, q->after_region, q->after_seq};
  while (q->has_after && i < r->n && qrow_cmp(&r->v[i], &after) <= 0)
    i++;
  size_t count = r->n - i < q->per_page ? r->n - i : (size_t)q->per_page;
  char now[64], tok[41] = "";
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  sj_epcis_format_time(tv.tv_sec * 1000 + tv.tv_usec / 1000, now);
  sj_buf_t out = {0}, link = {0};
  sj_buf_printf(&out,
                "{\"@context\":[\"https://ref.gs1.org/standards/epcis/2.0.0/"
                "epcis-context.jsonld\",{\"sanjiao\":\"urn:sanjiao:epcis:\"}],"
                "\"type\":\"EPCISQueryDocument\",\"schemaVersion\":\"2.0\","
                "\"creationDate\":\"%s\","
                "\"epcisBody\":{\"queryResults\":{\"queryName\":\"SimpleEventQuery\","
                "\"resultsBody\":{\"eventList\":[",
                now);
  int rv = page_json(n, c, r->v + i, count, &out);
  if (i + count < r->n) {
    uint8_t b[20];
    const qrow_t *last = &r->v[i + count - 1];
    sj_put_be64(b, (uint64_t)last->t ^ (1ull << 63)); /* order-preserving for negative times */
    sj_put_be32(b + 8, last->region);
    sj_put_be64(b + 12, last->seq);
    sj_hex_encode(b, sizeof b, tok);
    next_link(req, tok, &link);
  }
  sj_buf_printf(&out, "]}}}%s%s%s}", tok[0] ? ",\"nextPageToken\":\"" : "", tok,
                tok[0] ? "\"" : "");
  if (rv) {
    api_problem(n, req, R_EPCIS_EVENTS, 500, "Storage error", sj_strerror(rv), NULL);
  } else {
    sj_header_t h[2] = {{"content-type", "application/ld+json"}, {"link", (char *)link.p}};
    reply_hdrs(n, req, R_EPCIS_EVENTS, 200, h, link.n ? 2 : 1, &out, t0);
  }
  sj_buf_deinit(&out);
  sj_buf_deinit(&link);
}

static void get_events(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us();
  caller_t c;
  query_t q;
  if (api_caller(n, req, R_EPCIS_EVENTS, &c))
    return;
  if (query_parse(n, req, &q)) {
    query_free(&q);
    return;
  }
  qres_t r = {.node = n, .c = &c, .q = &q};
  int rv = query_collect(n, &q, &r);
  if (rv)
    api_problem(n, req, R_EPCIS_EVENTS, 500, "Storage error", sj_strerror(rv), NULL);
  else if (r.too_broad)
    api_problem(n, req, R_EPCIS_EVENTS, 413, "Query too large",
                "the query would read more than 50000 events: add MATCH_anyEPC or "
                "MATCH_epcClass with codes (not GTIN patterns)",
                NULL);
  else
    answer_events(n, req, &c, &q, &r, t0);
  free(r.v);
  free(r.seen);
  query_free(&q);
}

void api_register_trace(sj_node_t *n) {
  sj_route_opts_t ro = {.max_body = n->cfg.max_body, .stream_body = 0};
  sj_server_route(n->server, "GET", "/v1/trace/{code}/journey", NULL, get_journey, n);
  sj_server_route(n->server, "POST", "/v1/epcis/capture", &ro, post_capture, n);
  sj_server_route(n->server, "GET", "/v1/epcis/capture/{id}", NULL, get_capture, n);
  sj_server_route(n->server, "GET", "/v1/epcis/events", NULL, get_events, n);
}
