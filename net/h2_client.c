/* net/h2_client.c — the HTTP/2 client: one origin, one connection at a time carrying every
 * request as a stream, reconnecting on demand.
 *
 * A call lives on exactly one list: the client's waiting list (no usable connection yet, or
 * being retried) or a connection's list (submitted to its nghttp2 session, which holds the call
 * as stream user data). A call attached to a session is freed only when nghttp2 closes its
 * stream or the session is deleted, even if its on_done already ran (timeout, cancel): nghttp2
 * may still read its body. After GOAWAY the connection drains in the background and new
 * requests open a fresh one; requests the server refused unprocessed are resent.
 * For "https" origins each connection is a TLS transport (tls.c) over TCP; the connection counts
 * as connecting until the TLS handshake completed, so connect_timeout_ms covers both. */
#include "net/net_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { CONN_CONNECTING, CONN_READY, CONN_DRAINING, CONN_CLOSING };
enum { CALL_NEW, CALL_ACTIVE, CALL_DONE };
enum { ON_NONE, ON_WAITING, ON_CONN };
#define MAX_RETRIES 3
#define FREE_CALLS 256

typedef struct cli_conn cli_conn_t;

struct sj_call {
  sj_client_t *cl;
  cli_conn_t *conn; /* the session holding it (where == ON_CONN) */
  int32_t stream_id;
  int state; /* CALL_* */
  int where; /* ON_* */
  int retries;
  sj_call_cbs_t cbs;
  uint64_t deadline; /* loop time; 0 = none */
  sj_buf_t req;      /* "method\0path\0name\0value\0..." */
  size_t nreqh;      /* extra header pairs in req */
  sj_buf_t body;     /* request body */
  size_t body_off;
  int status;
  int got_headers; /* final (non-1xx) response headers seen */
  sj_buf_t rarena; /* response header names and values, NUL-terminated */
  uint32_t *roff;  /* offsets into rarena: name, value, name, value, ... */
  size_t nroff, roffcap;
  sj_buf_t rbody; /* collected body */
  sj_call_t *next, *prev;
};

struct cli_conn {
  sj_h2_t h2; /* first: the flusher hands us back as sj_h2_t */
  sj_client_t *cl;
  int state;           /* CONN_* */
  uint64_t t_start;    /* when connecting began */
  int goaway;          /* GOAWAY received */
  int32_t goaway_last; /* its last stream id */
  sj_call_t *calls;
  cli_conn_t *next, *prev;
};

typedef struct {
  uv_getaddrinfo_t req;
  sj_client_t *cl; /* the client waits for this callback before it frees itself */
} resolve_t;

struct sj_client {
  uv_loop_t *loop;
  sj_client_opts_t o;
  sj_url_t url;
  sj_tls_ctx_t *tls;  /* https: the context every connection uses; NULL for http */
  char tls_name[256]; /* the name the server's certificate must carry */
  struct sockaddr_storage addr;
  int have_addr;
  resolve_t *resolving; /* name resolution in flight */
  uint64_t resolve_start;
  cli_conn_t *cur;   /* where new requests go (connecting or ready), or NULL */
  cli_conn_t *conns; /* every live connection: cur and draining ones */
  sj_call_t *waiting, *waiting_tail;
  uv_timer_t sweep;
  uint64_t tick;
  sj_flusher_t fl;
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  sj_call_t *free_calls;
  size_t nfree;
  int closing;
  int pending; /* handles and resolutions not yet finished */
  void (*done)(void *);
  void *done_arg;
};

static void ensure_conn(sj_client_t *cl);
static void submit_waiting(sj_client_t *cl);

void sj_client_opts_default(sj_client_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->connect_timeout_ms = 5000;
  o->request_timeout_ms = 30000;
  o->max_response_body = 64u << 20;
  o->max_write_queue = 1 << 20;
  o->stream_window = 1 << 20;
  o->conn_window = 16 << 20;
  o->retry_refused = 1;
}

/* ---- Calls ----------------------------------------------------------------------------------- */

static void call_destroy(sj_call_t *k) {
  sj_buf_deinit(&k->req);
  sj_buf_deinit(&k->body);
  sj_buf_deinit(&k->rarena);
  sj_buf_deinit(&k->rbody);
  free(k->roff);
  free(k);
}

static void call_free(sj_call_t *k) {
  sj_client_t *cl = k->cl;
  if (cl->nfree >= FREE_CALLS || k->rbody.cap > 65536 || k->body.cap > 65536) {
    call_destroy(k);
    return;
  }
  k->next = cl->free_calls;
  cl->free_calls = k;
  cl->nfree++;
}

static sj_call_t *call_alloc(sj_client_t *cl) {
  sj_call_t *k = cl->free_calls;
  if (!k)
    return calloc(1, sizeof *k);
  cl->free_calls = k->next;
  cl->nfree--;
  sj_buf_t req = k->req, body = k->body, rarena = k->rarena, rbody = k->rbody;
  uint32_t *roff = k->roff;
  size_t roffcap = k->roffcap;
  memset(k, 0, sizeof *k);
  sj_buf_reset(&req);
  sj_buf_reset(&body);
  sj_buf_reset(&rarena);
  sj_buf_reset(&rbody);
  k->req = req;
  k->body = body;
  k->rarena = rarena;
  k->rbody = rbody;
  k->roff = roff;
  k->roffcap = roffcap;
  return k;
}

static void waiting_push(sj_client_t *cl, sj_call_t *k) {
  k->where = ON_WAITING;
  k->next = NULL;
  k->prev = cl->waiting_tail;
  if (cl->waiting_tail)
    cl->waiting_tail->next = k;
  else
    cl->waiting = k;
  cl->waiting_tail = k;
}

static void unlink_call(sj_call_t *k) {
  if (k->where == ON_WAITING) {
    sj_client_t *cl = k->cl;
    if (k->prev)
      k->prev->next = k->next;
    else
      cl->waiting = k->next;
    if (k->next)
      k->next->prev = k->prev;
    else
      cl->waiting_tail = k->prev;
  } else if (k->where == ON_CONN) {
    cli_conn_t *c = k->conn;
    if (k->prev)
      k->prev->next = k->next;
    else
      c->calls = k->next;
    if (k->next)
      k->next->prev = k->prev;
    k->conn = NULL;
  }
  k->next = k->prev = NULL;
  k->where = ON_NONE;
}

static void reset_response(sj_call_t *k) {
  k->status = 0;
  k->got_headers = 0;
  k->nroff = 0;
  sj_buf_reset(&k->rarena);
  sj_buf_reset(&k->rbody);
  k->body_off = 0;
}

/* Builds the borrowed sj_resp_t view; hdrs points to storage of cap entries or is malloc'd. */
static sj_header_t *resp_view(sj_call_t *k, sj_resp_t *resp, sj_header_t *stack, size_t cap) {
  size_t n = k->nroff / 2;
  sj_header_t *h = stack;
  if (n > cap && !(h = malloc(n * sizeof *h)))
    n = 0, h = stack;
  for (size_t i = 0; i < n; i++) {
    h[i].name = (const char *)k->rarena.p + k->roff[2 * i];
    h[i].value = (const char *)k->rarena.p + k->roff[2 * i + 1];
  }
  resp->status = k->status;
  resp->hdrs = h;
  resp->nhdrs = n;
  resp->body = k->cbs.on_data ? NULL : (k->rbody.p ? k->rbody.p : (const uint8_t *)"");
  resp->body_len = k->cbs.on_data ? 0 : k->rbody.n;
  return h;
}

/* Runs on_done once. The caller frees k if it is not attached to a session. */
static void finish(sj_call_t *k, int err) {
  if (k->state == CALL_DONE)
    return;
  k->state = CALL_DONE;
  if (k->where == ON_WAITING)
    unlink_call(k);
  sj_header_t stack[32];
  sj_resp_t resp;
  sj_header_t *h = resp_view(k, &resp, stack, 32);
  k->cbs.on_done(err, &resp, k->cbs.arg);
  if (h != stack)
    free(h);
}

static void finish_free(sj_call_t *k, int err) {
  finish(k, err);
  if (k->where == ON_NONE)
    call_free(k);
}

/* Gives up on an attached call: reset its stream, report err now, free at stream close. */
static void abandon(sj_call_t *k, int err) {
  if (k->where == ON_CONN && k->conn->state != CONN_CLOSING) {
    nghttp2_submit_rst_stream(k->conn->h2.ng, NGHTTP2_FLAG_NONE, k->stream_id, NGHTTP2_CANCEL);
    sj_h2_want_send(&k->conn->h2);
  }
  finish_free(k, err);
}

/* Fails every waiting call. The list is detached first: on_done may submit new requests. */
static void fail_waiting(sj_client_t *cl, int err) {
  sj_call_t *k = cl->waiting;
  cl->waiting = cl->waiting_tail = NULL;
  while (k) {
    sj_call_t *next = k->next;
    k->where = ON_NONE;
    k->next = k->prev = NULL;
    finish_free(k, err);
    k = next;
  }
}

/* Puts a call the server did not process back in line, or fails it. */
static void retry_or_fail(sj_call_t *k, int err) {
  sj_client_t *cl = k->cl;
  if (k->state == CALL_ACTIVE && !cl->closing && cl->o.retry_refused && k->retries < MAX_RETRIES) {
    k->retries++;
    k->state = CALL_NEW;
    reset_response(k);
    waiting_push(cl, k);
    return;
  }
  finish_free(k, err);
}

/* ---- Submitting ------------------------------------------------------------------------------ */

static ssize_t body_read_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud) {
  (void)ng;
  (void)sid;
  (void)ud;
  sj_call_t *k = src->ptr;
  size_t n = k->body.n - k->body_off;
  if (n > len)
    n = len;
  memcpy(buf, k->body.p + k->body_off, n);
  k->body_off += n;
  if (k->body_off == k->body.n)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

#define NVS(n, v, vl)                                                                              \
  ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE})

static int submit_call(cli_conn_t *c, sj_call_t *k) {
  sj_client_t *cl = c->cl;
  const char *method = (const char *)k->req.p;
  const char *path = method + strlen(method) + 1;
  const char *h = path + strlen(path) + 1;
  nghttp2_nv stack[32], *nv = stack;
  size_t cap = k->nreqh + 5;
  if (cap > 32 && !(nv = malloc(cap * sizeof *nv)))
    return -ENOMEM;
  size_t n = 0;
  char clen[24];
  nv[n++] = NVS(":method", method, strlen(method));
  if (cl->tls)
    nv[n++] = NVS(":scheme", "https", 5);
  else
    nv[n++] = NVS(":scheme", "http", 4);
  nv[n++] = NVS(":authority", cl->url.authority, strlen(cl->url.authority));
  nv[n++] = NVS(":path", path, strlen(path));
  for (size_t i = 0; i < k->nreqh; i++) {
    const char *v = h + strlen(h) + 1;
    nv[n++] = (nghttp2_nv){(uint8_t *)h, (uint8_t *)v, strlen(h), strlen(v), NGHTTP2_NV_FLAG_NONE};
    h = v + strlen(v) + 1;
  }
  if (k->body.n) /* lets the server refuse an oversized body before it arrives */
    nv[n++] = NVS("content-length", clen, (size_t)snprintf(clen, sizeof clen, "%zu", k->body.n));
  nghttp2_data_provider prd = {.source.ptr = k, .read_callback = body_read_cb};
  k->body_off = 0;
  int32_t sid = nghttp2_submit_request(c->h2.ng, NULL, nv, n, k->body.n ? &prd : NULL, k);
  if (nv != stack)
    free(nv);
  if (sid < 0)
    return sid == NGHTTP2_ERR_NOMEM ? -ENOMEM : SJ_ECLOSED;
  k->stream_id = sid;
  k->state = CALL_ACTIVE;
  k->conn = c;
  k->where = ON_CONN;
  k->prev = NULL;
  k->next = c->calls;
  if (c->calls)
    c->calls->prev = k;
  c->calls = k;
  sj_h2_want_send(&c->h2);
  return 0;
}

static void submit_waiting(sj_client_t *cl) {
  cli_conn_t *c = cl->cur;
  if (!c || c->state != CONN_READY)
    return;
  while (cl->waiting) {
    sj_call_t *k = cl->waiting;
    unlink_call(k);
    int rv = submit_call(c, k);
    if (rv < 0)
      finish_free(k, rv);
  }
}

/* ---- Session callbacks ----------------------------------------------------------------------- */

static sj_call_t *live_call(nghttp2_session *ng, int32_t sid) {
  sj_call_t *k = nghttp2_session_get_stream_user_data(ng, sid);
  return k && k->state == CALL_ACTIVE ? k : NULL;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  sj_call_t *k = live_call(ng, frame->hd.stream_id);
  if (!k || frame->hd.type != NGHTTP2_HEADERS || k->got_headers)
    return 0; /* trailers are ignored */
  if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
    reset_response(k); /* a final response replaces any 1xx before it */
    k->status = vlen == 3 ? (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0') : 0;
    return 0;
  }
  if (k->nroff + 2 > k->roffcap) {
    size_t cap = k->roffcap ? k->roffcap * 2 : 32;
    uint32_t *o = realloc(k->roff, cap * sizeof *o);
    if (!o)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    k->roff = o;
    k->roffcap = cap;
  }
  size_t no = k->rarena.n;
  if (sj_buf_append(&k->rarena, name, nlen) < 0 || sj_buf_append_u8(&k->rarena, 0) < 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t vo = k->rarena.n;
  if (sj_buf_append(&k->rarena, value, vlen) < 0 || sj_buf_append_u8(&k->rarena, 0) < 0)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  k->roff[k->nroff++] = (uint32_t)no;
  k->roff[k->nroff++] = (uint32_t)vo;
  return 0;
}

static void on_response_headers(sj_call_t *k) {
  if (k->got_headers || k->status < 200)
    return; /* informational: wait for the final response */
  k->got_headers = 1;
  if (!k->cbs.on_headers)
    return;
  sj_header_t stack[32];
  sj_resp_t resp;
  sj_header_t *h = resp_view(k, &resp, stack, 32);
  int stop = k->cbs.on_headers(&resp, k->cbs.arg);
  if (h != stack)
    free(h);
  if (stop)
    abandon(k, SJ_ECLOSED);
}

static void on_goaway(cli_conn_t *c, const nghttp2_goaway *ga) {
  sj_client_t *cl = c->cl;
  c->goaway = 1;
  c->goaway_last = ga->last_stream_id;
  if (c->state == CONN_READY)
    c->state = CONN_DRAINING;
  if (cl->cur == c)
    cl->cur = NULL; /* new requests open a new connection */
  SJ_LOG_INFO(NET, "%s sent GOAWAY (last stream %d, error %u)", c->h2.tr->peer, ga->last_stream_id,
              ga->error_code);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud) {
  cli_conn_t *c = ud;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    on_goaway(c, &frame->goaway);
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  sj_call_t *k = live_call(ng, frame->hd.stream_id);
  if (!k)
    return 0;
  if (frame->hd.type == NGHTTP2_HEADERS)
    on_response_headers(k);
  if (k->state == CALL_ACTIVE && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    finish(k, k->got_headers ? 0 : SJ_EPROTO); /* freed when the stream closes, just after */
  return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *ud) {
  (void)flags;
  (void)ud;
  sj_call_t *k = live_call(ng, sid);
  if (!k)
    return 0;
  if (k->cbs.on_data) {
    if (k->cbs.on_data(data, len, k->cbs.arg))
      abandon(k, SJ_ECLOSED);
    return 0;
  }
  if (k->rbody.n + len > k->cl->o.max_response_body) {
    SJ_LOG_WARN(NET, "%s stream %d: response body over %zu bytes: cancelled", k->conn->h2.tr->peer,
                sid, k->cl->o.max_response_body);
    abandon(k, SJ_ETOOBIG);
  } else if (sj_buf_append(&k->rbody, data, len) < 0) {
    abandon(k, -ENOMEM);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *ud) {
  (void)ud;
  sj_call_t *k = nghttp2_session_get_stream_user_data(ng, sid);
  if (!k)
    return 0;
  unlink_call(k);
  if (k->state == CALL_DONE) {
    call_free(k);
    return 0;
  }
  if (error_code == NGHTTP2_REFUSED_STREAM)
    retry_or_fail(k, SJ_EBUSY);
  else
    finish_free(k, SJ_ECLOSED);
  return 0;
}

static int on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *frame, int lib_error,
                             void *ud) {
  cli_conn_t *c = ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  /* The request never left: find it by stream id (the stream may not exist in nghttp2). */
  sj_call_t *k = c->calls;
  while (k && k->stream_id != frame->hd.stream_id)
    k = k->next;
  if (!k)
    return 0;
  nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, NULL);
  unlink_call(k);
  if (k->state == CALL_DONE)
    call_free(k);
  else if (lib_error == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ||
           lib_error == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
    retry_or_fail(k, SJ_EBUSY);
  else
    finish_free(k, SJ_ECLOSED);
  return 0;
}

static nghttp2_session_callbacks *client_callbacks(void) {
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return NULL;
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
  return cb;
}

/* ---- Connections ----------------------------------------------------------------------------- */

static void maybe_free_client(sj_client_t *cl);

static void conn_close(cli_conn_t *c, int graceful) {
  if (c->state == CONN_CLOSING)
    return;
  c->state = CONN_CLOSING;
  c->h2.dead = 1;
  sj_h2_unlist(&c->h2);
  if (c->cl->cur == c)
    c->cl->cur = NULL;
  c->h2.tr->ops->close(c->h2.tr, graceful);
}

static void conn_kick(sj_h2_t *h) {
  cli_conn_t *c = (cli_conn_t *)h;
  sj_client_t *cl = c->cl;
  if (c->state == CONN_CLOSING || h->in_recv)
    return; /* inside mem_recv: ev_read kicks when it returns */
  if (cl->cur == c)
    submit_waiting(cl);
  int rv = sj_h2_pump(h);
  if (rv < 0) {
    SJ_LOG_WARN(NET, "%s closing: %s", h->tr->peer, nghttp2_strerror(rv));
    conn_close(c, 0);
    return;
  }
  if (c->state != CONN_CONNECTING && sj_h2_finished(h))
    conn_close(c, 1);
  if (cl->waiting && !cl->closing)
    ensure_conn(cl);
}

static void ev_connect(void *up, int status) {
  cli_conn_t *c = up;
  sj_client_t *cl = c->cl;
  if (status < 0) {
    SJ_LOG_WARN(NET, "connect to %s failed: %s", c->h2.tr->peer, sj_strerror(status));
    c->state = CONN_CLOSING; /* the transport closes itself */
    c->h2.dead = 1;
    if (cl->cur == c)
      cl->cur = NULL;
    fail_waiting(cl, status);
    return;
  }
  c->state = CONN_READY;
  conn_kick(&c->h2);
}

static void ev_read(void *up, const uint8_t *p, size_t n) {
  cli_conn_t *c = up;
  if (c->state == CONN_CLOSING)
    return;
  int rv = sj_h2_recv(&c->h2, p, n);
  if (rv < 0) {
    SJ_LOG_WARN(NET, "%s closing: %s", c->h2.tr->peer, nghttp2_strerror(rv));
    conn_close(c, 0);
    return;
  }
  conn_kick(&c->h2);
}

static void ev_eof(void *up, int err) {
  cli_conn_t *c = up;
  if (c->calls)
    SJ_LOG_WARN(NET, "%s connection lost with requests in flight: %s", c->h2.tr->peer,
                err ? uv_strerror(err) : "closed by peer");
  conn_close(c, 0);
}

static void ev_drain(void *up) {
  cli_conn_t *c = up;
  conn_kick(&c->h2);
}

static void ev_closed(void *up) {
  cli_conn_t *c = up;
  sj_client_t *cl = c->cl;
  c->state = CONN_CLOSING;
  if (cl->cur == c)
    cl->cur = NULL;
  /* Calls still on the session: never answered. Those beyond a GOAWAY's last stream were not
   * processed and may be resent; the others may have been, so they fail. */
  while (c->calls) {
    sj_call_t *k = c->calls;
    unlink_call(k);
    if (k->state == CALL_DONE)
      call_free(k);
    else if (c->goaway && k->stream_id > c->goaway_last)
      retry_or_fail(k, SJ_ECLOSED);
    else
      finish_free(k, SJ_ECLOSED);
  }
  if (c->h2.ng)
    nghttp2_session_del(c->h2.ng);
  if (c->prev)
    c->prev->next = c->next;
  else
    cl->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
  if (cl->waiting && !cl->closing)
    ensure_conn(cl);
  maybe_free_client(cl);
}

static const sj_conn_events_t cli_events = {ev_connect, ev_read, ev_eof, ev_drain, ev_closed};

static int session_start(cli_conn_t *c) {
  const sj_client_opts_t *o = &c->cl->o;
  if (nghttp2_session_client_new2(&c->h2.ng, c->cl->cbs, c, c->cl->opt) != 0)
    return -ENOMEM;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->stream_window},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  int rv = nghttp2_submit_settings(c->h2.ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (rv == 0 && o->conn_window > 65535)
    rv = nghttp2_session_set_local_window_size(c->h2.ng, NGHTTP2_FLAG_NONE, 0,
                                               (int32_t)o->conn_window);
  return rv == 0 ? 0 : -ENOMEM;
}

static void conn_start(sj_client_t *cl) {
  cli_conn_t *c = calloc(1, sizeof *c);
  int rv = c ? 0 : -ENOMEM;
  if (c) {
    c->cl = cl;
    c->state = CONN_CONNECTING;
    c->t_start = uv_now(cl->loop);
    c->h2.max_queue = cl->o.max_write_queue;
    c->h2.fl = &cl->fl;
    c->h2.kick = conn_kick;
    /* The session exists before the socket connects, so requests can be queued in it. */
    rv = session_start(c);
    if (rv == 0 && cl->tls)
      rv = sj_tls_connect(cl->tls, cl->loop, (struct sockaddr *)&cl->addr, cl->tls_name,
                          &cli_events, c, &c->h2.tr);
    else if (rv == 0)
      rv = sj_tcp_connect(cl->loop, (struct sockaddr *)&cl->addr, &cli_events, c, &c->h2.tr);
  }
  if (rv < 0) {
    if (c && c->h2.ng)
      nghttp2_session_del(c->h2.ng);
    free(c);
    SJ_LOG_WARN(NET, "connect to %s: %s", cl->url.authority, sj_strerror(rv));
    fail_waiting(cl, rv);
    return;
  }
  c->next = cl->conns;
  if (cl->conns)
    cl->conns->prev = c;
  cl->conns = c;
  cl->cur = c;
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolve_t *rs = req->data;
  sj_client_t *cl = rs->cl; /* alive: pending counts this resolution */
  cl->resolving = NULL;
  if (cl->closing) {
    /* nothing to do: the waiting calls already failed */
  } else if (status == 0 && res && res->ai_addrlen <= sizeof cl->addr) {
    memcpy(&cl->addr, res->ai_addr, res->ai_addrlen);
    if (res->ai_family == AF_INET6)
      ((struct sockaddr_in6 *)&cl->addr)->sin6_port = htons(cl->url.port);
    else
      ((struct sockaddr_in *)&cl->addr)->sin_port = htons(cl->url.port);
    cl->have_addr = 1;
    if (cl->waiting)
      conn_start(cl);
  } else {
    SJ_LOG_WARN(NET, "cannot resolve %s: %s", cl->url.host,
                status < 0 ? uv_strerror(status) : "no address");
    fail_waiting(cl, status < 0 ? status : SJ_EINVAL);
  }
  uv_freeaddrinfo(res);
  free(rs);
  cl->pending--;
  maybe_free_client(cl);
}

static void ensure_conn(sj_client_t *cl) {
  if (cl->cur || cl->closing || cl->resolving)
    return;
  if (cl->have_addr) {
    conn_start(cl);
    return;
  }
  resolve_t *rs = calloc(1, sizeof *rs);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  if (!rs) {
    fail_waiting(cl, -ENOMEM);
    return;
  }
  rs->cl = cl;
  rs->req.data = rs;
  int rv = uv_getaddrinfo(cl->loop, &rs->req, resolved, cl->url.host, NULL, &hints);
  if (rv < 0) {
    free(rs);
    fail_waiting(cl, rv);
    return;
  }
  cl->resolving = rs;
  cl->resolve_start = uv_now(cl->loop);
  cl->pending++;
}

/* ---- Timeouts -------------------------------------------------------------------------------- */

static void sweep_calls(sj_call_t *k, uint64_t now) {
  while (k) {
    sj_call_t *next = k->next; /* abandon may free k */
    if (k->state != CALL_DONE && k->deadline && now >= k->deadline)
      abandon(k, SJ_ETIMEDOUT);
    k = next;
  }
}

static void sweep_cb(uv_timer_t *t) {
  sj_client_t *cl = t->data;
  uint64_t now = uv_now(cl->loop);
  sweep_calls(cl->waiting, now);
  for (cli_conn_t *c = cl->conns; c; c = c->next) {
    if (c->state == CONN_CONNECTING && now - c->t_start >= cl->o.connect_timeout_ms) {
      SJ_LOG_WARN(NET, "connect to %s timed out", c->h2.tr->peer);
      conn_close(c, 0);
      fail_waiting(cl, SJ_ETIMEDOUT);
      continue;
    }
    if (c->state != CONN_CLOSING)
      sweep_calls(c->calls, now);
  }
  if (cl->resolving && cl->waiting && now - cl->resolve_start >= cl->o.connect_timeout_ms)
    fail_waiting(cl, SJ_ETIMEDOUT);
}

static void set_tick(sj_client_t *cl, uint64_t timeout_ms) {
  uint64_t t = timeout_ms / 8;
  t = t < 5 ? 5 : t > 100 ? 100 : t;
  if (cl->tick && t >= cl->tick)
    return;
  cl->tick = t;
  uv_timer_start(&cl->sweep, sweep_cb, t, t);
}

/* ---- Public API ------------------------------------------------------------------------------ */

static void on_sweep_closed(uv_handle_t *h) {
  sj_client_t *cl = h->data;
  cl->pending--;
  maybe_free_client(cl);
}

static void on_idle_closed(uv_handle_t *h) {
  sj_client_t *cl = (sj_client_t *)((char *)h - offsetof(sj_client_t, fl.idle));
  cl->pending--;
  maybe_free_client(cl);
}

/* https: reads the TLS files now (the caller's strings are not kept). */
static int tls_setup(sj_client_t *cl, const sj_client_opts_t *o) {
  int any = o->tls_ca_file || o->tls_cert_file || o->tls_key_file || o->tls_server_name;
  cl->o.tls_ca_file = cl->o.tls_cert_file = cl->o.tls_key_file = cl->o.tls_server_name = NULL;
  if (!cl->url.tls)
    return any ? SJ_EINVAL : 0;
  if (!o->tls_cert_file != !o->tls_key_file)
    return SJ_EINVAL;
  const char *name = o->tls_server_name ? o->tls_server_name : cl->url.host;
  if (!*name || strlen(name) >= sizeof cl->tls_name)
    return SJ_EINVAL;
  memcpy(cl->tls_name, name, strlen(name) + 1);
  return sj_tls_client_ctx_new(o, &cl->tls);
}

int sj_client_new(uv_loop_t *loop, const char *url, const sj_client_opts_t *opts,
                  sj_client_t **out) {
  sj_client_opts_t o;
  if (opts)
    o = *opts;
  else
    sj_client_opts_default(&o);
  if (!loop || !o.connect_timeout_ms || o.max_write_queue < 16384 || o.stream_window < 65535 ||
      o.stream_window > INT32_MAX || o.conn_window > INT32_MAX)
    return SJ_EINVAL;
  sj_client_t *cl = calloc(1, sizeof *cl);
  if (!cl)
    return -ENOMEM;
  cl->loop = loop;
  cl->o = o;
  int rv = sj_url_parse(url, &cl->url);
  if (rv == 0)
    rv = tls_setup(cl, &o);
  if (rv == 0 && (!(cl->cbs = client_callbacks()) || !(cl->opt = sj_h2_option_new(0, 0, 0))))
    rv = -ENOMEM;
  if (rv < 0) {
    if (cl->cbs)
      nghttp2_session_callbacks_del(cl->cbs);
    sj_tls_ctx_free(cl->tls);
    free(cl);
    return rv;
  }
  if (uv_ip4_addr(cl->url.host, cl->url.port, (struct sockaddr_in *)&cl->addr) == 0 ||
      uv_ip6_addr(cl->url.host, cl->url.port, (struct sockaddr_in6 *)&cl->addr) == 0)
    cl->have_addr = 1;
  uv_timer_init(loop, &cl->sweep);
  cl->sweep.data = cl;
  sj_flusher_init(loop, &cl->fl);
  cl->fl.idle.data = &cl->fl;
  cl->pending = 2;
  set_tick(cl, o.request_timeout_ms && o.request_timeout_ms < o.connect_timeout_ms
                   ? o.request_timeout_ms
                   : o.connect_timeout_ms);
  uv_unref((uv_handle_t *)&cl->sweep); /* a client with nothing to do must not hold the loop */
  *out = cl;
  return 0;
}

static int call_fill(sj_call_t *k, const sj_call_req_t *r) {
  int rv = sj_buf_append(&k->req, r->method, strlen(r->method) + 1);
  if (rv == 0)
    rv = sj_buf_append(&k->req, r->path, strlen(r->path) + 1);
  for (size_t i = 0; rv == 0 && i < r->nhdrs; i++) {
    rv = sj_buf_append(&k->req, r->hdrs[i].name, strlen(r->hdrs[i].name) + 1);
    if (rv == 0)
      rv = sj_buf_append(&k->req, r->hdrs[i].value, strlen(r->hdrs[i].value) + 1);
  }
  k->nreqh = r->nhdrs;
  if (rv == 0 && r->body_len)
    rv = sj_buf_append(&k->body, r->body, r->body_len);
  return rv;
}

int sj_client_request(sj_client_t *cl, const sj_call_req_t *r, const sj_call_cbs_t *cbs,
                      sj_call_t **call_out) {
  if (cl->closing)
    return SJ_ECLOSED;
  if (!r || !r->method || !r->path || r->path[0] != '/' || !cbs || !cbs->on_done ||
      (r->nhdrs && !r->hdrs) || (r->body_len && !r->body))
    return SJ_EINVAL;
  sj_call_t *k = call_alloc(cl);
  if (!k)
    return -ENOMEM;
  k->cl = cl;
  k->cbs = *cbs;
  int rv = call_fill(k, r);
  if (rv < 0) {
    call_free(k);
    return rv;
  }
  uint64_t to = r->timeout_ms ? r->timeout_ms : cl->o.request_timeout_ms;
  k->deadline = to ? uv_now(cl->loop) + to : 0;
  if (to)
    set_tick(cl, to);
  waiting_push(cl, k);
  if (cl->cur && cl->cur->state == CONN_READY)
    sj_h2_want_send(&cl->cur->h2); /* submitted and sent together with its neighbours */
  else
    ensure_conn(cl);
  if (call_out)
    *call_out = k;
  return 0;
}

void sj_call_cancel(sj_call_t *k) {
  if (k->state == CALL_DONE)
    return;
  abandon(k, SJ_ECLOSED);
}

static void maybe_free_client(sj_client_t *cl) {
  if (!cl->closing || cl->conns || cl->pending)
    return;
  void (*done)(void *) = cl->done;
  void *arg = cl->done_arg;
  while (cl->free_calls) {
    sj_call_t *k = cl->free_calls;
    cl->free_calls = k->next;
    call_destroy(k);
  }
  nghttp2_session_callbacks_del(cl->cbs);
  nghttp2_option_del(cl->opt);
  sj_tls_ctx_free(cl->tls);
  free(cl);
  if (done)
    done(arg);
}

void sj_client_close(sj_client_t *cl, void (*done)(void *arg), void *arg) {
  if (cl->closing)
    return;
  cl->closing = 1;
  cl->done = done;
  cl->done_arg = arg;
  fail_waiting(cl, SJ_ECLOSED);
  for (cli_conn_t *c = cl->conns; c; c = c->next) {
    for (sj_call_t *k = c->calls; k; k = k->next)
      finish(k, SJ_ECLOSED); /* stays attached; freed with the session */
    if (c->state == CONN_READY || c->state == CONN_DRAINING) {
      /* Say goodbye if it costs nothing; a stuck socket is just cut. */
      nghttp2_session_terminate_session(c->h2.ng, NGHTTP2_NO_ERROR);
      sj_h2_pump(&c->h2);
      conn_close(c, c->h2.tr->queued < 65536);
    } else {
      conn_close(c, 0);
    }
  }
  if (cl->resolving)
    uv_cancel((uv_req_t *)&cl->resolving->req); /* its callback still runs; we wait for it */
  uv_close((uv_handle_t *)&cl->sweep, on_sweep_closed);
  sj_flusher_close(&cl->fl, on_idle_closed);
  maybe_free_client(cl);
}
