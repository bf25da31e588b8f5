/* net — HTTP/2 server and client on libuv + nghttp2: connections, streams, routes, limits and
 * timeouts. It knows nothing of records; node/ and tools/ build their APIs on it.
 *
 * Layers (net_int.h): a byte transport (TCP, or TLS over TCP) <-> an HTTP/2 session (nghttp2) <->
 * request handlers. Cleartext HTTP/2 with prior knowledge ("http://" URLs), or HTTP/2 over TLS 1.3
 * negotiated with ALPN "h2" ("https://" URLs; a server with tls_cert_file set). docs/TLS.md.
 *
 * LOOP AND THREADS. The module runs on the caller's uv_loop_t. Every function here, except
 * sj_server_opts_default, sj_client_opts_default and sj_http_fetch, must be called on the thread
 * that runs that loop, and every callback is made on it. A request object is not thread-safe:
 * another thread (e.g. a node's writer thread) that finishes work for a request posts back to the
 * loop through its own uv_async_t and calls sj_req_* from the async callback. sj_req_ref/unref are
 * loop-thread only too: take the reference in the handler, before handing the request over.
 *
 * ERRORS are the codes of common/common.h: SJ_EINVAL (bad argument or call out of order),
 * SJ_ECLOSED (the stream or connection is gone: reset by the peer, timed out, server closing),
 * SJ_ETIMEDOUT, SJ_ETOOBIG, SJ_EPROTO (peer broke HTTP/2), SJ_EBUSY (the peer refused the stream:
 * safe to retry), -ENOMEM, and libuv's negative errno values (e.g. -ECONNREFUSED, -EADDRINUSE).
 * Out-parameters are written only on success. An asynchronous call that returns an error never
 * calls its callback; one that returns 0 calls it exactly once, later, on the loop.
 *
 * LOGGING: subsystem "net", at the place an error is handled, with peer address and stream id.
 * Work the server drops on its own is logged at INFO: answers it gives without a handler (400,
 * 408, 413, 431, 503), uploads it cuts, streams it refuses, GOAWAYs it sends with an error code
 * (also when nghttp2 ends a session itself: reset rate limit, stream limit), connections it
 * refuses or times out. Those lines are rate-limited (5 a second per connection, 50 a second per
 * server; the next line says how many were suppressed) so that an attack cannot flood the log.
 * Header names are lower-case everywhere (HTTP/2 requires it). Header values coming from the
 * network never contain NUL, CR or LF (nghttp2 rejects such fields), so C strings are safe. */
#ifndef SJ_NET_H
#define SJ_NET_H

#include "common/common.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* One header field. name must be lower-case. Both are NUL-terminated and borrowed. */
typedef struct {
  const char *name;
  const char *value;
} sj_header_t;

/* ================================================================================================
 * SERVER
 * ============================================================================================== */

typedef struct sj_server sj_server_t;
typedef struct sj_req sj_req_t;

typedef struct {
  uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS per connection; 128.
                                      Streams beyond it are refused (RST_STREAM REFUSED_STREAM)
                                      before the client acknowledged our SETTINGS, and are a
                                      connection error (GOAWAY PROTOCOL_ERROR) after. */
  uint32_t max_header_list_size;   /* SETTINGS_MAX_HEADER_LIST_SIZE, bytes counted as in RFC 9113
                                      §6.5.2 (name + value + 32 per field); 16384. A larger
                                      request is answered 431 without reaching a handler. */
  size_t max_body;                 /* request body limit for routes that set none; 1 MiB */
  uint32_t max_connections;        /* connections beyond it are accepted and closed; 1024 */
  uint32_t max_conns_per_addr;     /* connections from one IP address (IPv6: one /64) beyond it
                                      are accepted and closed (so that one peer cannot take
                                      every slot); 128; 0 = no cap */
  uint64_t idle_timeout_ms;        /* close a connection without open streams this long after its
                                      last request began or ended (or its accept): bytes that
                                      are not requests (PING, SETTINGS, a trickled preface) do
                                      not count as activity; also a connection whose output has
                                      not moved for this long; 60000; 0 = never */
  uint64_t preface_timeout_ms;     /* close a connection whose client preface and first
                                      SETTINGS frame have not arrived this long after the accept
                                      (for TLS: handshake included); 10000; 0 = never */
  uint64_t request_timeout_ms;     /* from a request's HEADERS until its response starts; the
                                      server answers 408 (body still arriving) or 503 (handler too
                                      slow) and the handler's later reply gets SJ_ECLOSED; 30000;
                                      0 = never */
  size_t max_write_queue;          /* bytes buffered for the socket per connection; above it the
                                      session stops producing frames and reading; 1 MiB */
  uint32_t stream_window;          /* initial per-stream receive window; 1 MiB */
  uint32_t conn_window;            /* connection receive window; 16 MiB */
  uint32_t reset_burst;            /* incoming RST_STREAM rate limit (rapid-reset protection):  */
  uint32_t reset_rate;             /*   token bucket burst and refill per second; 1000 and 33   */
  int backlog;                     /* listen(2) backlog; 511 */
  /* TLS. With tls_cert_file set the server speaks only TLS 1.3 and only HTTP/2 (ALPN "h2"; a
   * client that offers no ALPN or no "h2" gets a no_application_protocol alert). The files are
   * PEM and read once, by sj_server_new (the strings need only live during that call). */
  const char *tls_cert_file;      /* certificate chain, leaf first; NULL = cleartext h2 */
  const char *tls_key_file;       /* its private key (unencrypted PEM); required with the above */
  const char *tls_client_ca_file; /* CAs for client certificates: a client may present one and
                                     it is verified against these; NULL = never asked for */
  int tls_require_client_cert;    /* nonzero: refuse clients without a valid certificate
                                     (mutual TLS); needs tls_client_ca_file */
  uint64_t tls_handshake_timeout_ms; /* close a connection whose handshake has not completed
                                        after this long; 10000; 0 = never (the idle timeout
                                        still applies) */
} sj_server_opts_t;

/* Fills o with the defaults above. Any thread. */
void sj_server_opts_default(sj_server_opts_t *o);

/* Creates a server on loop. opts may be NULL (defaults); it is copied. With TLS configured the
 * certificate, key and client CA files are read here (the reason is logged with OpenSSL's error
 * string). Errors: SJ_EINVAL (bad option; a key without a certificate, or the key does not match
 * the certificate), -errno (a file cannot be read: -ENOENT, -EACCES), SJ_EFORMAT (a file is not
 * valid PEM / holds no certificate or key), -ENOMEM. */
int sj_server_new(uv_loop_t *loop, const sj_server_opts_t *opts, sj_server_t **out);

/* A request handler. For a collecting route it is called once the whole request (headers and
 * body) arrived; for a body-streaming route as soon as the headers arrived (the body follows
 * through sj_req_set_body_cb). The server holds a reference to req while the stream is open; a
 * handler that answers later takes its own with sj_req_ref. It must eventually answer (or the
 * request timeout will). */
typedef void (*sj_handler_fn)(sj_req_t *req, void *arg);

typedef struct {
  size_t max_body; /* request body limit in bytes; 0 = the server's max_body. Exceeding it
                      (content-length announced or bytes counted) answers 413 without calling
                      the handler; further body bytes are discarded, and the stream is reset
                      (RST_STREAM NO_ERROR) if 1 MiB more arrives or the upload stalls beyond
                      the request timeout. */
  int stream_body; /* nonzero: deliver the body in chunks (sj_req_set_body_cb), not collected */
} sj_route_opts_t;

/* Adds a route: method ("GET", "POST", ...) and a pattern of '/'-separated segments, each a
 * literal or "{name}" (one non-empty segment), or a final "{name*}" (the rest of the path,
 * slashes included, possibly empty). Example: "/v1/records/{region}/{seq}".
 * When several routes match, the more specific wins (compared segment by segment: literal before
 * {name} before {name*}). A path that matches no route is answered 404, one that matches only
 * with other methods 405 with an Allow header, a parameter with an invalid %-escape (or %00) 400.
 * Strings are copied; arg is passed to fn. ropts may be NULL. Routes must be added before
 * sj_server_listen. Errors: SJ_EINVAL (bad pattern, duplicate route), -ENOMEM. */
int sj_server_route(sj_server_t *s, const char *method, const char *pattern,
                    const sj_route_opts_t *ropts, sj_handler_fn fn, void *arg);

/* Binds and listens on host ("127.0.0.1", "::", "0.0.0.0", numeric only) and port (0 picks a
 * free one; see sj_server_port). Errors: SJ_EINVAL, -EADDRINUSE and other libuv errors. */
int sj_server_listen(sj_server_t *s, const char *host, uint16_t port);

/* The bound port, or 0 before a successful sj_server_listen. */
uint16_t sj_server_port(const sj_server_t *s);

typedef struct {
  uint64_t conns_accepted;     /* connections served */
  uint64_t conns_refused;      /* connections closed at once: max_connections or
                                  max_conns_per_addr reached */
  uint64_t conns_refused_addr; /* of those, for max_conns_per_addr */
  uint64_t conns_preface_timed_out; /* closed by preface_timeout_ms */
  uint64_t conns_open;         /* connections open now */
  uint64_t conns_idle_closed;  /* connections closed by the idle timeout */
  uint64_t requests;           /* requests that reached routing */
  uint64_t requests_timed_out; /* answered 408/503 by the request timeout */
  uint64_t streams_open;       /* requests alive now (server side of the stream open) */
  uint64_t bytes_queued;       /* bytes buffered for the sockets of all connections now (for
                                  TLS: plaintext not yet encrypted plus ciphertext); each
                                  connection holds at most about max_write_queue + one frame */
} sj_server_stats_t;

void sj_server_stats(const sj_server_t *s, sj_server_stats_t *out);

/* A check run on every request once its headers arrived, before routing (so 404s count too) and
 * before any handler: a rate limit, say. It returns 0 to let the request through, or nonzero once
 * it answered req itself (sj_req_respond*; the body that may follow is discarded; a gate that
 * returns nonzero without answering gets a 500 sent for it). req is borrowed for the call; the
 * request's headers, method, path and peer are available, its body is not. fn NULL removes the
 * gate. Loop thread; may be set at any time. */
typedef int (*sj_gate_fn)(sj_req_t *req, void *arg);
void sj_server_set_gate(sj_server_t *s, sj_gate_fn fn, void *arg);

/* Graceful shutdown: stops accepting, sends GOAWAY on every connection, lets streams in flight
 * finish for up to grace_ms, then closes what remains (their on-close callbacks run with
 * SJ_ECLOSED), closes every handle and frees s. done(arg) is called on the loop when the last
 * handle is closed; after it uv_loop_close can succeed. done may be NULL. Requests a handler still
 * references stay valid (their replies return SJ_ECLOSED) until unreferenced. Call once. */
void sj_server_close(sj_server_t *s, uint64_t grace_ms, void (*done)(void *arg), void *arg);

/* ---- Requests ----------------------------------------------------------------------------------
 * Strings returned by accessors are NUL-terminated, owned by req and valid while the caller holds
 * a reference (inside the handler the server's own reference suffices). */

void sj_req_ref(sj_req_t *req);
/* Drops a reference; the last one frees req. */
void sj_req_unref(sj_req_t *req);

const char *sj_req_method(const sj_req_t *req);
/* The :path up to '?', as sent (not decoded). */
const char *sj_req_path(const sj_req_t *req);
/* The route parameter name, percent-decoded ('+' stays '+'); NULL if the route has none. */
const char *sj_req_param(const sj_req_t *req, const char *name);
/* The first query parameter name, percent-decoded with '+' as space; "" for "?name" or
 * "?name="; NULL if absent. A query with an invalid %-escape or %00 was already answered 400
 * before the handler, so values never contain NUL. */
const char *sj_req_query(const sj_req_t *req, const char *name);
/* The first header named lcname (lower-case); NULL if absent. len (may be NULL) receives the
 * value's length. Pseudo-headers (":authority") are available too. */
const char *sj_req_header(const sj_req_t *req, const char *lcname, size_t *len);
/* The collected body (empty for streaming routes); *len receives its length. Never NULL. */
const uint8_t *sj_req_body(const sj_req_t *req, size_t *len);
/* "127.0.0.1:54321" or "[::1]:54321". */
const char *sj_req_peer(const sj_req_t *req);
/* The subject common name (CN, UTF-8) of the client certificate the server verified against
 * tls_client_ca_file on req's connection: the identity mutual TLS gives a peer (a region node
 * maps it to its region). NULL on cleartext connections, when the client presented no
 * certificate, or when the CN is absent, over 191 bytes or holds a NUL. The string is copied into
 * req on the first call, which must happen while the stream is open (in the handler, say); it
 * then stays valid while req is referenced. Takes req non-const for that copy. */
const char *sj_req_peer_cert_cn(sj_req_t *req);
int32_t sj_req_stream_id(const sj_req_t *req);
/* A pointer for the caller's own use; NULL until set. */
void sj_req_set_data(sj_req_t *req, void *data);
void *sj_req_data(const sj_req_t *req);

/* Body-streaming routes: cb receives each chunk (borrowed, valid during the call) and finally a
 * call with end = 1 (n may be 0). Set it inside the handler; chunks that arrive while it is unset
 * are dropped. If the stream is reset, end never comes: the on-close callback does. */
typedef void (*sj_req_body_cb)(sj_req_t *req, const uint8_t *p, size_t n, int end, void *arg);
void sj_req_set_body_cb(sj_req_t *req, sj_req_body_cb cb, void *arg);

/* Called once when the stream is gone: err 0 once the complete response was sent, SJ_ECLOSED if
 * it was reset by the peer, timed out, or lost with its connection. After it, replies return
 * SJ_ECLOSED. req stays valid while referenced. Not called if the stream closed before it was
 * set. */
typedef void (*sj_req_close_cb)(sj_req_t *req, int err, void *arg);
void sj_req_set_on_close(sj_req_t *req, sj_req_close_cb cb, void *arg);

/* ---- Responses ---------------------------------------------------------------------------------
 * One reply per request: either sj_req_respond* or sj_req_stream_start + writes + end.
 * hdrs (borrowed during the call; lower-case names) must not include content-length, which
 * memory replies add. Errors: SJ_ECLOSED (stream gone — harmless, just unref), SJ_EINVAL (already
 * answered, bad status), -ENOMEM. Sending is coalesced and happens when control returns to the
 * loop. */

/* Replies with body copied (len may be 0; body may be NULL then). */
int sj_req_respond(sj_req_t *req, int status, const sj_header_t *hdrs, size_t nhdrs,
                   const void *body, size_t len);
/* Same, but takes ownership of body: free_fn(body) is called once it is sent or the stream is
 * gone, and also when this call fails. free_fn may be NULL (body is then static/borrowed and must
 * outlive the stream). */
int sj_req_respond_owned(sj_req_t *req, int status, const sj_header_t *hdrs, size_t nhdrs,
                         void *body, size_t len, void (*free_fn)(void *));
/* Replies {"error":"<message>"} as application/json (message is JSON-escaped). */
int sj_req_respond_error(sj_req_t *req, int status, const char *message);

/* Streamed reply: sends status and headers now; data follows with sj_req_stream_write at any
 * later time (from the loop) and ends with sj_req_stream_end. Writes are copied and queued
 * without bound: a producer checks sj_req_stream_pending and waits for the drain callback. */
int sj_req_stream_start(sj_req_t *req, int status, const sj_header_t *hdrs, size_t nhdrs);
int sj_req_stream_write(sj_req_t *req, const void *p, size_t n);
int sj_req_stream_end(sj_req_t *req);
/* Bytes written to the stream and not yet taken by the HTTP/2 layer (flow control may hold
 * them). */
size_t sj_req_stream_pending(const sj_req_t *req);
/* cb runs (on the loop, outside other callbacks) each time the pending bytes fall to zero. */
typedef void (*sj_req_drain_cb)(sj_req_t *req, void *arg);
void sj_req_set_on_drain(sj_req_t *req, sj_req_drain_cb cb, void *arg);

/* ================================================================================================
 * CLIENT
 * ============================================================================================== */

typedef struct sj_client sj_client_t;
typedef struct sj_call sj_call_t;

typedef struct {
  uint64_t connect_timeout_ms; /* TCP connect (and name resolution); 5000 */
  uint64_t request_timeout_ms; /* whole request, for requests that set none; 30000; 0 = never */
  size_t max_response_body;    /* collected bodies beyond it fail with SJ_ETOOBIG; 64 MiB */
  size_t max_write_queue;      /* bytes buffered for the socket; 1 MiB */
  uint32_t stream_window;      /* initial per-stream receive window; 1 MiB */
  uint32_t conn_window;        /* connection receive window; 16 MiB */
  int retry_refused;           /* resend requests the server refused unprocessed (REFUSED_STREAM,
                                  or beyond a GOAWAY's last stream), up to 3 times; 1 */
  /* TLS, for "https://" origins only (TLS 1.3, ALPN "h2"). The server's certificate must chain to
   * a CA in tls_ca_file (or, when NULL, OpenSSL's default store, which honours SSL_CERT_FILE and
   * SSL_CERT_DIR) and name the host: the URL's host (a DNS name, or an IP address matched against
   * the certificate's IP SANs) unless tls_server_name is set. Files are PEM, read once by
   * sj_client_new; the strings need only live during that call. */
  const char *tls_ca_file;     /* trusted CAs; NULL = the system's default store */
  const char *tls_cert_file;   /* client certificate chain for mutual TLS; NULL = none */
  const char *tls_key_file;    /* its private key; required with tls_cert_file */
  const char *tls_server_name; /* name to verify and send as SNI instead of the URL's host */
} sj_client_opts_t;

void sj_client_opts_default(sj_client_opts_t *o);

/* A client for one origin, "http://host:port" or "https://host:port" (a path is ignored; host may
 * be a name, resolved with getaddrinfo; the default ports are 80 and 443). It connects on the
 * first request, runs all requests as concurrent streams of one connection, and reconnects on the
 * next request after the connection dropped or the server sent GOAWAY. opts may be NULL; it is
 * copied. For https a failed handshake fails the waiting requests with SJ_EVERIFY (the server's
 * certificate does not verify or does not name the host), SJ_EPROTO (no TLS 1.3, no ALPN "h2",
 * not TLS at all) or SJ_ETIMEDOUT (connect_timeout_ms covers TCP and TLS); a server refusing our
 * client certificate shows as SJ_ECLOSED on the requests. Errors: SJ_EINVAL (bad URL, TLS
 * options on an http URL, a key without a certificate), -errno / SJ_EFORMAT (a TLS file cannot be
 * read / parsed; logged), -ENOMEM. */
int sj_client_new(uv_loop_t *loop, const char *url, const sj_client_opts_t *opts,
                  sj_client_t **out);

/* A response as the callbacks see it. Everything is borrowed, valid during the callback. */
typedef struct {
  int status;              /* 0 if no response headers arrived */
  const sj_header_t *hdrs; /* response headers (lower-case names), no pseudo-headers */
  size_t nhdrs;
  const uint8_t *body; /* collected body (mode without on_data); else NULL */
  size_t body_len;
} sj_resp_t;

/* Per-request callbacks. on_done is required; it is called exactly once, last, with err 0 when
 * the whole response arrived (any status), or SJ_ETIMEDOUT, SJ_ECLOSED (connection lost or
 * stream reset), SJ_ETOOBIG, SJ_EBUSY (refused, retries exhausted), SJ_EPROTO, -ECONNREFUSED and
 * other connect errors. Collecting mode (on_data NULL): resp->body holds the body.
 * Streaming mode: on_headers (optional) once the status is known, on_data for each chunk; either
 * may return nonzero to cancel the request (then on_done gets SJ_ECLOSED).
 * resp in on_done is never NULL (status 0 when nothing arrived). */
typedef struct {
  int (*on_headers)(const sj_resp_t *resp, void *arg);
  int (*on_data)(const uint8_t *p, size_t n, void *arg);
  void (*on_done)(int err, const sj_resp_t *resp, void *arg);
  void *arg;
} sj_call_cbs_t;

typedef struct {
  const char *method;      /* "GET" */
  const char *path;        /* "/v1/logs/310000/checkpoint?x=1", already %-encoded */
  const sj_header_t *hdrs; /* extra request headers (lower-case names); copied */
  size_t nhdrs;
  const void *body; /* request body, copied; NULL/0 for none */
  size_t body_len;
  uint64_t timeout_ms; /* 0 = the client's request_timeout_ms */
} sj_call_req_t;

/* Starts a request. call_out (may be NULL) receives a handle valid until on_done returns, for
 * sj_call_cancel. Errors: SJ_EINVAL, SJ_ECLOSED (client closing), -ENOMEM; then no callback. */
int sj_client_request(sj_client_t *c, const sj_call_req_t *r, const sj_call_cbs_t *cbs,
                      sj_call_t **call_out);

/* Cancels a request whose on_done has not run: RST_STREAM CANCEL, on_done(SJ_ECLOSED) is called
 * before this returns. */
void sj_call_cancel(sj_call_t *call);

/* Fails every request not yet done with SJ_ECLOSED (their on_done run), closes the connection and
 * every handle and frees c. done(arg) is called on the loop when all is closed; may be NULL. */
void sj_client_close(sj_client_t *c, void (*done)(void *arg), void *arg);

/* ---- Synchronous helper for command-line tools -------------------------------------------------
 * Runs one request to a full URL ("http[s]://host:port/path?query") on a private loop and waits.
 * hdrs/body as in sj_call_req_t; timeout_ms 0 = 30 s. On success *status is the HTTP status,
 * body_out (initialised by the caller; reset then filled) the body, content_type_out (may be NULL;
 * reset then filled, empty if absent) the content-type. Any thread; never on a loop thread that
 * must keep running. Errors: as on_done above, SJ_EINVAL (bad URL). */
int sj_http_fetch(const char *url, const char *method, const sj_header_t *hdrs, size_t nhdrs,
                  const void *body, size_t body_len, uint64_t timeout_ms, int *status,
                  sj_buf_t *body_out, sj_buf_t *content_type_out);

/* The same with client options (borrowed during the call): for "https://" URLs a CA file, a
 * client certificate, a server name. opts NULL = defaults; its request_timeout_ms is replaced by
 * timeout_ms (0 = 30 s). */
int sj_http_fetch_with(const sj_client_opts_t *opts, const char *url, const char *method,
                       const sj_header_t *hdrs, size_t nhdrs, const void *body, size_t body_len,
                       uint64_t timeout_ms, int *status, sj_buf_t *body_out,
                       sj_buf_t *content_type_out);

#endif
