/* net/h2_server.c — one server connection: the transport's events, the nghttp2 server session
 * and its callbacks, and dispatching complete requests to route handlers.
 *
 * A request is answered without reaching a handler when its headers are too big (431), no route
 * matches (404/405), a parameter or the query is badly escaped (400), or the announced or
 * received body exceeds the route's limit (413). When a reply completes before the request body
 * did, the stream is reset with NO_ERROR (RFC 9113 §8.1) so the client stops sending. */
#include "net/net_int.h"

#include <stdlib.h>
#include <string.h>

static sj_req_t *stream_req(nghttp2_session *ng, int32_t sid) {
  return nghttp2_session_get_stream_user_data(ng, sid);
}

/* ---- Request assembly ------------------------------------------------------------------------ */

/* Stores :path as path (up to '?') and raw query, each NUL-terminated in the arena. */
static int store_path(sj_req_t *r, const uint8_t *v, size_t n) {
  const uint8_t *q = memchr(v, '?', n);
  size_t plen = q ? (size_t)(q - v) : n;
  long po = sj_req_store(r, v, plen);
  long qo = q ? sj_req_store(r, q + 1, n - plen - 1) : 0;
  if (po < 0 || qo < 0)
    return -ENOMEM;
  r->path_off = (uint32_t)po;
  r->path_len = (uint32_t)plen;
  r->query_off = (uint32_t)qo;
  r->query_len = q ? (uint32_t)(n - plen - 1) : 0;
  r->has_path = 1;
  return 0;
}

static int store_header(sj_req_t *r, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen) {
  long no = sj_req_store(r, name, nlen);
  long vo = sj_req_store(r, value, vlen);
  if (no < 0 || vo < 0)
    return -ENOMEM;
  if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
    r->method_off = (uint32_t)vo;
    r->has_method = 1;
  } else if (nlen == 5 && memcmp(name, ":path", 5) == 0 && store_path(r, value, vlen) < 0) {
    return -ENOMEM;
  }
  return sj_kvs_push(&r->hdrs,
                     (sj_kv_t){(uint32_t)no, (uint32_t)nlen, (uint32_t)vo, (uint32_t)vlen});
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* trailers are accepted and ignored */
  sj_req_t *r = stream_req(ng, frame->hd.stream_id);
  if (!r || (r->flags & (REQ_HDR_TOO_BIG | REQ_BAD_HEADER)))
    return 0;
  r->hdr_bytes += nlen + vlen + 32; /* RFC 9113 §6.5.2 */
  if (r->hdr_bytes > r->srv->o.max_header_list_size) {
    r->flags |= REQ_HDR_TOO_BIG; /* keep decoding (HPACK state), answer 431 at the end */
    return 0;
  }
  if (store_header(r, name, nlen, value, vlen) < 0)
    r->flags |= REQ_BAD_HEADER;
  return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud) {
  srv_conn_t *c = ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  c->last_request = uv_now(c->srv->loop); /* a request: the connection is in use */
  sj_req_t *r = sj_req_alloc(c->srv, c, frame->hd.stream_id);
  if (!r)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
  nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, r);
  return 0;
}

/* ---- Dispatch -------------------------------------------------------------------------------- */

static void dispatch(sj_req_t *r) {
  r->flags |= REQ_DISPATCHED;
  r->route->fn(r, r->route->arg);
}

/* Parses a content-length value; -1 if absent or malformed (nghttp2 already rejects malformed
 * ones and checks the body against it). */
static long long content_length(const sj_req_t *r) {
  size_t n;
  const char *v = sj_req_header(r, "content-length", &n);
  if (!v || !n || n > 18)
    return -1;
  long long x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    x = x * 10 + (v[i] - '0');
  }
  return x;
}

/* Routes r and checks its limits; NULL route means it was answered already. */
static int route_request(sj_req_t *r) {
  char allow[128];
  sj_span_t spans[SJ_MAX_PARAMS];
  int status = 0;
  /* HEAD is answered by the GET route; the reply then carries no body (req.c). */
  const char *method = strcmp(sj_req_method(r), "HEAD") ? sj_req_method(r) : "GET";
  const sj_route_info_t *ri = sj_router_match(r->srv->router, method, sj_req_path(r),
                                              r->path_len, spans, &status, allow, sizeof allow);
  if (!ri) {
    sj_header_t ah = {"allow", allow};
    sj_req_fail(r, status, status == 405 ? "method not allowed" : "not found",
                status == 405 ? &ah : NULL);
    return -1;
  }
  int rv = sj_req_set_params(r, ri, spans);
  if (rv == 0)
    rv = sj_req_parse_query(r);
  if (rv < 0) {
    sj_req_fail(r, rv == SJ_EFORMAT ? 400 : 500,
                rv == SJ_EFORMAT ? "invalid percent-encoding" : "out of memory", NULL);
    return -1;
  }
  r->route = ri;
  r->max_body = ri->max_body ? ri->max_body : r->srv->o.max_body;
  long long cl = content_length(r);
  if (cl >= 0 && (unsigned long long)cl > r->max_body) {
    sj_req_fail(r, 413, "request body too large", NULL);
    return -1;
  }
  if (cl > 0 && !ri->stream_body && sj_buf_reserve(&r->body, (size_t)cl) < 0) {
    sj_req_fail(r, 500, "out of memory", NULL);
    return -1;
  }
  return 0;
}

/* The server's gate (sj_server_set_gate): 0 lets r through; otherwise r was answered. */
static int gate(sj_req_t *r) {
  sj_server_t *s = r->srv;
  if (!s->gate || !s->gate(r, s->gate_arg))
    return 0;
  if (!(r->flags & REQ_ANSWERED))
    sj_req_fail(r, 500, "request refused", NULL);
  r->flags |= REQ_DISCARD;
  return -1;
}

static void on_request_headers(sj_req_t *r) {
  r->srv->st.requests++;
  if (r->flags & REQ_HDR_TOO_BIG) {
    sj_req_fail(r, 431, "request header fields too large", NULL);
    return;
  }
  if ((r->flags & REQ_BAD_HEADER) || !r->has_method || !r->has_path) {
    sj_req_fail(r, r->flags & REQ_BAD_HEADER ? 500 : 400, "bad request headers", NULL);
    return;
  }
  if (gate(r) < 0 || route_request(r) < 0)
    return;
  if (r->route->stream_body) {
    dispatch(r);
    if ((r->flags & REQ_PEER_ENDED) && r->body_cb && !(r->flags & REQ_DISCARD))
      r->body_cb(r, NULL, 0, 1, r->body_arg);
  } else if (r->flags & REQ_PEER_ENDED) {
    dispatch(r);
  }
}

static void on_request_end(sj_req_t *r) {
  if ((r->flags & REQ_DISCARD) || !r->route)
    return;
  if (r->route->stream_body) {
    if (r->body_cb)
      r->body_cb(r, NULL, 0, 1, r->body_arg);
  } else if (!(r->flags & REQ_DISPATCHED)) {
    dispatch(r);
  }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud) {
  srv_conn_t *c = ud;
  if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK))
    c->preface_deadline = 0; /* preface and SETTINGS are in (nghttp2 checked the preface) */
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  sj_req_t *r = stream_req(ng, frame->hd.stream_id);
  if (!r)
    return 0;
  int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (end)
    r->flags |= REQ_PEER_ENDED;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    on_request_headers(r);
  else if (end)
    on_request_end(r);
  return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
                         size_t len, void *ud) {
  (void)flags;
  (void)ud;
  sj_req_t *r = stream_req(ng, sid);
  if (!r)
    return 0;
  r->body_seen += len;
  if (r->flags & REQ_DISCARD) {
    if ((r->flags & REQ_SENT) && r->body_seen > r->max_body + SJ_DISCARD_GRACE)
      sj_srv_reset_upload(r->conn, r);
    return 0;
  }
  if (!r->route)
    return 0;
  if (r->body_seen > r->max_body) {
    if (r->flags & REQ_ANSWERED) {
      r->flags |= REQ_DISCARD;
      sj_srv_log_drop(r->conn, "stream %d: upload over its %zu-byte limit after the answer: "
                               "RST_STREAM CANCEL", sid, r->max_body);
      nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    } else {
      sj_req_fail(r, 413, "request body too large", NULL);
    }
    sj_buf_reset(&r->body);
    return 0;
  }
  if (r->route->stream_body) {
    if (r->body_cb)
      r->body_cb(r, data, len, 0, r->body_arg);
  } else if (sj_buf_append(&r->body, data, len) < 0) {
    sj_req_fail(r, 500, "out of memory", NULL);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *ud) {
  srv_conn_t *c = ud;
  c->last_request = uv_now(c->srv->loop); /* idleness counts from the end of the last request */
  sj_req_t *r = stream_req(ng, sid);
  if (!r)
    return 0;
  int ok = (r->flags & REQ_SENT) && error_code == NGHTTP2_NO_ERROR;
  if (!ok)
    SJ_LOG_DEBUG(NET, "%s stream %d closed before its reply completed (h2 error %u)",
                 c->h2.tr ? c->h2.tr->peer : "?", sid, error_code);
  sj_req_detach(r, ok ? 0 : SJ_ECLOSED);
  return 0;
}

/* A GOAWAY's debug data, made printable for a log line (it comes from nghttp2 or from us, but is
 * treated as bytes all the same). */
static void goaway_reason(const nghttp2_goaway *g, char *out, size_t cap) {
  size_t n = g->opaque_data_len < cap - 1 ? g->opaque_data_len : cap - 1;
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = g->opaque_data[i];
    out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
  }
  out[n] = 0;
}

/* Frames we send that drop work: a GOAWAY with an error code — also the ones nghttp2 queues by
 * itself when it ends a session (reset rate limit, too many streams, flow-control errors), for
 * which mem_recv returns no error — and a RST_STREAM refusing or failing a stream. */
static void log_sent_drop(srv_conn_t *c, const nghttp2_frame *frame) {
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
    char why[128];
    goaway_reason(&frame->goaway, why, sizeof why);
    sj_srv_log_drop(c, "sent GOAWAY %s, last stream %d%s%s: closing",
                    nghttp2_http2_strerror(frame->goaway.error_code),
                    frame->goaway.last_stream_id, why[0] ? ": " : "", why);
  } else if (frame->hd.type == NGHTTP2_RST_STREAM &&
             frame->rst_stream.error_code != NGHTTP2_NO_ERROR &&
             frame->rst_stream.error_code != NGHTTP2_CANCEL) {
    sj_srv_log_drop(c, "stream %d: sent RST_STREAM %s", frame->hd.stream_id,
                    nghttp2_http2_strerror(frame->rst_stream.error_code));
  }
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud) {
  srv_conn_t *c = ud;
  log_sent_drop(c, frame);
  if (frame->hd.type == NGHTTP2_DATA && frame->hd.length > 0)
    c->last_data_sent = uv_now(c->srv->loop);
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  sj_req_t *r = stream_req(ng, frame->hd.stream_id);
  if (!r)
    return 0;
  r->flags |= REQ_SENT;
  /* Answered before the upload ended (413, ...): the rest is discarded as it comes, up to a
   * grace amount; the sweep resets uploads that stall. */
  if (!(r->flags & REQ_PEER_ENDED) && r->body_seen > r->max_body + SJ_DISCARD_GRACE)
    sj_srv_reset_upload(r->conn, r);
  return 0;
}

void sj_srv_reset_upload(srv_conn_t *c, sj_req_t *r) {
  if (!c || c->closing || (r->flags & REQ_RESET))
    return;
  r->flags |= REQ_RESET | REQ_DISCARD;
  sj_srv_log_drop(c, "stream %d: upload still open after the answer (%zu body bytes, limit "
                     "%zu): cut with RST_STREAM NO_ERROR",
                  r->stream_id, r->body_seen, r->max_body);
  nghttp2_submit_rst_stream(c->h2.ng, NGHTTP2_FLAG_NONE, r->stream_id, NGHTTP2_NO_ERROR);
  sj_h2_want_send(&c->h2);
}

static int on_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *ud) {
  (void)ng;
  srv_conn_t *c = ud;
  SJ_LOG_DEBUG(NET, "%s h2: %.*s (%d)", c->h2.tr ? c->h2.tr->peer : "?", (int)len, msg, code);
  return 0;
}

int sj_srv_callbacks_new(nghttp2_session_callbacks **out) {
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return -ENOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  nghttp2_session_callbacks_set_error_callback2(cb, on_error);
  *out = cb;
  return 0;
}

/* ---- Connection ------------------------------------------------------------------------------ */

void sj_srv_conn_close(srv_conn_t *c, int graceful) {
  if (c->closing)
    return;
  c->closing = 1;
  c->h2.dead = 1;
  sj_h2_unlist(&c->h2);
  c->h2.tr->ops->close(c->h2.tr, graceful);
}

void sj_srv_run_drains(srv_conn_t *c) {
  for (sj_req_t *r = c->reqs; r; r = r->next) {
    if (!(r->flags & REQ_DRAIN))
      continue;
    r->flags &= ~(unsigned)REQ_DRAIN;
    if (r->drain_cb && sj_req_stream_pending(r) == 0)
      r->drain_cb(r, r->drain_arg);
  }
}

static void conn_kick(sj_h2_t *h) {
  srv_conn_t *c = (srv_conn_t *)h;
  if (c->closing || h->in_recv)
    return; /* inside mem_recv: ev_read kicks when it returns */
  int rv = sj_h2_pump(h);
  if (rv < 0) {
    SJ_LOG_WARN(NET, "%s closing: %s", h->tr->peer, nghttp2_strerror(rv));
    sj_srv_conn_close(c, 0);
    return;
  }
  if (c->drain_pending) {
    c->drain_pending = 0;
    sj_srv_run_drains(c);
  }
  if (sj_h2_finished(h)) {
    sj_srv_conn_close(c, 1);
    return;
  }
  if (!c->read_paused && h->tr->queued >= h->max_queue) {
    c->read_paused = 1; /* the peer does not read: stop taking new requests from it */
    h->tr->ops->read_pause(h->tr, 1);
  }
}

static void ev_read(void *up, const uint8_t *p, size_t n) {
  srv_conn_t *c = up;
  if (c->closing)
    return;
  c->last_active = uv_now(c->srv->loop);
  int rv = sj_h2_recv(&c->h2, p, n);
  if (rv < 0) {
    SJ_LOG_INFO(NET, "%s closing: %s", c->h2.tr->peer, nghttp2_strerror(rv));
    sj_srv_conn_close(c, 0);
    return;
  }
  conn_kick(&c->h2);
}

static void ev_eof(void *up, int err) {
  srv_conn_t *c = up;
  if (err)
    SJ_LOG_DEBUG(NET, "%s connection error: %s", c->h2.tr->peer, uv_strerror(err));
  sj_srv_conn_close(c, 0);
}

static void ev_drain(void *up) {
  srv_conn_t *c = up;
  if (c->closing)
    return;
  c->last_active = uv_now(c->srv->loop);
  if (c->read_paused && c->h2.tr->queued < c->h2.max_queue / 2) {
    c->read_paused = 0;
    c->h2.tr->ops->read_pause(c->h2.tr, 0);
  }
  conn_kick(&c->h2);
}

static void ev_closed(void *up) {
  srv_conn_t *c = up;
  sj_server_t *s = c->srv;
  c->closing = 1;
  c->h2.tr = NULL;
  while (c->reqs)
    sj_req_detach(c->reqs, SJ_ECLOSED);
  if (c->h2.ng)
    nghttp2_session_del(c->h2.ng);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->st.conns_open--;
  free(c);
  sj_server_conn_gone(s);
}

static const sj_conn_events_t srv_events = {NULL, ev_read, ev_eof, ev_drain, ev_closed};

static int session_start(srv_conn_t *c) {
  const sj_server_opts_t *o = &c->srv->o;
  int rv = nghttp2_session_server_new2(&c->h2.ng, c->srv->cbs, c, c->srv->opt);
  if (rv != 0)
    return -ENOMEM;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_list_size},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->stream_window},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  rv = nghttp2_submit_settings(c->h2.ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (rv == 0 && o->conn_window > 65535)
    rv = nghttp2_session_set_local_window_size(c->h2.ng, NGHTTP2_FLAG_NONE, 0,
                                               (int32_t)o->conn_window);
  return rv == 0 ? 0 : -ENOMEM;
}

/* The bytes of a peer address that name "one address" for the cap: all of an IPv4 address
 * (also when IPv4-mapped), the /64 prefix of an IPv6 one (a single host is usually given a whole
 * /64, so counting /128s would not bound it). */
static size_t addr_key_len(const sj_conn_t *tr) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (tr->peer_ip_len == 16 && memcmp(tr->peer_ip, mapped, 12) != 0)
    return 8;
  return tr->peer_ip_len;
}

/* Whether c's address already holds max_conns_per_addr connections (c not counted): then it is
 * refused, and logged once a second at most. A walk over the open connections — at most
 * max_connections, comparing 16 bytes each — is cheaper than keeping a table in step. */
static int over_addr_cap(sj_server_t *s, srv_conn_t *c) {
  const sj_conn_t *tr = c->h2.tr;
  uint32_t cap = s->o.max_conns_per_addr, n = 0;
  size_t klen = addr_key_len(tr);
  if (!cap || !klen)
    return 0;
  for (const srv_conn_t *o = s->conns; o && n < cap; o = o->next)
    n += o != c && !o->closing && o->h2.tr && o->h2.tr->peer_ip_len == tr->peer_ip_len &&
         memcmp(o->h2.tr->peer_ip, tr->peer_ip, klen) == 0;
  if (n < cap)
    return 0;
  s->st.conns_refused++;
  s->st.conns_refused_addr++;
  uint64_t now = uv_now(s->loop);
  if (now - s->last_addr_refuse_log >= 1000 || s->st.conns_refused_addr == 1) {
    s->last_addr_refuse_log = now;
    SJ_LOG_WARN(NET, "%s: %u connections from this address already (max-conns-per-addr): "
                     "refusing (%llu refused so far)",
                tr->peer, cap, (unsigned long long)s->st.conns_refused_addr);
  }
  return 1;
}

void sj_srv_accept(sj_server_t *s) {
  srv_conn_t *c = calloc(1, sizeof *c);
  sj_conn_t *tr;
  if (!c) {
    sj_tcp_reject((uv_stream_t *)&s->listener);
    return;
  }
  int rv = sj_tcp_accept((uv_stream_t *)&s->listener, &srv_events, c, &tr);
  if (rv < 0) {
    SJ_LOG_WARN(NET, "accept failed: %s", sj_strerror(rv));
    free(c);
    return;
  }
  c->srv = s;
  c->h2.tr = tr;
  c->h2.max_queue = s->o.max_write_queue;
  c->h2.fl = &s->fl;
  c->h2.kick = conn_kick;
  c->last_active = c->last_request = c->last_data_sent = uv_now(s->loop);
  if (s->o.preface_timeout_ms)
    c->preface_deadline = c->last_active + s->o.preface_timeout_ms;
  c->next = s->conns;
  if (s->conns)
    s->conns->prev = c;
  s->conns = c;
  s->st.conns_open++;
  if (over_addr_cap(s, c)) {
    sj_srv_conn_close(c, 0);
    return;
  }
  s->st.conns_accepted++;
  if (session_start(c) < 0) {
    SJ_LOG_WARN(NET, "%s: cannot start HTTP/2 session: out of memory", tr->peer);
    sj_srv_conn_close(c, 0);
    return;
  }
  conn_kick(&c->h2); /* our SETTINGS go out at once */
}

/* Asks c to finish: GOAWAY now, close when its streams are done. */
void sj_srv_conn_goaway(srv_conn_t *c) {
  if (c->closing || !c->h2.ng)
    return;
  nghttp2_submit_goaway(c->h2.ng, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(c->h2.ng), NGHTTP2_NO_ERROR, NULL,
                        0);
  conn_kick(&c->h2);
}
