/* node/api_write.c — POST /v1/records: validate everything, then hand the whole request to the
 * writer (group commit) and answer 201 once its batch is synced. Idempotency-Key makes a retry
 * return the first answer: the key's row is written in the same batch as the records, so it
 * survives crashes exactly when they do. */
#include "node/node_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define MAX_RECORDS_PER_REQUEST 100000
#define IDEM_MAX 255

typedef struct {
  sj_node_t *n;
  sj_req_t *req;
  uint64_t t0;
  sj_record_t *recs;
  size_t nrecs;
  sj_write_item_t *items;
  uint8_t (*leaf)[SJ_HASH_LEN];
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

/* ---- answers ----------------------------------------------------------------------------------- */

static void accepted_json(sj_node_t *n, uint64_t first, size_t count, uint8_t (*leaf)[SJ_HASH_LEN],
                          uint64_t tree_size, sj_buf_t *b) {
  sj_buf_append_str(b, "{\"accepted\":[");
  for (size_t i = 0; i < count; i++) {
    sj_buf_printf(b, "%s{\"region\":\"%s\",\"seq\":%llu,\"leaf_hash\":", i ? "," : "",
                  n->region_str, (unsigned long long)(first + i));
    json_b64(b, leaf[i], SJ_HASH_LEN);
    sj_buf_append_u8(b, '}');
  }
  sj_buf_printf(b, "],\"tree_size\":%llu}", (unsigned long long)tree_size);
}

static void post_free(post_t *p) {
  if (p->slot)
    idem_release(p->n, p->slot);
  sj_records_free(p->recs, p->nrecs);
  free(p->items);
  free(p->leaf);
  free(p);
}

static void on_written(sj_write_req_t *w) {
  post_t *p = w->ud;
  sj_node_t *n = p->n;
  n->posts_inflight--;
  if (w->rv == SJ_ENOSPACE) {
    api_problem(n, p->req, R_RECORDS_POST, 507, "Insufficient Storage",
                "the node's disk is full; nothing was written", NULL);
  } else if (w->rv) {
    SJ_LOG_ERR("api", "%s stream %d: append of %zu records failed: %s (%s)", sj_req_peer(p->req),
               sj_req_stream_id(p->req), p->nrecs, sj_strerror(w->rv), sj_store_last_error());
    api_problem(n, p->req, R_RECORDS_POST, w->rv == SJ_ECLOSED ? 503 : 500, "Append failed",
                "nothing was written; retry later", NULL);
  } else {
    sj_buf_t b = {0};
    accepted_json(n, w->first_seq, p->nrecs, p->leaf, w->tree_size, &b);
    for (size_t i = 0; i < p->nrecs; i++) {
      sj_entry_header_t h = {.keys = p->recs[i].keys, .nkeys = p->recs[i].nkeys};
      api_cache_invalidate_header(n, &h);
    }
    api_reply(n, p->req, R_RECORDS_POST, 201, "application/json", &b, p->t0);
    api_follow_notify(n, n->cfg.region);
  }
  sj_req_unref(p->req);
  post_free(p);
}

/* ---- idempotency -------------------------------------------------------------------------------- */

/* The meta key of (token, Idempotency-Key): "idem/" + hex SHA-256(token hash || key). */
static void idem_meta_key(const caller_t *c, const char *key, size_t len, char out[72]) {
  uint8_t buf[32 + IDEM_MAX], h[SJ_HASH_LEN];
  memcpy(buf, c->tok->hash, 32);
  memcpy(buf + 32, key, len);
  sj_sha256(buf, 32 + len, h);
  memcpy(out, "idem/", 5);
  sj_hex_encode(h, sizeof h, out + 5);
}

/* A request with this key was committed before: answer what it got. Returns 1 if answered. */
static int idem_replay(sj_node_t *n, sj_req_t *req, const char *mkey, const uint8_t body_hash[32],
                       uint64_t t0) {
  sj_buf_t v = {0}, b = {0};
  int rv = sj_store_meta_get(n->store, mkey, &v);
  if (rv || v.n != SJ_HASH_LEN + 20) {
    sj_buf_deinit(&v);
    return 0;
  }
  if (memcmp(v.p, body_hash, SJ_HASH_LEN)) {
    sj_buf_deinit(&v);
    api_problem(n, req, R_RECORDS_POST, 422, "Idempotency-Key reused",
                "this Idempotency-Key was used for a different request body", NULL);
    return 1;
  }
  uint64_t first = sj_get_be64(v.p + 32), size = sj_get_be64(v.p + 44);
  uint32_t count = sj_get_be32(v.p + 40);
  uint8_t(*leaf)[SJ_HASH_LEN] = calloc(count ? count : 1, SJ_HASH_LEN);
  for (uint32_t i = 0; leaf && rv == 0 && i < count; i++)
    rv = sj_store_leaf_hash(n->store, (uint32_t)n->cfg.region, first + i, leaf[i]);
  if (!leaf || rv) {
    api_problem(n, req, R_RECORDS_POST, 500, "Replay failed", sj_strerror(rv), NULL);
  } else {
    accepted_json(n, first, count, leaf, size, &b);
    api_reply(n, req, R_RECORDS_POST, 201, "application/json", &b, t0);
  }
  free(leaf);
  sj_buf_deinit(&v);
  return 1;
}

/* ---- the handler -------------------------------------------------------------------------------- */

static int check_role(sj_node_t *n, sj_req_t *req, const caller_t *c) {
  if (c->role == SJ_ROLE_SUBMIT)
    return 0;
  if (c->role == SJ_ROLE_PUBLIC)
    api_problem(n, req, R_RECORDS_POST, 401, "Unauthorized",
                "appending records needs a token of role submit", NULL);
  else
    api_problem(n, req, R_RECORDS_POST, 403, "Forbidden",
                "this token's role may not append records (role submit needed)", NULL);
  return -1;
}

static int parse_records(sj_node_t *n, sj_req_t *req, post_t *p) {
  size_t len = 0;
  const uint8_t *body = sj_req_body(req, &len);
  sj_rec_errors_t errs;
  sj_rec_errors_init(&errs, 0);
  int rv = sj_record_parse_request(body, len, sj_req_header(req, "content-type", NULL), n->hmac_key,
                                   MAX_RECORDS_PER_REQUEST, &p->recs, &p->nrecs, &errs);
  if (rv) {
    sj_buf_t ej = {0};
    int listed = sj_rec_errors_to_json(&errs, &ej) == 0; /* else the problem without the list */
    int status = rv == SJ_EPROTO ? 415 : rv == SJ_ETOOBIG ? 413 : rv == -ENOMEM ? 503 : 400;
    char detail[96];
    snprintf(detail, sizeof detail, "%zu error(s); nothing was written", errs.total);
    api_problem(n, req, R_RECORDS_POST, status,
                status == 415 ? "Unsupported Media Type" : "Invalid records", detail,
                listed ? &ej : NULL);
    sj_buf_deinit(&ej);
  }
  sj_rec_errors_deinit(&errs);
  return rv;
}

static int build_items(post_t *p) {
  p->items = calloc(p->nrecs, sizeof *p->items);
  p->leaf = calloc(p->nrecs, SJ_HASH_LEN);
  if (!p->items || !p->leaf)
    return -ENOMEM;
  for (size_t i = 0; i < p->nrecs; i++) {
    const sj_record_t *r = &p->recs[i];
    p->items[i] = (sj_write_item_t){r->kind, r->disclosure, r->type, r->type_len, r->keys,
                                    r->nkeys, r->body, r->body_len, r->body_hash};
  }
  return 0;
}

/* Validates the Idempotency-Key, replays a committed one, claims an in-flight slot. Returns 1 if
 * the request was answered. */
static int handle_idem(sj_node_t *n, sj_req_t *req, const caller_t *c, post_t *p) {
  size_t len = 0;
  const char *key = sj_req_header(req, "idempotency-key", &len);
  if (!key)
    return 0;
  int printable = len > 0 && len <= IDEM_MAX;
  for (size_t i = 0; printable && i < len; i++)
    printable = key[i] >= 0x20 && key[i] < 0x7f;
  if (!printable) {
    api_bad_param(n, req, R_RECORDS_POST, "Idempotency-Key", "IDEMPOTENCY_KEY_INVALID",
                  "Idempotency-Key must be 1-255 printable ASCII characters");
    return 1;
  }
  char mkey[72];
  size_t blen = 0;
  const uint8_t *body = sj_req_body(req, &blen);
  sj_sha256(body, blen, p->w.idem_body_hash);
  idem_meta_key(c, key, len, mkey);
  if (idem_replay(n, req, mkey, p->w.idem_body_hash, p->t0))
    return 1;
  p->slot = idem_claim(n, mkey);
  if (!p->slot) {
    api_problem(n, req, R_RECORDS_POST, 409, "Conflict",
                "a request with this Idempotency-Key is still being processed", NULL);
    return 1;
  }
  p->w.idem_key = p->slot->key;
  return 0;
}

static void post_records(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  caller_t c;
  if (api_caller(n, req, R_RECORDS_POST, &c) || check_role(n, req, &c))
    return;
  post_t *p = calloc(1, sizeof *p);
  if (!p) {
    api_problem(n, req, R_RECORDS_POST, 503, "Service Unavailable", "out of memory", NULL);
    return;
  }
  p->n = n;
  p->req = req;
  p->t0 = api_now_us();
  if (handle_idem(n, req, &c, p) || parse_records(n, req, p)) {
    post_free(p);
    return;
  }
  if (build_items(p)) {
    api_problem(n, req, R_RECORDS_POST, 503, "Service Unavailable", "out of memory", NULL);
    post_free(p);
    return;
  }
  p->w.items = p->items;
  p->w.nitems = p->nrecs;
  p->w.leaf_hashes = p->leaf;
  p->w.done = on_written;
  p->w.ud = p;
  sj_req_ref(req);
  if (sj_writer_submit(n->writer, &p->w)) {
    sj_req_unref(req);
    api_problem(n, req, R_RECORDS_POST, 503, "Service Unavailable", "the node is stopping", NULL);
    post_free(p);
    return;
  }
  n->posts_inflight++;
}

void api_register_write(sj_node_t *n) {
  sj_route_opts_t ro = {.max_body = n->cfg.max_body, .stream_body = 0};
  sj_server_route(n->server, "POST", "/v1/records", &ro, post_records, n);
}
