/* node/api_util.c — what every API handler shares: who the caller is, what it may see, problem
 * answers (RFC 7807), JSON string helpers, parameter parsing, metrics around each answer. */
#include "node/node_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

uint64_t api_now_us(void) {
  return uv_hrtime() / 1000u;
}

/* A peer region reading a withheld body for one of its own authorised callers ("bodies stay
 * home", docs/REPLICATION.md): the peer vouches for its caller; the read is logged here. */
static int on_behalf(sj_node_t *n, sj_req_t *req, caller_t *c) {
  const char *v = sj_req_header(req, "x-sanjiao-on-behalf-of", NULL);
  if (!v)
    return 0;
  if (!strcmp(v, "authority")) {
    c->role = SJ_ROLE_AUTHORITY;
  } else if (!strncmp(v, "subject ", 8)) {
    const char *id = v + 8;
    size_t idn = strlen(id);
    c->role = SJ_ROLE_SUBJECT;
    if (sj_record_person_key(n->hmac_key, id, idn, c->subject_key) == 0) {
      c->subject_key_type = SJ_KEY_PERSON;
      c->subject_key_len = SJ_HASH_LEN;
    } else {
      c->subject_key_type = SJ_KEY_USCC;
      c->subject_key_len = idn < sizeof c->subject_key ? idn : sizeof c->subject_key;
      memcpy(c->subject_key, id, c->subject_key_len);
    }
  } else {
    return 0;
  }
  SJ_LOG_INFO("audit", "peer region %s (%s) reads %s on behalf of its %s", c->tok->arg,
              c->tok->label, sj_req_path(req),
              c->role == SJ_ROLE_AUTHORITY ? "authority" : "subject");
  return 1;
}

/* Token bucket per token: token_rate requests per second, bursts of twice that. */
static int rate_ok(sj_node_t *n, sj_token_t *t) {
  double rate = (double)n->cfg.token_rate, burst = 2 * rate;
  if (rate <= 0)
    return 1;
  uint64_t now = api_now_us();
  if (t->bucket_us == 0)
    t->bucket = burst;
  else
    t->bucket += (double)(now - t->bucket_us) * rate / 1e6;
  if (t->bucket > burst)
    t->bucket = burst;
  t->bucket_us = now;
  if (t->bucket < 1)
    return 0;
  t->bucket -= 1;
  return 1;
}

/* Without a token: a peer region known by a verified client certificate (mutual TLS), or the
 * public. */
static int cert_caller(sj_node_t *n, sj_req_t *req, caller_t *c) {
  const char *cn = n->tls_server && n->cfg.tls_ca[0] ? sj_req_peer_cert_cn(req) : NULL;
  for (size_t i = 0; cn && i < n->cfg.npeers; i++)
    if (!strcmp(n->mtls_peers[i].arg, cn)) {
      c->role = SJ_ROLE_PEER;
      c->tok = &n->mtls_peers[i];
      on_behalf(n, req, c);
      break;
    }
  return 0;
}

int api_caller(sj_node_t *n, sj_req_t *req, int route, caller_t *c) {
  size_t len = 0;
  const char *auth = sj_req_header(req, "authorization", &len);
  memset(c, 0, sizeof *c);
  c->purpose = sj_req_header(req, "x-purpose", NULL);
  if (!auth)
    return cert_caller(n, req, c);
  if (len < 8 || strncasecmp(auth, "Bearer ", 7)) {
    api_problem(n, req, route, 401, "Unauthorized", "Authorization must be 'Bearer <token>'", NULL);
    return -1;
  }
  sj_token_t *t = sj_tokens_find(n->tokens, auth + 7, len - 7);
  if (!t) {
    api_problem(n, req, route, 401, "Unauthorized", "unknown token", NULL);
    return -1;
  }
  if (!rate_ok(n, t)) {
    SJ_LOG_WARN("api", "%s stream %d: token '%s' over its rate limit", sj_req_peer(req),
                sj_req_stream_id(req), t->label);
    sj_header_t h[2] = {{"content-type", "application/problem+json"}, {"retry-after", "1"}};
    static const char body[] = "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\","
                               "\"status\":429,\"detail\":\"this token is over its request rate\"}";
    sj_req_respond(req, 429, h, 2, body, sizeof body - 1);
    sj_metrics_request(n->metrics, n->route_ids[route], 429, 0);
    return -1;
  }
  c->role = t->role;
  c->tok = t;
  if (t->role == SJ_ROLE_PEER && on_behalf(n, req, c))
    return 0;
  if (t->role == SJ_ROLE_SUBJECT) {
    size_t idn = strlen(t->arg);
    if (sj_record_person_key(n->hmac_key, t->arg, idn, c->subject_key) == 0) {
      c->subject_key_type = SJ_KEY_PERSON;
      c->subject_key_len = SJ_HASH_LEN;
    } else {
      c->subject_key_type = SJ_KEY_USCC;
      c->subject_key_len = idn < sizeof c->subject_key ? idn : sizeof c->subject_key;
      memcpy(c->subject_key, t->arg, c->subject_key_len);
    }
  }
  return 0;
}

int json_str(sj_buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  int rv = sj_buf_reserve(b, n + 2);
  if (rv)
    return rv;
  sj_buf_append_u8(b, '"');
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch != '"' && ch != '\\')
      continue;
    rv |= sj_buf_append(b, s + run, i - run);
    char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
    if (ch == '"' || ch == '\\')
      rv |= sj_buf_append(b, (char[]){'\\', (char)ch}, 2);
    else
      rv |= sj_buf_append(b, e, 6);
    run = i + 1;
  }
  rv |= sj_buf_append(b, s + run, n - run);
  rv |= sj_buf_append_u8(b, '"');
  return rv ? -ENOMEM : 0;
}

int json_b64(sj_buf_t *b, const uint8_t *p, size_t n) {
  size_t need = sj_base64_len(n);
  int rv = sj_buf_reserve(b, need + 2);
  if (rv)
    return rv;
  b->p[b->n++] = '"';
  b->n += sj_base64_encode(p, n, (char *)b->p + b->n);
  b->p[b->n++] = '"';
  b->p[b->n] = 0;
  return 0;
}

void api_reply(sj_node_t *n, sj_req_t *req, int route, int status, const char *ctype, sj_buf_t *b,
               uint64_t t0) {
  sj_header_t h[1] = {{"content-type", ctype}};
  size_t len = b->n;
  void *p = b->p;
  sj_buf_init(b);
  sj_req_respond_owned(req, status, h, 1, p, len, free);
  sj_metrics_request(n->metrics, n->route_ids[route], status, t0 ? api_now_us() - t0 : 0);
}

void api_problem(sj_node_t *n, sj_req_t *req, int route, int status, const char *title,
                 const char *detail, const sj_buf_t *errors_json) {
  sj_buf_t b = {0};
  sj_buf_printf(&b, "{\"type\":\"about:blank\",\"title\":");
  json_str(&b, title, strlen(title));
  sj_buf_printf(&b, ",\"status\":%d,\"detail\":", status);
  json_str(&b, detail, strlen(detail));
  if (errors_json) {
    sj_buf_append_str(&b, ",\"errors\":");
    sj_buf_append(&b, errors_json->p, errors_json->n);
  }
  sj_buf_append_str(&b, "}");
  api_reply(n, req, route, status, "application/problem+json", &b, 0);
}

void api_bad_param(sj_node_t *n, sj_req_t *req, int route, const char *name, const char *code,
                   const char *message) {
  sj_buf_t e = {0};
  char field[80];
  snprintf(field, sizeof field, "/%s", name);
  sj_buf_append_str(&e, "[{\"index\":0,\"field\":");
  json_str(&e, field, strlen(field));
  sj_buf_append_str(&e, ",\"code\":");
  json_str(&e, code, strlen(code));
  sj_buf_append_str(&e, ",\"message\":");
  json_str(&e, message, strlen(message));
  sj_buf_append_str(&e, "}]");
  api_problem(n, req, route, 400, "Bad Request", message, &e);
  sj_buf_deinit(&e);
}

int parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s))
    return SJ_EINVAL;
  errno = 0;
  unsigned long long v = strtoull(s, NULL, 10);
  if (errno)
    return SJ_EINVAL;
  *out = v;
  return 0;
}

int api_region_param(sj_node_t *n, sj_req_t *req, int route, uint32_t *region) {
  const char *s = sj_req_param(req, "region");
  if (!s || sj_region_parse(s, strlen(s), region)) {
    api_bad_param(n, req, route, "region", "REGION_INVALID",
                  "region must be a 6-digit GB/T 2260 code such as \"310000\"");
    return -1;
  }
  return 0;
}

/* Appends v in decimal (no printf: this runs for every record of every answer). */
static void put_u64(sj_buf_t *b, uint64_t v) {
  char d[24];
  size_t i = sizeof d;
  do {
    d[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  sj_buf_append(b, d + i, sizeof d - i);
}

static void put_region(sj_buf_t *b, uint32_t region) {
  char d[6];
  for (int i = 5; i >= 0; i--, region /= 10)
    d[i] = (char)('0' + region % 10);
  sj_buf_append(b, d, 6);
}

int api_entry_json_read(sj_node_t *n, const caller_t *c, uint32_t region, uint64_t seq,
                        int with_leaf, const sj_store_entry_t *e, sj_buf_t *out) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  static const char *const disc[] = {"public", "authorities", "subject"};
  sj_entry_header_t h;
  uint8_t leaf[SJ_HASH_LEN];
  if (!e->found)
    return SJ_ENOTFOUND;
  int rv = sj_entry_decode(e->header, e->hn, &h, keys, SJ_ENTRY_MAX_KEYS);
  if (rv)
    return rv;
  if (e->leaf) /* kept at append (storage facts row) */
    memcpy(leaf, e->leaf, SJ_HASH_LEN);
  else
    sj_merkle_leaf_hash(e->header, e->hn, leaf);
  sj_buf_reserve(out, 256 + (with_leaf ? 2 * (e->hn + e->bn) : e->bn));
  sj_buf_append_str(out, "{\"region\":\"");
  put_region(out, region);
  sj_buf_append_str(out, "\",\"seq\":");
  put_u64(out, seq);
  sj_buf_append_str(out, ",\"leaf_hash\":");
  json_b64(out, leaf, sizeof leaf);
  sj_buf_append_str(out, ",\"time_ms\":");
  put_u64(out, h.time_ms);
  sj_buf_append_str(out, h.kind == SJ_KIND_CREDIT ? ",\"kind\":\"credit\",\"type\":"
                                                  : ",\"kind\":\"trace\",\"type\":");
  json_str(out, h.type, h.type_len);
  sj_buf_append_str(out, ",\"disclosure\":\"");
  sj_buf_append_str(out, disc[h.disclosure]);
  sj_buf_append_u8(out, '"');
  if (with_leaf) { /* the raw body only where the caller may see it as it is */
    int visible = e->has_body && api_body_visible(n, c, &h, e->body, e->bn);
    sj_buf_append_str(out, ",\"leaf\":");
    json_b64(out, e->header, e->hn);
    if (visible) {
      sj_buf_append_str(out, ",\"body\":");
      json_b64(out, e->body, e->bn);
    }
  }
  if (!e->has_body || api_disclose_record(n, c, &h, e->body, e->bn, out)) {
    sj_buf_append_str(out, ",\"withheld\":\"");
    sj_buf_append_str(out, e->has_body ? "disclosure" : "not replicated");
    sj_buf_append_u8(out, '"');
  }
  return sj_buf_append_str(out, "}");
}

int api_entry_json(sj_node_t *n, const caller_t *c, uint32_t region, uint64_t seq, int with_leaf,
                   const sj_bytes_t *fetched, sj_buf_t *out, sj_buf_t *hb, sj_buf_t *bb) {
  int has_body = 0;
  int rv = sj_store_get_entry(n->store, region, seq, hb, bb, &has_body);
  if (rv)
    return rv;
  if (fetched && !has_body) { /* a body fetched from the origin, already verified */
    sj_buf_reset(bb);
    if ((rv = sj_buf_append(bb, fetched->p, fetched->n)) != 0)
      return rv;
    has_body = 1;
  }
  sj_store_entry_t e = {
      .found = 1, .header = hb->p, .hn = hb->n, .body = bb->p, .bn = bb->n, .has_body = has_body};
  return api_entry_json_read(n, c, region, seq, with_leaf, &e, out);
}

void api_cache_invalidate_header(sj_node_t *n, const sj_entry_header_t *h) {
  uint8_t key[1 + SJ_ENTRY_MAX_KEY_LEN];
  for (uint16_t i = 0; i < h->nkeys; i++) {
    size_t len = sj_store_index_key(h->keys[i].type, h->keys[i].p, h->keys[i].len, key);
    sj_cache_invalidate(n->cache, key, len);
  }
}

int api_from_cache(sj_node_t *n, sj_req_t *req, int route, uint64_t t0) {
  size_t len = 0;
  const char *key = sj_req_header(req, ":path", &len);
  sj_cache_hit_t hit;
  if (!key || sj_req_header(req, "authorization", NULL) ||
      !sj_cache_get(n->cache, key, len, uv_now(n->loop), &hit))
    return 0;
  sj_header_t h[1] = {{"content-type", hit.ctype}};
  sj_req_respond(req, hit.status, h, 1, hit.body, hit.len);
  sj_metrics_request(n->metrics, n->route_ids[route], hit.status, api_now_us() - t0);
  return 1;
}

void api_to_cache(sj_node_t *n, sj_req_t *req, const caller_t *c, const uint64_t *dep_hashes,
                  size_t ndeps, uint64_t changes_ms, const sj_buf_t *out) {
  size_t len = 0;
  const char *key = sj_req_header(req, ":path", &len);
  uint64_t now = uv_now(n->loop);
  if (key && c->role == SJ_ROLE_PUBLIC)
    sj_cache_put_deps(n->cache, key, len, dep_hashes, ndeps, 200, "application/json", out->p,
                      out->n, now, api_cache_expiry(n, changes_ms, now));
}
