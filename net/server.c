/* net/server.c — the server's lifecycle: options, routes, the listening socket and the
 * connection limit, the sweep timer (request and idle timeouts, shutdown deadline), and graceful
 * shutdown down to the last closed handle.
 *
 * One timer per server, not one per request or connection: it ticks at a quarter of the
 * shortest timeout (5 ms .. 1 s) and walks the connections. That costs no syscalls per request
 * and keeps the close path simple (fewer handles to close). */
#include "net/net_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sj_server_opts_default(sj_server_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->max_concurrent_streams = 128;
  o->max_header_list_size = 16384;
  o->max_body = 1 << 20;
  o->max_connections = 1024;
  o->max_conns_per_addr = 128;
  o->idle_timeout_ms = 60000;
  o->preface_timeout_ms = 10000;
  o->request_timeout_ms = 30000;
  o->max_write_queue = 1 << 20;
  o->stream_window = 1 << 20;
  o->conn_window = 16 << 20;
  o->reset_burst = 1000;
  o->reset_rate = 33;
  o->backlog = 511;
  o->tls_handshake_timeout_ms = 10000;
}

static uint64_t sweep_interval(const sj_server_opts_t *o) {
  uint64_t t = 0;
  if (o->idle_timeout_ms)
    t = o->idle_timeout_ms;
  if (o->request_timeout_ms && (!t || o->request_timeout_ms < t))
    t = o->request_timeout_ms;
  if (o->tls_cert_file && o->tls_handshake_timeout_ms && (!t || o->tls_handshake_timeout_ms < t))
    t = o->tls_handshake_timeout_ms;
  if (o->preface_timeout_ms && (!t || o->preface_timeout_ms < t))
    t = o->preface_timeout_ms;
  t = t ? t / 4 : 1000;
  return t < 5 ? 5 : t > 1000 ? 1000 : t;
}

static int opts_valid(const sj_server_opts_t *o) {
  return o->max_concurrent_streams > 0 && o->max_header_list_size >= 256 && o->max_body > 0 &&
         o->max_connections > 0 && o->max_write_queue >= 16384 && o->stream_window >= 65535 &&
         o->stream_window <= INT32_MAX && o->conn_window <= INT32_MAX && o->backlog > 0 &&
         !o->tls_cert_file == !o->tls_key_file && (o->tls_cert_file || !o->tls_client_ca_file) &&
         (!o->tls_require_client_cert || o->tls_client_ca_file);
}

static void free_server(sj_server_t *s) {
  void (*done)(void *) = s->done;
  void *arg = s->done_arg;
  sj_req_free_list(s->free_reqs);
  sj_router_free(s->router);
  if (s->cbs)
    nghttp2_session_callbacks_del(s->cbs);
  if (s->opt)
    nghttp2_option_del(s->opt);
  sj_tls_ctx_free(s->tls);
  free(s);
  if (done)
    done(arg);
}

static void handle_done(sj_server_t *s) {
  if (--s->handles == 0 && s->closing)
    free_server(s);
}

static void on_listener_closed(uv_handle_t *h) {
  handle_done(h->data);
}

static void on_sweep_closed(uv_handle_t *h) {
  handle_done(h->data);
}

static void on_idle_closed(uv_handle_t *h) {
  sj_server_t *s = (sj_server_t *)((char *)h - offsetof(sj_server_t, fl.idle));
  handle_done(s);
}

static void sweep_cb(uv_timer_t *t);

int sj_server_new(uv_loop_t *loop, const sj_server_opts_t *opts, sj_server_t **out) {
  sj_server_opts_t o;
  if (opts)
    o = *opts;
  else
    sj_server_opts_default(&o);
  if (!loop || !opts_valid(&o))
    return SJ_EINVAL;
  sj_server_t *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->loop = loop;
  s->o = o;
  s->sweep_ms = sweep_interval(&o);
  if (sj_router_new(&s->router) < 0 || sj_srv_callbacks_new(&s->cbs) < 0 ||
      !(s->opt = sj_h2_option_new(1, o.reset_burst, o.reset_rate))) {
    free_server(s);
    return -ENOMEM;
  }
  int rv = o.tls_cert_file ? sj_tls_server_ctx_new(&o, &s->tls) : 0;
  if (rv < 0) {
    free_server(s);
    return rv;
  }
  /* The files are read; the caller's strings are not kept. */
  s->o.tls_cert_file = s->o.tls_key_file = s->o.tls_client_ca_file = NULL;
  /* From here on the handles exist; a failure below cannot happen (init of timers and idles
   * does not fail), so no half-built server needs closing. */
  uv_timer_init(loop, &s->sweep);
  s->sweep.data = s;
  sj_flusher_init(loop, &s->fl);
  s->handles = 2;
  uv_timer_start(&s->sweep, sweep_cb, s->sweep_ms, s->sweep_ms);
  uv_unref((uv_handle_t *)&s->sweep); /* connections keep the loop alive, not the timer */
  *out = s;
  return 0;
}

int sj_server_route(sj_server_t *s, const char *method, const char *pattern,
                    const sj_route_opts_t *ropts, sj_handler_fn fn, void *arg) {
  if (!fn || s->closing)
    return SJ_EINVAL;
  sj_route_info_t info;
  memset(&info, 0, sizeof info);
  info.fn = fn;
  info.arg = arg;
  if (ropts) {
    info.max_body = ropts->max_body;
    info.stream_body = ropts->stream_body != 0;
  }
  return sj_router_add(s->router, method, pattern, &info);
}

static void on_connection(uv_stream_t *l, int status) {
  sj_server_t *s = l->data;
  if (status < 0) {
    SJ_LOG_WARN(NET, "listener: %s", uv_strerror(status));
    return;
  }
  if (s->closing) {
    sj_tcp_reject(l);
    return;
  }
  if (s->st.conns_open >= s->o.max_connections) {
    sj_tcp_reject(l);
    s->st.conns_refused++;
    uint64_t now = uv_now(s->loop);
    if (now - s->last_refuse_log >= 1000 || s->st.conns_refused == 1) {
      s->last_refuse_log = now; /* one line per second at most under a connection flood */
      SJ_LOG_WARN(NET, "connection limit %u reached: refusing (%llu refused so far)",
                  s->o.max_connections, (unsigned long long)s->st.conns_refused);
    }
    return;
  }
  sj_srv_accept(s);
}

static int parse_ip(const char *host, uint16_t port, struct sockaddr_storage *ss) {
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return SJ_EINVAL;
}

int sj_server_listen(sj_server_t *s, const char *host, uint16_t port) {
  struct sockaddr_storage ss;
  if (s->closing || s->listening || !host || parse_ip(host, port, &ss) < 0)
    return SJ_EINVAL;
  int rv = uv_tcp_init(s->loop, &s->listener);
  if (rv < 0)
    return rv;
  s->listener.data = s;
  s->handles++;
  rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)&s->listener, s->o.backlog, on_connection);
  if (rv < 0) {
    SJ_LOG_ERR(NET, "listen on %s:%u: %s", host, port, uv_strerror(rv));
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    return rv;
  }
  int len = sizeof ss;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0)
    s->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                            : ((struct sockaddr_in6 *)&ss)->sin6_port);
  s->listening = 1;
  SJ_LOG_INFO(NET, "listening on %s port %u (%s)", host, s->port,
              s->tls ? "HTTP/2 over TLS 1.3" : "HTTP/2 cleartext");
  return 0;
}

uint16_t sj_server_port(const sj_server_t *s) {
  return s->listening ? s->port : 0;
}

void sj_server_set_gate(sj_server_t *s, sj_gate_fn fn, void *arg) {
  s->gate = fn;
  s->gate_arg = fn ? arg : NULL;
}

void sj_server_stats(const sj_server_t *s, sj_server_stats_t *out) {
  *out = s->st;
  out->bytes_queued = 0;
  for (const srv_conn_t *c = s->conns; c; c = c->next)
    if (c->h2.tr)
      out->bytes_queued += c->h2.tr->queued;
}

/* ---- Timeouts -------------------------------------------------------------------------------- */

static void sweep_requests(sj_server_t *s, srv_conn_t *c, uint64_t now) {
  uint64_t limit = s->o.request_timeout_ms;
  if (!limit)
    return;
  for (sj_req_t *r = c->reqs; r; r = r->next) {
    if (now - r->t_start < limit)
      continue;
    if ((r->flags & (REQ_SENT | REQ_PEER_ENDED)) == REQ_SENT) {
      sj_srv_reset_upload(c, r); /* answered long ago, the upload still dribbles in */
      continue;
    }
    if (r->flags & (REQ_ANSWERED | REQ_TIMED_OUT))
      continue;
    r->flags |= REQ_TIMED_OUT;
    s->st.requests_timed_out++;
    int status = (r->flags & REQ_PEER_ENDED) ? 503 : 408;
    sj_srv_log_drop(c, "stream %d: %.16s %.100s timed out after %llu ms: answered %d",
                    r->stream_id, sj_req_method(r), sj_req_path(r), (unsigned long long)limit,
                    status);
    sj_req_fail(r, status, "request timeout", NULL);
  }
}

/* Whether a reply on c waits only for the peer to open its flow-control window: a stream with
 * reply bytes pending whose window (or the connection's) is exhausted. A follow stream waiting
 * for new entries has nothing pending and is not held back by the peer. */
static int peer_holds_back(srv_conn_t *c) {
  nghttp2_session *ng = c->h2.ng;
  if (!ng)
    return 0;
  int conn_closed_window = nghttp2_session_get_remote_window_size(ng) <= 0;
  for (sj_req_t *r = c->reqs; r; r = r->next)
    if ((r->flags & REQ_ANSWERED) && !(r->flags & REQ_SENT) && sj_req_stream_pending(r) > 0 &&
        (conn_closed_window || nghttp2_session_get_stream_remote_window_size(ng, r->stream_id) <= 0))
      return 1;
  return 0;
}

/* Idle: with streams open, only output that has not moved for the limit counts (a quiet
 * long-lived stream is fine) — output stalled in the socket, or a reply the peer's flow-control
 * window has held back since the last DATA frame and the last request (a slow reader that never
 * opens its window). Without streams, idleness is measured from the last request (its HEADERS,
 * or its stream's close) or the accept — not from the last byte read: a peer trickling PINGs or
 * a preface byte by byte never sent a request and must not hold a slot for ever. */
static void sweep_idle(sj_server_t *s, srv_conn_t *c, uint64_t now) {
  uint64_t limit = s->o.idle_timeout_ms;
  if (!limit)
    return;
  int stalled = c->h2.tr->queued > 0 && now - c->last_active >= limit;
  if (c->reqs && !stalled && now - c->last_data_sent >= limit && now - c->last_request >= limit &&
      peer_holds_back(c)) {
    s->st.conns_idle_closed++;
    sj_srv_log_drop(c, "reply held back by the peer's flow-control window for %llu ms: closing",
                    (unsigned long long)(now - c->last_data_sent));
    sj_srv_conn_close(c, 0);
    return;
  }
  if (c->reqs && !stalled)
    return;
  if (!c->reqs && !stalled && now - c->last_request < limit)
    return;
  s->st.conns_idle_closed++;
  SJ_LOG_DEBUG(NET, "%s no request for %llu ms%s: closing", c->h2.tr->peer,
               (unsigned long long)(now - c->last_request), stalled ? ", output stalled" : "");
  if (stalled) {
    sj_srv_conn_close(c, 0);
  } else {
    sj_srv_conn_goaway(c);
    sj_srv_conn_close(c, 1);
  }
}

/* A TLS handshake that has not completed in time (a slow-loris at the TLS layer). */
static int sweep_handshake(srv_conn_t *c, uint64_t now) {
  uint64_t d = c->h2.tr->hs_deadline;
  if (!d || now < d)
    return 0;
  SJ_LOG_INFO(NET, "%s TLS handshake timed out: closing", c->h2.tr->peer);
  sj_srv_conn_close(c, 0);
  return 1;
}

/* The client's preface and first SETTINGS did not arrive in time (a slow-loris before HTTP/2
 * even starts). */
static int sweep_preface(sj_server_t *s, srv_conn_t *c, uint64_t now) {
  if (!c->preface_deadline || now < c->preface_deadline)
    return 0;
  s->st.conns_preface_timed_out++;
  sj_srv_log_drop(c, "no HTTP/2 preface and SETTINGS within %llu ms: closing",
                  (unsigned long long)s->o.preface_timeout_ms);
  sj_srv_conn_close(c, 0);
  return 1;
}

static void sweep_cb(uv_timer_t *t) {
  sj_server_t *s = t->data;
  uint64_t now = uv_now(s->loop);
  /* Closing is asynchronous: the list changes only in the close callbacks, not in this walk. */
  for (srv_conn_t *c = s->conns; c; c = c->next) {
    if (c->closing) {
      /* A graceful close waits for the output; don't wait forever on a peer that doesn't read. */
      if (c->h2.tr &&
          ((s->closing && now >= s->deadline) ||
           now - c->last_active >= (s->o.idle_timeout_ms ? s->o.idle_timeout_ms : 10000)))
        c->h2.tr->ops->close(c->h2.tr, 0);
      continue;
    }
    if (s->closing && now >= s->deadline) {
      SJ_LOG_INFO(NET, "%s shutdown deadline: closing with streams in flight", c->h2.tr->peer);
      sj_srv_conn_close(c, 0);
      continue;
    }
    if (sweep_handshake(c, now) || sweep_preface(s, c, now))
      continue;
    sweep_requests(s, c, now);
    sweep_idle(s, c, now);
  }
}

/* ---- Rate-limited log lines for dropped work -------------------------------------------------- */

void sj_srv_log_drop(srv_conn_t *c, const char *fmt, ...) {
  sj_server_t *s = c->srv;
  if (!sj_log_enabled(SJ_LOG_LEVEL_INFO, NET))
    return;
  uint64_t now = uv_now(s->loop);
  if (now - c->log_window >= 1000) {
    c->log_window = now;
    c->log_lines = 0;
  }
  if (now - s->log_window >= 1000) {
    s->log_window = now;
    s->log_lines = 0;
  }
  if (c->log_lines >= SJ_DROP_LOG_CONN || s->log_lines >= SJ_DROP_LOG_SERVER) {
    s->log_suppressed++;
    return;
  }
  c->log_lines++;
  s->log_lines++;
  char msg[400], more[64] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (s->log_suppressed)
    snprintf(more, sizeof more, " (%llu similar lines suppressed)",
             (unsigned long long)s->log_suppressed);
  s->log_suppressed = 0;
  SJ_LOG_INFO(NET, "%s %s%s", c->h2.tr ? c->h2.tr->peer : "?", msg, more);
}

/* ---- Shutdown -------------------------------------------------------------------------------- */

void sj_server_conn_gone(sj_server_t *s) {
  if (!s->closing || s->conns || uv_is_closing((uv_handle_t *)&s->sweep))
    return;
  uv_close((uv_handle_t *)&s->sweep, on_sweep_closed);
  sj_flusher_close(&s->fl, on_idle_closed);
}

void sj_server_close(sj_server_t *s, uint64_t grace_ms, void (*done)(void *arg), void *arg) {
  if (s->closing)
    return;
  s->closing = 1;
  s->done = done;
  s->done_arg = arg;
  s->deadline = uv_now(s->loop) + grace_ms;
  if (s->listening) {
    s->listening = 0;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  }
  for (srv_conn_t *c = s->conns; c; c = c->next)
    sj_srv_conn_goaway(c);
  uint64_t tick = grace_ms < s->sweep_ms ? grace_ms : s->sweep_ms;
  uv_timer_start(&s->sweep, sweep_cb, tick ? tick : 1, tick ? tick : 1);
  sj_server_conn_gone(s);
}
