/* node/api_write.c — the submission path shared by POST /v1/records and POST /v1/epcis/capture
 * (api_submit_records), and POST /v1/records itself.
 *
 * On the loop a submission is only checked (token, Idempotency-Key) and queued: parsing and
 * validating its body is the writer's prepare step, on a prepare thread (node/writer.h), so the
 * loop keeps answering lookups however big the body is; the writer commits submissions in the
 * order they arrived, all-or-nothing, and the answer is given once the batch is synced.
 * Idempotency-Key makes a retry return the first answer: the key's row is written in the same
 * batch as the records, so it survives crashes exactly when they do. */
#include "node/node_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAX_RECORDS_PER_REQUEST 100000
#define IDEM_MAX 255

/* One submission, from the handler to its answer. Fields marked "prepare" are written on the
 * prepare thread and read on the loop only after the writer handed the submission back. */
typedef struct {
  sj_node_t *n;
  sj_req_t *req;
  const api_submit_ops_t *ops;
  uint64_t t0;
  const uint8_t *body; /* the request's body: stays put while req is referenced */
  size_t blen;
  char *ctype;           /* owned copy of the Content-Type header, or NULL */
  char mkey[72];         /* the meta row written with the records, "" for none */
  sj_rec_errors_t errs;  /* prepare: why the body was refused */
  int prv;               /* prepare: the parser's return (0: parsed) */
  int oom;               /* prepare: no memory for the items */
  sj_record_t *recs;     /* prepare: owned */
  size_t nrecs;
  sj_write_item_t *items;        /* prepare: owned */
  uint8_t (*leaf)[SJ_HASH_LEN];  /* prepare: owned */
  sj_write_req_t w;
  idem_slot_t *slot; /* in-flight Idempotency-Key, or NULL */
} post_t;

/* ---- in-flight idempotency keys ---------------------------------------------------------------- */

static idem_slot_t **idem_find(sj_node_t *n, const char *key, uint64_t h) {
  idem_slot_t **p = &n->inflight[h % IDEM_BUCKETS];
  while (*p && ((*p)->h != h || strcmp((*p)->key, key)))
    p = &(*p)->next;
  return p;
}

static idem_slot_t *idem_claim(sj_node_t *n, const char *key) {
  uint64_t h = XXH3_64bits(key, strlen(key));
  idem_slot_t **p = idem_find(n, key, h);
  if (*p)
    return NULL;
  idem_slot_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->h = h;
  snprintf(s->key, sizeof s->key, "%s", key);
  *p = s;
  return s;
}

static void idem_release(sj_node_t *n, idem_slot_t *s) {
  idem_slot_t **p = idem_find(n, s->key, s->h);
  if (*p == s)
    *p = s->next;
  free(s);
}

/* ---- the shared submission path ---------------------------------------------------------------- */

static void post_free(post_t *p) {
  if (p->slot)
    idem_release(p->n, p->slot);
  sj_rec_errors_deinit(&p->errs);
  sj_records_free(p->recs, p->nrecs);
  free(p->items);
  free(p->leaf);
  free(p->ctype);
  free(p);
}

/* The items, with each record's facts row annotation as the store's hook (node.c sets
 * sj_credit_annotate) would make it: record.c made it from the tree it parsed, so the single
 * writer thread only copies it instead of parsing the body again. */
static int build_items(post_t *p) {
  p->items = calloc(p->nrecs, sizeof *p->items);
  p->leaf = calloc(p->nrecs, SJ_HASH_LEN);
  if (!p->items || !p->leaf)
    return -ENOMEM;
  for (size_t i = 0; i < p->nrecs; i++) {
    const sj_record_t *r = &p->recs[i];
    p->items[i] = (sj_write_item_t){r->kind,      r->disclosure, r->type,      r->type_len,
                                    r->keys,      r->nkeys,      r->body,      r->body_len,
                                    r->body_hash, r->facts,      r->facts_n};
  }
  return 0;
}

/* Prepare thread: parse and validate the body, hash it for the meta row, build the items. Reads
 * only p's own copies and the node's HMAC key (the writer stops before the node is freed). */
static int post_prepare(sj_write_req_t *w) {
  post_t *p = w->ud;
  if (p->mkey[0])
    sj_sha256(p->body, p->blen, w->idem_body_hash);
  p->prv = p->ops->parse(p->body, p->blen, p->ctype, p->n->hmac_key, &p->recs, &p->nrecs,
                         &p->errs);
  if (p->prv)
    return p->prv;
  if (build_items(p)) {
    p->oom = 1;
    return -ENOMEM;
  }
  w->items = p->items;
  w->nitems = p->nrecs;
  w->leaf_hashes = p->leaf;
  return 0;
}

/* Loop: the writer is done with the submission (refused by prepare, failed, or synced). */
static void post_done(sj_write_req_t *w) {
  post_t *p = w->ud;
  sj_node_t *n = p->n;
  n->posts_inflight--;
  if (p->oom) {
    api_problem(n, p->req, p->ops->route, 503, "Service Unavailable", "out of memory", NULL);
  } else if (p->prv) {
    p->ops->refused(n, p->req, p->prv, &p->errs);
  } else if (w->rv) {
    p->ops->failed(n, p->req, w->rv, p->nrecs);
  } else {
    for (size_t i = 0; i < p->nrecs; i++) { /* cached lookups naming these keys are stale now */
      sj_entry_header_t h = {.keys = p->recs[i].keys, .nkeys = p->recs[i].nkeys};
      api_cache_invalidate_header(n, &h);
    }
    p->ops->accepted(n, p->req, p->mkey, w->first_seq, p->nrecs, p->leaf, w->tree_size, p->t0);
    api_follow_notify(n, n->cfg.region); /* follow and replication streams push the new entries */
  }
  sj_req_unref(p->req);
  post_free(p);
}

/* A request with this meta row was committed before: answer what it got. Returns 1 if answered
 * (a different body under the same key is 422). A row beyond the committed log belongs to a
 * group written but not yet synced (node/writer.c), whose request still holds its in-flight slot:
 * not answered here. */
static int idem_replay(sj_node_t *n, sj_req_t *req, const post_t *p) {
  sj_buf_t v = {0};
  uint64_t committed = 0;
  int rv = sj_store_meta_get(n->store, p->mkey, &v);
  if (rv == 0 && v.n == SJ_HASH_LEN + 20)
    sj_store_head(n->store, (uint32_t)n->cfg.region, &committed, NULL, NULL);
  if (rv || v.n != SJ_HASH_LEN + 20 || sj_get_be64(v.p + 44) > committed) {
    sj_buf_deinit(&v);
    return 0;
  }
  uint8_t body_hash[SJ_HASH_LEN];
  sj_sha256(p->body, p->blen, body_hash);
  if (memcmp(v.p, body_hash, SJ_HASH_LEN)) {
    sj_buf_deinit(&v);
    api_problem(n, req, p->ops->route, 422, "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request body", NULL);
    return 1;
  }
  uint64_t first = sj_get_be64(v.p + 32), size = sj_get_be64(v.p + 44);
  uint32_t count = sj_get_be32(v.p + 40);
  uint8_t(*leaf)[SJ_HASH_LEN] = calloc(count ? count : 1, SJ_HASH_LEN);
  for (uint32_t i = 0; leaf && rv == 0 && i < count; i++)
    rv = sj_store_leaf_hash(n->store, (uint32_t)n->cfg.region, first + i, leaf[i]);
  if (!leaf || rv)
    api_problem(n, req, p->ops->route, 500, "Replay failed", sj_strerror(rv), NULL);
  else
    p->ops->accepted(n, req, p->mkey, first, count, leaf, size, p->t0);
  free(leaf);
  sj_buf_deinit(&v);
  return 1;
}

/* The Idempotency-Key and the meta row: validates the key, replays a committed request, claims
 * an in-flight slot. Returns 1 if the request was answered. */
static int handle_idem(sj_node_t *n, sj_req_t *req, const caller_t *c, post_t *p) {
  size_t len = 0;
  const char *key = sj_req_header(req, "idempotency-key", &len);
  int printable = len > 0 && len <= IDEM_MAX;
  for (size_t i = 0; key && printable && i < len; i++)
    printable = key[i] >= 0x20 && key[i] < 0x7f;
  if (key && !printable) {
    api_bad_param(n, req, p->ops->route, "Idempotency-Key", "IDEMPOTENCY_KEY_INVALID",
                  "Idempotency-Key must be 1-255 printable ASCII characters");
    return 1;
  }
  if (!p->ops->meta_key(c, key, key ? len : 0, p->mkey))
    p->mkey[0] = 0;
  p->w.idem_key = p->mkey[0] ? p->mkey : NULL;
  if (!key || !p->mkey[0])
    return 0;
  if (idem_replay(n, req, p))
    return 1;
  p->slot = idem_claim(n, p->mkey);
  if (!p->slot) {
    api_problem(n, req, p->ops->route, 409, "Conflict",
                "a request with this Idempotency-Key is still being processed", NULL);
    return 1;
  }
  return 0;
}

void api_submit_records(sj_node_t *n, sj_req_t *req, const caller_t *c, const api_submit_ops_t *ops,
                        uint64_t t0) {
  post_t *p = calloc(1, sizeof *p);
  const char *ct = sj_req_header(req, "content-type", NULL);
  if (p && ct && !(p->ctype = strdup(ct))) {
    free(p);
    p = NULL;
  }
  if (!p) {
    api_problem(n, req, ops->route, 503, "Service Unavailable", "out of memory", NULL);
    return;
  }
  p->n = n;
  p->req = req;
  p->ops = ops;
  p->t0 = t0;
  p->body = sj_req_body(req, &p->blen);
  sj_rec_errors_init(&p->errs, 0);
  if (handle_idem(n, req, c, p)) {
    post_free(p);
    return;
  }
  p->w.prepare = post_prepare;
  p->w.done = post_done;
  p->w.ud = p;
  sj_req_ref(req);
  if (sj_writer_submit(n->writer, &p->w)) {
    sj_req_unref(req);
    api_problem(n, req, ops->route, 503, "Service Unavailable", "the node is stopping", NULL);
    post_free(p);
    return;
  }
  n->posts_inflight++;
}

/* ---- POST /v1/records -------------------------------------------------------------------------- */

static int records_parse(const uint8_t *body, size_t len, const char *ctype,
                         const uint8_t *hmac_key, sj_record_t **recs, size_t *nrecs,
                         sj_rec_errors_t *errs) {
  return sj_record_parse_request(body, len, ctype, hmac_key, MAX_RECORDS_PER_REQUEST, recs, nrecs,
                                 errs);
}

static void records_refused(sj_node_t *n, sj_req_t *req, int rv, sj_rec_errors_t *errs) {
  sj_buf_t ej = {0};
  int listed = sj_rec_errors_to_json(errs, &ej) == 0; /* else the problem without the list */
  int status = rv == SJ_EPROTO ? 415 : rv == SJ_ETOOBIG ? 413 : rv == -ENOMEM ? 503 : 400;
  char detail[96];
  snprintf(detail, sizeof detail, "%zu error(s); nothing was written", errs->total);
  api_problem(n, req, R_RECORDS_POST, status,
              status == 415 ? "Unsupported Media Type" : "Invalid records", detail,
              listed ? &ej : NULL);
  sj_buf_deinit(&ej);
}

static void records_failed(sj_node_t *n, sj_req_t *req, int rv, size_t nrecs) {
  if (rv == SJ_ENOSPACE) {
    api_problem(n, req, R_RECORDS_POST, 507, "Insufficient Storage",
                "the node's disk is full; nothing was written", NULL);
    return;
  }
  SJ_LOG_ERR("api", "%s stream %d: append of %zu records failed: %s (%s)", sj_req_peer(req),
             sj_req_stream_id(req), nrecs, sj_strerror(rv), sj_store_last_error());
  api_problem(n, req, R_RECORDS_POST, rv == SJ_ECLOSED ? 503 : 500, "Append failed",
              "nothing was written; retry later", NULL);
}

static void records_accepted(sj_node_t *n, sj_req_t *req, const char *mkey, uint64_t first,
                             size_t count, uint8_t (*leaf)[SJ_HASH_LEN], uint64_t tree_size,
                             uint64_t t0) {
  sj_buf_t b = {0};
  (void)mkey;
  sj_buf_append_str(&b, "{\"accepted\":[");
  for (size_t i = 0; i < count; i++) {
    sj_buf_printf(&b, "%s{\"region\":\"%s\",\"seq\":%llu,\"leaf_hash\":", i ? "," : "",
                  n->region_str, (unsigned long long)(first + i));
    json_b64(&b, leaf[i], SJ_HASH_LEN);
    sj_buf_append_u8(&b, '}');
  }
  sj_buf_printf(&b, "],\"tree_size\":%llu}", (unsigned long long)tree_size);
  api_reply(n, req, R_RECORDS_POST, 201, "application/json", &b, t0);
}

/* The meta key of (token, Idempotency-Key): "idem/" + hex SHA-256(token hash || key); no row
 * without a key. */
static int records_meta_key(const caller_t *c, const char *key, size_t len, char out[72]) {
  uint8_t buf[32 + IDEM_MAX], h[SJ_HASH_LEN];
  if (!key)
    return 0;
  memcpy(buf, c->tok->hash, 32);
  memcpy(buf + 32, key, len);
  sj_sha256(buf, 32 + len, h);
  memcpy(out, "idem/", 5);
  sj_hex_encode(h, sizeof h, out + 5);
  return 1;
}

static const api_submit_ops_t records_ops = {
    .route = R_RECORDS_POST,
    .parse = records_parse,
    .refused = records_refused,
    .failed = records_failed,
    .accepted = records_accepted,
    .meta_key = records_meta_key,
};

/* Appending needs role submit: 401 for the public, 403 for other roles. doing/verb name the
 * action ("appending records", "append records"). */
int api_require_submit(sj_node_t *n, sj_req_t *req, const caller_t *c, int route,
                       const char *doing, const char *verb) {
  char detail[160];
  if (c->role == SJ_ROLE_SUBMIT)
    return 0;
  if (c->role == SJ_ROLE_PUBLIC) {
    snprintf(detail, sizeof detail, "%s needs a token of role submit", doing);
    api_problem(n, req, route, 401, "Unauthorized", detail, NULL);
  } else {
    snprintf(detail, sizeof detail, "this token's role may not %s (role submit needed)", verb);
    api_problem(n, req, route, 403, "Forbidden", detail, NULL);
  }
  return -1;
}

static void post_records(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  caller_t c;
  if (api_caller(n, req, R_RECORDS_POST, &c) ||
      api_require_submit(n, req, &c, R_RECORDS_POST, "appending records", "append records"))
    return;
  api_submit_records(n, req, &c, &records_ops, api_now_us());
}

void api_register_write(sj_node_t *n) {
  sj_route_opts_t ro = {.max_body = n->cfg.max_body, .stream_body = 0};
  sj_server_route(n->server, "POST", "/v1/records", &ro, post_records, n);
}
