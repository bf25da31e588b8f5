/* net/req.c — the server's request object: allocation and recycling, accessors, and replies
 * (from memory or streamed), fed to nghttp2 through one data source.
 *
 * Lifetime: the server holds one reference while the stream is open (dropped in
 * on_stream_close, or when the connection goes); handlers add their own. Once detached
 * (conn == NULL) every reply returns SJ_ECLOSED, but accessors keep working until the last
 * unref. Requests are recycled through a per-server free list with their buffers, so a
 * steady load allocates nothing here. */
#include "net/net_int.h"

#include <stdlib.h>
#include <string.h>

#define FREE_MAX 1024        /* requests kept for reuse per server */
#define KEEP_BUF (64 * 1024) /* buffers larger than this are not kept */

static void buf_trim(sj_buf_t *b) {
  if (b->cap > KEEP_BUF)
    sj_buf_deinit(b);
  else
    sj_buf_reset(b);
}

static void req_destroy(sj_req_t *r) {
  sj_buf_deinit(&r->arena);
  sj_buf_deinit(&r->body);
  sj_buf_deinit(&r->outq);
  free(r->hdrs.v);
  free(r->params.v);
  free(r->query.v);
  free(r);
}

/* Releases an owned reply body (sent, or the stream is gone). */
static void release_out(sj_req_t *r) {
  if (r->out_free && r->out_owned)
    r->out_free(r->out_owned);
  r->out_free = NULL;
  r->out_owned = NULL;
  r->out_p = NULL;
}

void sj_req_free_list(sj_req_t *head) {
  while (head) {
    sj_req_t *next = head->next;
    req_destroy(head);
    head = next;
  }
}

static void req_recycle(sj_req_t *r) {
  sj_server_t *s = r->srv;
  release_out(r);
  if (!s || s->nfree >= FREE_MAX) {
    req_destroy(r);
    return;
  }
  buf_trim(&r->arena);
  buf_trim(&r->body);
  buf_trim(&r->outq);
  r->next = s->free_reqs;
  s->free_reqs = r;
  s->nfree++;
}

sj_req_t *sj_req_alloc(sj_server_t *s, srv_conn_t *c, int32_t stream_id) {
  sj_req_t *r = s->free_reqs;
  if (r) {
    s->free_reqs = r->next;
    s->nfree--;
  } else if (!(r = calloc(1, sizeof *r))) {
    return NULL;
  }
  /* Keep the buffers and arrays; clear everything else. */
  sj_buf_t arena = r->arena, body = r->body, outq = r->outq;
  sj_kvs_t hdrs = r->hdrs, params = r->params, query = r->query;
  memset(r, 0, sizeof *r);
  r->arena = arena;
  r->body = body;
  r->outq = outq;
  r->hdrs = hdrs;
  r->params = params;
  r->query = query;
  r->hdrs.n = r->params.n = r->query.n = 0;
  r->refs = 1;
  r->srv = s;
  r->conn = c;
  r->stream_id = stream_id;
  r->t_start = uv_now(s->loop);
  memcpy(r->peer, c->h2.tr->peer, sizeof r->peer);
  r->next = c->reqs;
  if (c->reqs)
    c->reqs->prev = r;
  c->reqs = r;
  s->st.streams_open++;
  return r;
}

void sj_req_ref(sj_req_t *r) {
  r->refs++;
}

void sj_req_unref(sj_req_t *r) {
  if (--r->refs > 0)
    return;
  req_recycle(r);
}

void sj_req_detach(sj_req_t *r, int err) {
  srv_conn_t *c = r->conn;
  if (!c)
    return;
  if (r->prev)
    r->prev->next = r->next;
  else
    c->reqs = r->next;
  if (r->next)
    r->next->prev = r->prev;
  r->next = r->prev = NULL;
  r->conn = NULL;
  c->srv->st.streams_open--;
  release_out(r);
  if (r->close_cb) {
    sj_req_close_cb cb = r->close_cb;
    r->close_cb = NULL;
    cb(r, err, r->close_arg); /* the server's reference keeps r alive through this */
  }
  if (r->refs > 1)
    r->srv = NULL; /* a handler holds it; it may outlive the server: free, don't recycle */
  sj_req_unref(r);
}

long sj_req_store(sj_req_t *r, const void *p, size_t n) {
  if (sj_buf_reserve(&r->arena, n + 1) < 0 || r->arena.n + n + 1 > UINT32_MAX)
    return -1;
  size_t off = r->arena.n;
  if (n)
    memcpy(r->arena.p + off, p, n);
  r->arena.p[off + n] = 0;
  r->arena.n += n + 1;
  return (long)off;
}

int sj_kvs_push(sj_kvs_t *k, sj_kv_t kv) {
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 16;
    sj_kv_t *v = realloc(k->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    k->v = v;
    k->cap = cap;
  }
  k->v[k->n++] = kv;
  return 0;
}

/* ---- Accessors ------------------------------------------------------------------------------- */

#define ARENA_STR(r, off) ((const char *)(r)->arena.p + (off))

const char *sj_req_method(const sj_req_t *r) {
  return r->has_method ? ARENA_STR(r, r->method_off) : "";
}

const char *sj_req_path(const sj_req_t *r) {
  return r->has_path ? ARENA_STR(r, r->path_off) : "";
}

static const sj_kv_t *kvs_find(const sj_req_t *r, const sj_kvs_t *k, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < k->n; i++)
    if (k->v[i].name_len == n && memcmp(ARENA_STR(r, k->v[i].name_off), name, n) == 0)
      return &k->v[i];
  return NULL;
}

const char *sj_req_param(const sj_req_t *r, const char *name) {
  const sj_kv_t *kv = kvs_find(r, &r->params, name);
  return kv ? ARENA_STR(r, kv->value_off) : NULL;
}

const char *sj_req_query(const sj_req_t *r, const char *name) {
  const sj_kv_t *kv = kvs_find(r, &r->query, name);
  return kv ? ARENA_STR(r, kv->value_off) : NULL;
}

const char *sj_req_header(const sj_req_t *r, const char *lcname, size_t *len) {
  const sj_kv_t *kv = kvs_find(r, &r->hdrs, lcname);
  if (!kv)
    return NULL;
  if (len)
    *len = kv->value_len;
  return ARENA_STR(r, kv->value_off);
}

const uint8_t *sj_req_body(const sj_req_t *r, size_t *len) {
  *len = r->body.n;
  return r->body.p ? r->body.p : (const uint8_t *)"";
}

const char *sj_req_peer(const sj_req_t *r) {
  return r->peer;
}

int32_t sj_req_stream_id(const sj_req_t *r) {
  return r->stream_id;
}

void sj_req_set_data(sj_req_t *r, void *data) {
  r->data = data;
}

void *sj_req_data(const sj_req_t *r) {
  return r->data;
}

void sj_req_set_body_cb(sj_req_t *r, sj_req_body_cb cb, void *arg) {
  r->body_cb = cb;
  r->body_arg = arg;
}

void sj_req_set_on_close(sj_req_t *r, sj_req_close_cb cb, void *arg) {
  r->close_cb = r->conn ? cb : NULL;
  r->close_arg = arg;
}

void sj_req_set_on_drain(sj_req_t *r, sj_req_drain_cb cb, void *arg) {
  r->drain_cb = cb;
  r->drain_arg = arg;
}

/* ---- Query and parameters -------------------------------------------------------------------- */

/* Decodes one "name[=value]" piece of raw (already in the arena: reserved beforehand, so the
 * arena does not move while we write). */
static int query_piece(sj_req_t *r, size_t off, size_t n) {
  const char *p = ARENA_STR(r, off);
  const char *eq = memchr(p, '=', n);
  size_t kn = eq ? (size_t)(eq - p) : n;
  const char *v = eq ? eq + 1 : p + n;
  size_t vn = eq ? n - kn - 1 : 0;
  sj_kv_t kv;
  char *dst = (char *)r->arena.p + r->arena.n;
  long k = sj_pct_decode(p, kn, 1, dst);
  if (k < 0)
    return SJ_EFORMAT;
  dst[k] = 0;
  kv.name_off = (uint32_t)r->arena.n;
  kv.name_len = (uint32_t)k;
  r->arena.n += (size_t)k + 1;
  dst = (char *)r->arena.p + r->arena.n;
  long l = sj_pct_decode(v, vn, 1, dst);
  if (l < 0)
    return SJ_EFORMAT;
  dst[l] = 0;
  kv.value_off = (uint32_t)r->arena.n;
  kv.value_len = (uint32_t)l;
  r->arena.n += (size_t)l + 1;
  return sj_kvs_push(&r->query, kv);
}

int sj_req_parse_query(sj_req_t *r) {
  if (!r->query_len)
    return 0;
  /* Every piece decodes to at most its own length plus two NULs. */
  if (sj_buf_reserve(&r->arena, 3 * (size_t)r->query_len + 2) < 0)
    return -ENOMEM;
  size_t pos = r->query_off, end = r->query_off + r->query_len;
  while (pos < end) {
    const char *p = ARENA_STR(r, pos);
    const char *amp = memchr(p, '&', end - pos);
    size_t n = amp ? (size_t)(amp - p) : end - pos;
    if (n) {
      int rv = query_piece(r, pos, n);
      if (rv < 0)
        return rv;
    }
    pos += n + 1;
  }
  return 0;
}

int sj_req_set_params(sj_req_t *r, const sj_route_info_t *ri, const sj_span_t *spans) {
  size_t need = 0;
  for (size_t i = 0; i < ri->nparams; i++)
    need += spans[i].len + strlen(ri->param_names[i]) + 2;
  if (sj_buf_reserve(&r->arena, need) < 0)
    return -ENOMEM;
  for (size_t i = 0; i < ri->nparams; i++) {
    sj_kv_t kv;
    size_t nl = strlen(ri->param_names[i]);
    kv.name_off = (uint32_t)sj_req_store(r, ri->param_names[i], nl);
    kv.name_len = (uint32_t)nl;
    char *dst = (char *)r->arena.p + r->arena.n;
    long l = sj_pct_decode(ARENA_STR(r, r->path_off + spans[i].off), spans[i].len, 0, dst);
    if (l < 0)
      return SJ_EFORMAT;
    dst[l] = 0;
    kv.value_off = (uint32_t)r->arena.n;
    kv.value_len = (uint32_t)l;
    r->arena.n += (size_t)l + 1;
    if (sj_kvs_push(&r->params, kv) < 0)
      return -ENOMEM;
  }
  return 0;
}

/* ---- Replies --------------------------------------------------------------------------------- */

ssize_t sj_req_read_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud) {
  (void)ng;
  (void)sid;
  (void)ud;
  sj_req_t *r = src->ptr;
  size_t n, left;
  if (r->out_p) {
    n = r->out_n - r->out_off < len ? r->out_n - r->out_off : len;
    memcpy(buf, r->out_p + r->out_off, n);
    r->out_off += n;
    left = r->out_n - r->out_off;
  } else {
    n = r->outq.n - r->outq_off < len ? r->outq.n - r->outq_off : len;
    if (n)
      memcpy(buf, r->outq.p + r->outq_off, n);
    r->outq_off += n;
    left = r->outq.n - r->outq_off;
    if (!left)
      r->outq.n = r->outq_off = 0;
  }
  if (left)
    return (ssize_t)n;
  if (r->flags & REQ_EOF) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
  }
  if (n && r->drain_cb && r->conn) {
    r->flags |= REQ_DRAIN;
    r->conn->drain_pending = 1;
  }
  if (!n) {
    r->flags |= REQ_DEFERRED;
    return NGHTTP2_ERR_DEFERRED;
  }
  return (ssize_t)n;
}

static int can_answer(const sj_req_t *r) {
  if (!r->conn || r->conn->closing || (r->flags & REQ_TIMED_OUT))
    return SJ_ECLOSED;
  if (r->flags & REQ_ANSWERED)
    return SJ_EINVAL;
  return 0;
}

/* Decimal digits of v into out (NUL-terminated), returning their count: content-length on every
 * reply, without printf's machinery. */
static size_t fmt_size(char out[24], size_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  out[n] = 0;
  return n;
}

#define NV(n, v, vl, fl) ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), (fl)})

/* Submits status + headers (+ content-length when with_len) and, when has_data, the data
 * source. extra (may be NULL) is one more header. */
static int submit(sj_req_t *r, int status, const sj_header_t *hdrs, size_t nhdrs,
                  const sj_header_t *extra, int with_len, size_t len, int has_data) {
  if (!sj_h2_status_str(status, r->status))
    return SJ_EINVAL;
  nghttp2_nv stack[24], *nv = stack;
  size_t cap = nhdrs + 3;
  if (cap > sizeof stack / sizeof stack[0] && !(nv = malloc(cap * sizeof *nv)))
    return -ENOMEM;
  size_t k = 0;
  /* status and content-length live in r until the stream closes: no copy needed. */
  const uint8_t nocopy = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
  nv[k++] = NV(":status", r->status, 3, nocopy);
  for (size_t i = 0; i < nhdrs; i++)
    nv[k++] = (nghttp2_nv){(uint8_t *)hdrs[i].name, (uint8_t *)hdrs[i].value, strlen(hdrs[i].name),
                           strlen(hdrs[i].value), NGHTTP2_NV_FLAG_NONE};
  if (extra)
    nv[k++] = (nghttp2_nv){(uint8_t *)extra->name, (uint8_t *)extra->value, strlen(extra->name),
                           strlen(extra->value), NGHTTP2_NV_FLAG_NONE};
  if (with_len)
    nv[k++] = NV("content-length", r->clen, fmt_size(r->clen, len), nocopy);
  nghttp2_data_provider prd = {.source.ptr = r, .read_callback = sj_req_read_cb};
  if (has_data && !strcmp(sj_req_method(r), "HEAD")) /* RFC 9110 §9.3.2: headers only */
    has_data = 0;
  int rv = nghttp2_submit_response(r->conn->h2.ng, r->stream_id, nv, k, has_data ? &prd : NULL);
  if (nv != stack)
    free(nv);
  if (rv != 0)
    return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : SJ_EINVAL;
  r->flags |= REQ_ANSWERED;
  sj_h2_want_send(&r->conn->h2);
  return 0;
}

int sj_req_respond(sj_req_t *r, int status, const sj_header_t *hdrs, size_t nhdrs, const void *body,
                   size_t len) {
  int rv = can_answer(r);
  if (rv < 0)
    return rv;
  sj_buf_reset(&r->outq);
  r->outq_off = 0;
  if (len && (rv = sj_buf_append(&r->outq, body, len)) < 0)
    return rv;
  r->flags |= REQ_EOF;
  rv = submit(r, status, hdrs, nhdrs, NULL, 1, len, len > 0);
  if (rv < 0)
    r->flags &= ~(unsigned)REQ_EOF;
  return rv;
}

int sj_req_respond_owned(sj_req_t *r, int status, const sj_header_t *hdrs, size_t nhdrs, void *body,
                         size_t len, void (*free_fn)(void *)) {
  int rv = can_answer(r);
  if (rv < 0) {
    if (free_fn)
      free_fn(body);
    return rv;
  }
  r->out_p = body;
  r->out_n = len;
  r->out_off = 0;
  r->out_owned = body;
  r->out_free = free_fn;
  r->flags |= REQ_EOF;
  rv = submit(r, status, hdrs, nhdrs, NULL, 1, len, len > 0);
  if (rv < 0) {
    r->flags &= ~(unsigned)REQ_EOF;
    release_out(r);
  }
  return rv;
}

/* {"error":"msg"} with msg JSON-escaped, into out. */
static int error_json(sj_buf_t *out, const char *msg) {
  int rv = sj_buf_append_str(out, "{\"error\":\"");
  for (const unsigned char *p = (const unsigned char *)msg; rv == 0 && *p; p++) {
    if (*p == '"' || *p == '\\')
      rv = sj_buf_printf(out, "\\%c", *p);
    else if (*p < 0x20)
      rv = sj_buf_printf(out, "\\u%04x", *p);
    else
      rv = sj_buf_append_u8(out, *p);
  }
  return rv ? rv : sj_buf_append_str(out, "\"}");
}

static int respond_json_error(sj_req_t *r, int status, const char *msg, const sj_header_t *extra) {
  static const sj_header_t ct = {"content-type", "application/json"};
  sj_buf_reset(&r->outq);
  r->outq_off = 0;
  int rv = error_json(&r->outq, msg);
  if (rv < 0)
    return rv;
  r->flags |= REQ_EOF;
  rv = submit(r, status, &ct, 1, extra, 1, r->outq.n, 1);
  if (rv < 0)
    r->flags &= ~(unsigned)REQ_EOF;
  return rv;
}

int sj_req_respond_error(sj_req_t *r, int status, const char *message) {
  int rv = can_answer(r);
  return rv < 0 ? rv : respond_json_error(r, status, message ? message : "", NULL);
}

void sj_req_fail(sj_req_t *r, int status, const char *msg, const sj_header_t *extra) {
  r->flags |= REQ_DISCARD;
  if (!r->conn || r->conn->closing || (r->flags & REQ_ANSWERED))
    return;
  /* Work refused without a handler is logged (rate-limited); routine 404/405 are not, and the
   * timeouts were logged by the sweep. */
  if (status != 404 && status != 405 && !(r->flags & REQ_TIMED_OUT))
    sj_srv_log_drop(r->conn, "stream %d: %.16s %.100s: answered %d (%s)", r->stream_id,
                    sj_req_method(r), sj_req_path(r), status, msg);
  if (respond_json_error(r, status, msg, extra) < 0) {
    nghttp2_submit_rst_stream(r->conn->h2.ng, NGHTTP2_FLAG_NONE, r->stream_id,
                              NGHTTP2_INTERNAL_ERROR);
    sj_h2_want_send(&r->conn->h2);
  }
}

int sj_req_stream_start(sj_req_t *r, int status, const sj_header_t *hdrs, size_t nhdrs) {
  int rv = can_answer(r);
  if (rv < 0)
    return rv;
  sj_buf_reset(&r->outq);
  r->outq_off = 0;
  return submit(r, status, hdrs, nhdrs, NULL, 0, 0, 1);
}

/* Streamed data became available: wake the data source if nghttp2 parked it. */
static void resume(sj_req_t *r) {
  if (r->flags & REQ_DEFERRED) {
    r->flags &= ~(unsigned)REQ_DEFERRED;
    nghttp2_session_resume_data(r->conn->h2.ng, r->stream_id);
  }
  sj_h2_want_send(&r->conn->h2);
}

static int stream_check(const sj_req_t *r) {
  if (!r->conn || r->conn->closing || (r->flags & REQ_TIMED_OUT))
    return SJ_ECLOSED;
  if (!(r->flags & REQ_ANSWERED) || (r->flags & REQ_EOF) || r->out_p)
    return SJ_EINVAL;
  return 0;
}

int sj_req_stream_write(sj_req_t *r, const void *p, size_t n) {
  int rv = stream_check(r);
  if (rv < 0 || !n)
    return rv;
  /* Compact when the consumed prefix dominates, so a steady stream does not grow the buffer. */
  if (r->outq_off && r->outq_off >= r->outq.n / 2) {
    memmove(r->outq.p, r->outq.p + r->outq_off, r->outq.n - r->outq_off);
    r->outq.n -= r->outq_off;
    r->outq_off = 0;
  }
  if ((rv = sj_buf_append(&r->outq, p, n)) < 0)
    return rv;
  resume(r);
  return 0;
}

int sj_req_stream_end(sj_req_t *r) {
  int rv = stream_check(r);
  if (rv < 0)
    return rv;
  r->flags |= REQ_EOF;
  resume(r);
  return 0;
}

size_t sj_req_stream_pending(const sj_req_t *r) {
  return r->out_p ? r->out_n - r->out_off : r->outq.n - r->outq_off;
}
