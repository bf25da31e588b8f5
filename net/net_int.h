/* net_int.h — layouts shared by net's own .c files; never included outside net/.
 *
 * Three layers, each knowing only the one below through a small interface:
 *   transport (conn.c: TCP; tls.c: TLS over a TCP transport)   bytes in via
 *       sj_conn_events_t.on_read, out via ops->write; the session cannot tell TCP from TLS
 *   HTTP/2 session (session.c + h2_server.c / h2_client.c)   nghttp2, frames coalesced per flush
 *   requests (req.c, router.c)   routing, accessors, replies
 * Everything runs on one loop thread; nothing here locks. */
#ifndef SJ_NET_INT_H
#define SJ_NET_INT_H

#include "net/net.h"

#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#define NET "net" /* logging subsystem */

/* ================================================================================================
 * Transport
 * ============================================================================================== */

typedef struct sj_conn sj_conn_t;

/* What the layer above a transport implements. up is the pointer given at creation. After the
 * transport was asked to close, only on_closed is called. */
typedef struct {
  /* Client side: the connection is established (0) or failed (-errno). After a failure the
   * transport closes itself (on_closed follows). */
  void (*on_connect)(void *up, int status);
  /* Bytes arrived. They are borrowed for the call only (the buffer is reused). */
  void (*on_read)(void *up, const uint8_t *p, size_t n);
  /* The peer closed (err 0) or a read/write failed (-errno). Called at most once. */
  void (*on_eof)(void *up, int err);
  /* A write finished: queued fell, the layer above may produce more. */
  void (*on_drain)(void *up);
  /* The transport is closed and about to be freed; the last call. */
  void (*on_closed)(void *up);
} sj_conn_events_t;

typedef struct {
  /* Appends n bytes to the output buffer (copied). 0 or -ENOMEM. Nothing is sent before flush. */
  int (*write)(sj_conn_t *c, const uint8_t *p, size_t n);
  /* Starts writing the buffered bytes with one uv_write unless one is in flight (then they go
   * when it completes). Buffers are double: one in flight, one filling. */
  void (*flush)(sj_conn_t *c);
  /* Stops (1) or resumes (0) reading: backpressure when the output does not drain. */
  void (*read_pause)(sj_conn_t *c, int pause);
  /* Closes. graceful: after the buffered output is written. Idempotent; a non-graceful call
   * overrides a pending graceful one. on_closed follows from the loop. */
  void (*close)(sj_conn_t *c, int graceful);
} sj_conn_ops_t;

struct sj_conn {
  const sj_conn_ops_t *ops;
  const sj_conn_events_t *ev;
  void *up;
  size_t queued; /* bytes buffered or in flight, not yet confirmed written (for TLS: plaintext
                    not yet encrypted plus the ciphertext the TCP transport holds) */
  char peer[64]; /* "127.0.0.1:5000" / "[::1]:5000" */
  uint64_t hs_deadline; /* loop time by which a server-side TLS handshake must complete; 0 when
                           none is pending (TCP, or done). The server's sweep enforces it. */
  const char *peer_cn;  /* CN of the client certificate a TLS server verified; NULL otherwise.
                           Owned by the transport, valid until on_closed. */
  uint8_t peer_ip[16];  /* the peer's IP address in network order (4 or 16 bytes), for the
                           per-address connection cap; set on accept */
  uint8_t peer_ip_len;  /* 4, 16, or 0 when unknown */
};

/* Accepts one connection from listener and starts reading. listener->data is the sj_server_t
 * (server.c sets it): when that server has TLS configured, the connection is wrapped in the TLS
 * layer (sj_tls_accept), so h2_server.c serves TLS without knowing it. Errors: libuv's, -ENOMEM
 * (the socket is then closed and no event is ever called). */
int sj_tcp_accept(uv_stream_t *listener, const sj_conn_events_t *ev, void *up, sj_conn_t **out);
/* The plain TCP accept under sj_tcp_accept and sj_tls_accept. Same contract. */
int sj_tcp_accept_plain(uv_stream_t *listener, const sj_conn_events_t *ev, void *up,
                        sj_conn_t **out);
/* Accepts one connection and closes it at once (connection limit). */
void sj_tcp_reject(uv_stream_t *listener);
/* Starts connecting to sa; ev->on_connect reports the outcome. */
int sj_tcp_connect(uv_loop_t *loop, const struct sockaddr *sa, const sj_conn_events_t *ev, void *up,
                   sj_conn_t **out);
/* Formats sa as "ip:port" / "[ip]:port" into out. */
void sj_sockaddr_str(const struct sockaddr *sa, char *out, size_t cap);

/* ---- TLS (tls.c) ----------------------------------------------------------------------------
 * TLS 1.3 + ALPN "h2" through OpenSSL, as a transport stacked on a TCP transport: the TCP
 * transport's events go to the TLS layer, which feeds ciphertext to OpenSSL through memory BIOs
 * (never a socket BIO, never blocking) and hands plaintext up. Plaintext written before the
 * handshake completes is held and sent after it. A client's on_connect is reported once the
 * handshake completed and the server chose "h2". */

typedef struct sj_tls_ctx sj_tls_ctx_t; /* an SSL_CTX with our settings; one per server/client */

/* Builds the server context from o->tls_* (files read now). Errors: see sj_server_new. */
int sj_tls_server_ctx_new(const sj_server_opts_t *o, sj_tls_ctx_t **out);
/* Builds the client context from o->tls_*. Errors: see sj_client_new. */
int sj_tls_client_ctx_new(const sj_client_opts_t *o, sj_tls_ctx_t **out);
/* Frees ctx (connections still open keep their own reference). NULL is ignored. */
void sj_tls_ctx_free(sj_tls_ctx_t *ctx);

/* Accepts one connection from listener as a TLS server. hs_timeout_ms (0 = none) sets
 * (*out)->hs_deadline. Errors as sj_tcp_accept. */
int sj_tls_accept(sj_tls_ctx_t *ctx, uv_stream_t *listener, uint64_t hs_timeout_ms,
                  const sj_conn_events_t *ev, void *up, sj_conn_t **out);
/* Connects to sa and runs the client handshake, verifying the certificate against name (a DNS
 * name, or an IP address literal; copied). on_connect reports 0 after the handshake, or -errno,
 * SJ_EVERIFY, SJ_EPROTO. Errors as sj_tcp_connect, -ENOMEM. */
int sj_tls_connect(sj_tls_ctx_t *ctx, uv_loop_t *loop, const struct sockaddr *sa, const char *name,
                   const sj_conn_events_t *ev, void *up, sj_conn_t **out);

/* ================================================================================================
 * HTTP/2 session plumbing shared by server and client (session.c)
 * ============================================================================================== */

typedef struct sj_h2 sj_h2_t;
typedef struct sj_flusher sj_flusher_t;

struct sj_h2 {
  nghttp2_session *ng; /* owned by the server/client connection */
  sj_conn_t *tr;       /* the transport; NULL once closed */
  size_t max_queue;    /* mem_send stops while tr->queued is above it */
  int in_recv;         /* inside mem_recv: submissions are sent when it returns */
  int dead;            /* closing: never pump again */
  int listed;          /* on the flusher's list */
  sj_h2_t *fnext, *fprev;
  sj_flusher_t *fl;
  /* The owner's "produce output now": pump + its own after-send checks. */
  void (*kick)(sj_h2_t *h);
};

/* One uv_idle per server/client: sessions that have something to send from outside a read
 * callback (a handler answering from a timer or an async) are listed and kicked once per loop
 * iteration, so many replies share one uv_write. */
struct sj_flusher {
  uv_idle_t idle;
  sj_h2_t *head;
};

int sj_flusher_init(uv_loop_t *loop, sj_flusher_t *fl);
/* Closes the idle handle; cb as for uv_close. */
void sj_flusher_close(sj_flusher_t *fl, uv_close_cb cb);

/* Something was submitted: send it soon (now if inside a read, the read path sends after). */
void sj_h2_want_send(sj_h2_t *h);
/* Removes h from its flusher list (when closing). */
void sj_h2_unlist(sj_h2_t *h);
/* Feeds bytes to nghttp2. Returns 0 or a negative nghttp2 error (fatal: close). */
int sj_h2_recv(sj_h2_t *h, const uint8_t *p, size_t n);
/* Moves frames from nghttp2 to the transport until nothing is left or the queue bound is hit,
 * then flushes. Returns 0 or a negative nghttp2 error (fatal: close). */
int sj_h2_pump(sj_h2_t *h);
/* True when nghttp2 neither wants to read nor to write (GOAWAY exchanged, no streams). */
int sj_h2_finished(const sj_h2_t *h);

/* Options every session uses: flood protections on. Server-only settings are applied too when
 * server is nonzero. Returns NULL on allocation failure. */
nghttp2_option *sj_h2_option_new(int server, uint32_t reset_burst, uint32_t reset_rate);

/* The :status / content-length strings for a status code ("200"); NULL if out of 100..999. */
const char *sj_h2_status_str(int status, char buf[4]);

/* ================================================================================================
 * Routing and percent-decoding (router.c)
 * ============================================================================================== */

#define SJ_MAX_PARAMS 16

typedef struct sj_router sj_router_t;

typedef struct {
  sj_handler_fn fn;
  void *arg;
  size_t max_body;
  int stream_body;
  const char *method;
  size_t nparams;
  const char *param_names[SJ_MAX_PARAMS];
} sj_route_info_t;

/* Where a parameter's raw value sits in the path. */
typedef struct {
  uint32_t off;
  uint32_t len;
} sj_span_t;

int sj_router_new(sj_router_t **out);
void sj_router_free(sj_router_t *rt);
int sj_router_add(sj_router_t *rt, const char *method, const char *pattern,
                  const sj_route_info_t *info);
/* Matches path (without query, plen bytes). On a match returns the route and fills spans (one
 * per route parameter, in pattern order). Otherwise NULL and *status is 404, or 405 with the
 * allowed methods written to allow (", "-separated, NUL-terminated). */
const sj_route_info_t *sj_router_match(const sj_router_t *rt, const char *method, const char *path,
                                       size_t plen, sj_span_t *spans, int *status, char *allow,
                                       size_t allowcap);

/* Percent-decodes n bytes of in into out (room for n bytes). plus_space: '+' becomes ' '.
 * Returns the decoded length, or SJ_EFORMAT for a bad escape or %00. */
long sj_pct_decode(const char *in, size_t n, int plus_space, char *out);

/* ================================================================================================
 * URLs (url.c)
 * ============================================================================================== */

typedef struct {
  char host[256]; /* without brackets */
  uint16_t port;
  int tls;             /* "https" */
  char authority[270]; /* host[:port] as sent in :authority */
  const char *path;    /* points into the parsed string: "/..." or "" if none */
} sj_url_t;

/* Parses "http://host[:port][/path]" or "https://..." (default ports 80, 443). Errors: SJ_EINVAL
 * (malformed, another scheme, host too long). */
int sj_url_parse(const char *url, sj_url_t *out);

/* ================================================================================================
 * Server internals (h2_server.c, req.c)
 * ============================================================================================== */

typedef struct srv_conn srv_conn_t;

/* A header or a decoded parameter stored in a request's arena (offsets, since it may move). */
typedef struct {
  uint32_t name_off, name_len;
  uint32_t value_off, value_len;
} sj_kv_t;

typedef struct {
  sj_kv_t *v;
  size_t n, cap;
} sj_kvs_t;

enum {
  REQ_PEER_ENDED = 1 << 0,  /* END_STREAM received: the whole request is in */
  REQ_DISPATCHED = 1 << 1,  /* the handler was called */
  REQ_ANSWERED = 1 << 2,    /* a reply was submitted (memory or stream start) */
  REQ_EOF = 1 << 3,         /* the reply's data is complete (memory reply or stream end) */
  REQ_SENT = 1 << 4,        /* END_STREAM of the reply went out */
  REQ_DISCARD = 1 << 5,     /* ignore further body bytes (413, 431, timeout, error reply) */
  REQ_HDR_TOO_BIG = 1 << 6, /* header list over the limit: answer 431 */
  REQ_TIMED_OUT = 1 << 7,   /* the server answered for the handler */
  REQ_DEFERRED = 1 << 8,    /* the data source returned DEFERRED: resume on write */
  REQ_DRAIN = 1 << 9,       /* pending fell to zero: run the drain callback */
  REQ_BAD_HEADER = 1 << 10, /* a header could not be stored */
  REQ_RESET = 1 << 11,      /* we reset the stream (upload cut after an early reply) */
};

/* Body bytes a client may keep sending beyond a route's limit after an early reply (413, ...)
 * before the stream is reset. An immediate RST_STREAM(NO_ERROR) is what RFC 9113 §8.1 allows,
 * but curl 7.88 then drops the reply it already received; a bounded discard keeps such clients
 * working while still stopping a runaway upload. */
#define SJ_DISCARD_GRACE (1u << 20)

/* Longest client-certificate CN kept, in bytes of UTF-8 (64 characters of CJK fit). */
#define SJ_PEER_CN_MAX 191

struct sj_req {
  int refs;         /* the server's (while the stream is open) + the handlers' */
  unsigned flags;   /* REQ_* */
  sj_server_t *srv; /* for recycling; NULL once detached while still referenced */
  srv_conn_t *conn; /* NULL once the stream is gone */
  int32_t stream_id;
  uint64_t t_start; /* loop time of the HEADERS, for the request timeout */
  size_t hdr_bytes; /* header list size so far (RFC 9113 §6.5.2 accounting) */
  size_t max_body;  /* the route's limit once routed */
  sj_buf_t arena;   /* NUL-terminated strings: method, path, headers, params, query */
  uint32_t method_off, path_off, path_len, query_off, query_len;
  int has_method, has_path;
  sj_kvs_t hdrs;    /* request headers, pseudo-headers included */
  sj_kvs_t params;  /* decoded route parameters */
  sj_kvs_t query;   /* decoded query parameters */
  sj_buf_t body;    /* collected body */
  size_t body_seen; /* body bytes received (collected or streamed) */
  const sj_route_info_t *route;
  /* The reply. Data comes from an owned block (out_p) or from outq (copied writes). */
  const uint8_t *out_p;
  size_t out_n, out_off;
  void (*out_free)(void *);
  void *out_owned;
  sj_buf_t outq;
  size_t outq_off;
  char status[4];
  char clen[24];
  /* Caller hooks. */
  void *data;
  sj_req_body_cb body_cb;
  void *body_arg;
  sj_req_close_cb close_cb;
  void *close_arg;
  sj_req_drain_cb drain_cb;
  void *drain_arg;
  char peer[64];
  /* The peer certificate's CN, copied by the first sj_req_peer_cert_cn call (tls.c). */
  char peer_cn[SJ_PEER_CN_MAX + 1];
  int peer_cn_copied;
  sj_req_t *next, *prev; /* the connection's live requests, or the free list */
};

struct srv_conn {
  sj_h2_t h2; /* first: the flusher hands us back as sj_h2_t */
  sj_server_t *srv;
  sj_req_t *reqs;       /* live streams */
  uint64_t last_active; /* loop time of the last read or completed write */
  uint64_t last_request; /* loop time of the accept, of the last request's HEADERS, or of the
                            last stream's close: what the idle timeout measures from when no
                            stream is open (a byte that is not a request is not activity) */
  uint64_t last_data_sent; /* loop time of the accept or of the last DATA frame sent: a reply the
                              peer's flow-control window holds back makes no progress */
  uint64_t preface_deadline; /* loop time by which the client's preface and first SETTINGS
                                must have arrived; 0 once they did (or no deadline) */
  uint64_t log_window;  /* start of the current second of rate-limited log lines */
  unsigned log_lines;   /* lines written in that second */
  int closing;
  int read_paused;
  int drain_pending; /* some request has REQ_DRAIN set */
  srv_conn_t *next, *prev;
};

struct sj_server {
  uv_loop_t *loop;
  sj_server_opts_t o;
  uv_tcp_t listener;
  int listening;
  uint16_t port;
  uv_timer_t sweep; /* timeouts, every sweep_ms */
  uint64_t sweep_ms;
  sj_flusher_t fl;
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  sj_router_t *router;
  sj_tls_ctx_t *tls; /* NULL: cleartext h2 */
  srv_conn_t *conns;
  sj_req_t *free_reqs;
  size_t nfree;
  sj_server_stats_t st;
  int closing;
  uint64_t deadline; /* loop time after which remaining connections are cut */
  int handles;       /* our uv handles not yet closed */
  void (*done)(void *);
  void *done_arg;
  uint64_t last_refuse_log;
  uint64_t last_addr_refuse_log;
  sj_gate_fn gate; /* sj_server_set_gate; NULL = none */
  void *gate_arg;
  uint64_t log_window; /* start of the current second of rate-limited log lines */
  unsigned log_lines;  /* lines written in that second, server-wide */
  uint64_t log_suppressed; /* lines suppressed since the last one written */
};

/* req.c */
sj_req_t *sj_req_alloc(sj_server_t *s, srv_conn_t *c, int32_t stream_id);
/* Frees a free list of recycled requests. */
void sj_req_free_list(sj_req_t *head);
/* The stream is gone: unlink, run the close callback, drop the server's reference. */
void sj_req_detach(sj_req_t *r, int err);
/* Arena helpers: append a NUL-terminated copy, return its offset or -1. */
long sj_req_store(sj_req_t *r, const void *p, size_t n);
int sj_kvs_push(sj_kvs_t *k, sj_kv_t kv);
/* Replies used by the server itself (404, 405, 413, ...), JSON {"error": msg}, with an optional
 * extra header. Never fails visibly: on failure the stream is reset. */
void sj_req_fail(sj_req_t *r, int status, const char *msg, const sj_header_t *extra);
/* The nghttp2 data source for replies. */
ssize_t sj_req_read_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud);
/* Parses the query into r->query. 0 or SJ_EFORMAT. */
int sj_req_parse_query(sj_req_t *r);
/* Decodes route parameters into r->params. 0 or SJ_EFORMAT. */
int sj_req_set_params(sj_req_t *r, const sj_route_info_t *ri, const sj_span_t *spans);

/* h2_server.c */
int sj_srv_callbacks_new(nghttp2_session_callbacks **out);
/* Accepts a pending connection on s->listener and starts its session. */
void sj_srv_accept(sj_server_t *s);
/* Sends GOAWAY; the connection closes once its streams are done. */
void sj_srv_conn_goaway(srv_conn_t *c);
void sj_srv_conn_close(srv_conn_t *c, int graceful);
/* Runs drain callbacks of c's requests (outside nghttp2 callbacks). */
void sj_srv_run_drains(srv_conn_t *c);
/* Stops a client still uploading to a stream we answered: RST_STREAM(NO_ERROR), once. */
void sj_srv_reset_upload(srv_conn_t *c, sj_req_t *r);

/* server.c: a connection was freed (shutdown may complete). */
void sj_server_conn_gone(sj_server_t *s);

/* Logs, at INFO and prefixed with c's peer, work the server dropped on its own (an answer it gave
 * without a handler, a stream it refused or reset, a GOAWAY with an error code) — at most
 * SJ_DROP_LOG_CONN lines a second per connection and SJ_DROP_LOG_SERVER per server; the next line
 * written says how many were suppressed. */
#define SJ_DROP_LOG_CONN 5
#define SJ_DROP_LOG_SERVER 50
void sj_srv_log_drop(srv_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
