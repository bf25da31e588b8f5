/* net/tls.c — TLS 1.3 with ALPN "h2" (OpenSSL 3) as a transport layered on a TCP transport.
 *
 *   session (h2_server.c / h2_client.c)
 *      | ops->write / flush / read_pause / close          ^ on_connect / on_read / on_eof / ...
 *   tls_conn_t  (this file: SSL object, plaintext buffer)
 *      | tcp->ops->write / flush / ...                      ^ TCP events (tcp_events below)
 *   tcp_conn_t  (conn.c)
 *
 * Ciphertext from the socket goes into a memory BIO that the SSL object reads; ciphertext the
 * SSL object produces goes through a tiny sink BIO straight into the TCP transport's output
 * buffer. Nothing here touches a socket or blocks. Why not a memory BIO on the output side as
 * well: draining it means BIO_reset, which in OpenSSL 3.0 clears the whole buffer it ever grew
 * to (measured: 76 us per reset once 1 MiB had passed through), and reading it out costs a copy
 * more than the sink does.
 *
 * The session writes plaintext frames in small pieces; they are collected and encrypted at
 * flush, so one flush makes full-size records (16 KiB) instead of one record per frame.
 * Plaintext written before the handshake completes (the server's SETTINGS) waits in the same
 * buffer. queued = plaintext waiting + what the TCP transport still holds, so the session's
 * write bound covers both.
 *
 * Handshake policy: TLS 1.3 only; a server requires ALPN "h2" (a ClientHello without ALPN or
 * without "h2" is answered with a no_application_protocol alert); a client verifies the server's
 * chain and name and requires "h2" to be selected. Session tickets are off: neither our client
 * nor h2load resumes, and a ticket is work and bytes per connection for nothing. */
#include "net/net_int.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sj_tls_ctx {
  SSL_CTX *ssl;
  int server;
};

typedef struct {
  sj_conn_t base; /* first: what the session holds; sj_conn_t * and tls_conn_t * convert */
  sj_conn_t *tcp; /* the transport below; valid until its on_closed (then we are freed) */
  uv_loop_t *loop;
  SSL *ssl;       /* owns both BIOs */
  BIO *in;        /* memory BIO: ciphertext from the peer, written here, read by OpenSSL */
  sj_buf_t plain; /* plaintext from the session not yet encrypted */
  int server;
  int hs_done;  /* handshake complete and "h2" agreed */
  int failed;   /* handshake failed: an alert may be on its way out */
  int closing;  /* the layer above asked to close (or the client gave up): only on_closed */
  int eof_sent; /* on_eof delivered */
  int wfail;    /* SSL_write failed (fatal alert): further output is dropped */
  char cn[SJ_PEER_CN_MAX + 1]; /* the verified client certificate's CN (base.peer_cn) */
} tls_conn_t;

#define KEEP_CAP (256 * 1024) /* plaintext buffers above this are released after use */
#define PLAIN_BUF 16384       /* one TLS record of plaintext at most */
#define RECORD 16384          /* the plaintext of a full-size TLS record (RFC 8446 §5.1) */

static _Thread_local uint8_t g_pbuf[PLAIN_BUF];

/* ---- OpenSSL errors -------------------------------------------------------------------------- */

/* Formats and clears the thread's OpenSSL error queue (the first error is the root cause). */
static const char *ssl_errstr(char *buf, size_t cap) {
  unsigned long e = ERR_get_error();
  if (!e)
    snprintf(buf, cap, "no OpenSSL error recorded");
  else
    ERR_error_string_n(e, buf, cap);
  ERR_clear_error();
  return buf;
}

/* Our code for a failed file load, from the first (root) error: -errno when the file could not
 * be read, SJ_EINVAL when the key does not match the certificate, else SJ_EFORMAT. */
static int load_error(void) {
  unsigned long e = ERR_peek_error();
  if (ERR_GET_LIB(e) == ERR_LIB_SYS && ERR_GET_REASON(e) > 0)
    return -ERR_GET_REASON(e);
  if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
    return SJ_EINVAL;
  return SJ_EFORMAT;
}

static int load_fail(const char *what, const char *file) {
  char buf[256];
  int rv = load_error();
  SJ_LOG_ERR(NET, "TLS: cannot load %s %s: %s", what, file, ssl_errstr(buf, sizeof buf));
  return rv;
}

/* ---- The sink BIO: SSL output appended to the TCP transport ---------------------------------- */

static BIO_METHOD *g_sink;
static pthread_once_t g_sink_once = PTHREAD_ONCE_INIT;

static int sink_write(BIO *b, const char *p, int n) {
  sj_conn_t *tcp = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (n <= 0)
    return 0;
  if (!tcp || tcp->ops->write(tcp, (const uint8_t *)p, (size_t)n) < 0)
    return -1;
  return n;
}

static long sink_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b;
  (void)num;
  (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* we flush the transport ourselves */
}

static int sink_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static void sink_init(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sj-tcp-sink");
  if (m && BIO_meth_set_write(m, sink_write) && BIO_meth_set_ctrl(m, sink_ctrl) &&
      BIO_meth_set_create(m, sink_create))
    g_sink = m; /* process lifetime: one small allocation */
  else
    BIO_meth_free(m);
}

/* ---- Contexts -------------------------------------------------------------------------------- */

/* ALPN (RFC 7301): pick "h2" from the client's list or refuse the handshake. */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  (void)s;
  (void)arg;
  for (unsigned int i = 0; i < inlen;) {
    unsigned int n = in[i];
    if (n == 0 || i + 1 + n > inlen)
      break; /* malformed list */
    if (n == 2 && in[i + 1] == 'h' && in[i + 2] == '2') {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
}

/* A ClientHello without ALPN would complete the handshake and then speak HTTP/1.1: refuse it
 * in the handshake itself. */
static int hello_cb(SSL *s, int *al, void *arg) {
  (void)arg;
  const unsigned char *p;
  size_t n;
  if (!SSL_client_hello_get0_ext(s, TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &n)) {
    *al = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

static SSL_CTX *ctx_base(int server) {
  SSL_CTX *c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!c)
    return NULL;
  if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION)) {
    SSL_CTX_free(c);
    return NULL;
  }
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  /* An idle connection gives its 2 x ~17 KiB record buffers back (nginx does the same): a node
   * facing browsers holds many quiet connections. */
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  return c;
}

/* Loads a certificate chain and its key into c. */
static int load_identity(SSL_CTX *c, const char *cert, const char *key) {
  if (SSL_CTX_use_certificate_chain_file(c, cert) != 1)
    return load_fail("certificate chain", cert);
  if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1)
    return load_fail("private key", key);
  if (SSL_CTX_check_private_key(c) != 1) {
    char buf[256];
    SJ_LOG_ERR(NET, "TLS: key %s does not match certificate %s: %s", key, cert,
               ssl_errstr(buf, sizeof buf));
    return SJ_EINVAL;
  }
  return 0;
}

static int load_client_cas(SSL_CTX *c, const char *file, int require) {
  if (SSL_CTX_load_verify_locations(c, file, NULL) != 1)
    return load_fail("client CA file", file);
  STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(file);
  if (!names)
    return load_fail("client CA names from", file);
  SSL_CTX_set_client_CA_list(c, names); /* takes ownership */
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | (require ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
  return 0;
}

static int ctx_wrap(SSL_CTX *c, int server, int rv, sj_tls_ctx_t **out) {
  sj_tls_ctx_t *t = rv == 0 ? malloc(sizeof *t) : NULL;
  if (rv == 0 && !t)
    rv = -ENOMEM;
  if (rv < 0) {
    SSL_CTX_free(c);
    ERR_clear_error();
    return rv;
  }
  t->ssl = c;
  t->server = server;
  *out = t;
  return 0;
}

int sj_tls_server_ctx_new(const sj_server_opts_t *o, sj_tls_ctx_t **out) {
  pthread_once(&g_sink_once, sink_init);
  SSL_CTX *c = g_sink ? ctx_base(1) : NULL;
  if (!c)
    return -ENOMEM;
  static const unsigned char sid[] = "sanjiao";
  int rv = load_identity(c, o->tls_cert_file, o->tls_key_file);
  if (rv == 0 && o->tls_client_ca_file)
    rv = load_client_cas(c, o->tls_client_ca_file, o->tls_require_client_cert);
  if (rv == 0 && !SSL_CTX_set_session_id_context(c, sid, sizeof sid - 1))
    rv = -ENOMEM;
  SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);
  SSL_CTX_set_client_hello_cb(c, hello_cb, NULL);
  SSL_CTX_set_num_tickets(c, 0);
  return ctx_wrap(c, 1, rv, out);
}

int sj_tls_client_ctx_new(const sj_client_opts_t *o, sj_tls_ctx_t **out) {
  static const unsigned char alpn[] = {2, 'h', '2'};
  pthread_once(&g_sink_once, sink_init);
  SSL_CTX *c = g_sink ? ctx_base(0) : NULL;
  if (!c)
    return -ENOMEM;
  int rv = 0;
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  if (o->tls_ca_file) {
    if (SSL_CTX_load_verify_locations(c, o->tls_ca_file, NULL) != 1)
      rv = load_fail("CA file", o->tls_ca_file);
  } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
    rv = load_fail("the default CA store", "");
  }
  if (rv == 0 && o->tls_cert_file)
    rv = load_identity(c, o->tls_cert_file, o->tls_key_file);
  if (rv == 0 && SSL_CTX_set_alpn_protos(c, alpn, sizeof alpn) != 0) /* 0 is success here */
    rv = -ENOMEM;
  return ctx_wrap(c, 0, rv, out);
}

void sj_tls_ctx_free(sj_tls_ctx_t *ctx) {
  if (!ctx)
    return;
  SSL_CTX_free(ctx->ssl); /* reference counted: live SSL objects keep it */
  free(ctx);
}

/* ---- Moving bytes ---------------------------------------------------------------------------- */

static void update_queued(tls_conn_t *t) {
  t->base.queued = t->plain.n + t->tcp->queued;
}

/* Encrypts the plaintext waiting (after the handshake) and flushes the TCP transport. */
/* Encrypts n bytes into the TCP transport's buffer (records of up to 16 KiB). */
static void encrypt(tls_conn_t *t, const uint8_t *p, size_t n) {
  size_t w = 0;
  if (t->wfail)
    return;
  ERR_clear_error();
  if (SSL_write_ex(t->ssl, p, n, &w) != 1) {
    /* Only after a fatal error (alert sent or received); the read side reports it. */
    char buf[256];
    SJ_LOG_DEBUG(NET, "%s TLS write: %s", t->base.peer, ssl_errstr(buf, sizeof buf));
    t->wfail = 1;
  }
}

static void push(tls_conn_t *t) {
  if (t->hs_done && !t->failed && t->plain.n) {
    encrypt(t, t->plain.p, t->plain.n);
    t->plain.n = 0;
    if (t->plain.cap > KEEP_CAP)
      sj_buf_deinit(&t->plain); /* only the pre-handshake backlog grows it this much */
  }
  t->tcp->ops->flush(t->tcp);
  update_queued(t);
}

static void deliver_eof(tls_conn_t *t, int err) {
  if (t->eof_sent || t->closing)
    return;
  t->eof_sent = 1;
  t->base.ev->on_eof(t->base.up, err);
}

/* The verified client certificate's single CN, if it is sane, becomes base.peer_cn. */
static void take_peer_cn(tls_conn_t *t) {
  X509 *x = SSL_get0_peer_certificate(t->ssl);
  if (!x || SSL_get_verify_result(t->ssl) != X509_V_OK)
    return;
  X509_NAME *nm = X509_get_subject_name(x);
  int i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
  if (i < 0 || X509_NAME_get_index_by_NID(nm, NID_commonName, i) >= 0)
    return; /* absent, or ambiguous: several CNs */
  unsigned char *u = NULL;
  int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)));
  if (n > 0 && n <= SJ_PEER_CN_MAX && !memchr(u, 0, (size_t)n)) {
    memcpy(t->cn, u, (size_t)n);
    t->cn[n] = 0;
    t->base.peer_cn = t->cn;
  } else {
    SJ_LOG_INFO(NET, "%s client certificate CN unusable (%d bytes): ignored", t->base.peer, n);
  }
  OPENSSL_free(u);
}

/* Handshake complete: insist on h2, note the peer. 0 or SJ_EPROTO. */
static int handshake_done(tls_conn_t *t) {
  const unsigned char *p = NULL;
  unsigned int n = 0;
  SSL_get0_alpn_selected(t->ssl, &p, &n);
  if (n != 2 || memcmp(p, "h2", 2) != 0) {
    SJ_LOG_INFO(NET, "%s TLS: %s did not agree on ALPN h2", t->base.peer,
                t->server ? "client" : "server");
    return SJ_EPROTO;
  }
  if (t->server)
    take_peer_cn(t);
  t->hs_done = 1;
  t->base.hs_deadline = 0;
  SJ_LOG_DEBUG(NET, "%s TLS: %s, %s%s%s", t->base.peer, SSL_get_version(t->ssl),
               SSL_get_cipher_name(t->ssl), t->base.peer_cn ? ", client " : "",
               t->base.peer_cn ? t->base.peer_cn : "");
  return 0;
}

/* Why a handshake failed, as our code; logs OpenSSL's reason once. */
static int handshake_error(tls_conn_t *t, int sslerr) {
  char buf[256];
  long vr = SSL_get_verify_result(t->ssl);
  int verify = vr != X509_V_OK;
  const char *why;
  if (verify)
    why = X509_verify_cert_error_string(vr);
  else if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
    why = "unexpected end of stream";
  else
    why = ssl_errstr(buf, sizeof buf);
  if (t->server)
    SJ_LOG_INFO(NET, "%s TLS handshake failed: %s", t->base.peer, why);
  else
    SJ_LOG_WARN(NET, "%s TLS handshake failed: %s", t->base.peer, why);
  ERR_clear_error();
  return verify && !t->server ? SJ_EVERIFY : SJ_EPROTO;
}

/* Runs the handshake as far as the bytes allow: 1 done, 0 needs more, <0 failed. */
static int handshake(tls_conn_t *t) {
  ERR_clear_error();
  int rv = SSL_do_handshake(t->ssl);
  if (rv == 1)
    return handshake_done(t) < 0 ? SJ_EPROTO : 1;
  int e = SSL_get_error(t->ssl, rv);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  return handshake_error(t, e);
}

/* The handshake failed with err: send what alert there is, then report. A client reports through
 * on_connect and closes itself; a server connection reports on_eof and is closed from above. */
static void fail(tls_conn_t *t, int err) {
  t->failed = 1;
  t->tcp->ops->flush(t->tcp);
  update_queued(t);
  if (t->server) {
    deliver_eof(t, -EPROTO); /* a real errno: the layer above may hand it to uv_strerror */
    return;
  }
  if (!t->closing) {
    t->closing = 1;
    t->base.ev->on_connect(t->base.up, err);
  }
  t->tcp->ops->close(t->tcp, 1);
}

/* Decrypts everything readable and hands it up, record by record. */
static void read_plain(tls_conn_t *t) {
  for (;;) {
    size_t got = 0;
    ERR_clear_error();
    if (SSL_read_ex(t->ssl, g_pbuf, sizeof g_pbuf, &got) == 1) {
      t->base.ev->on_read(t->base.up, g_pbuf, got);
      if (t->closing)
        return;
      continue;
    }
    int e = SSL_get_error(t->ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
      return;
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
      deliver_eof(t, 0);
      return;
    }
    char buf[256];
    SJ_LOG_INFO(NET, "%s TLS: %s", t->base.peer, ssl_errstr(buf, sizeof buf));
    deliver_eof(t, -EPROTO);
    return;
  }
}

/* ---- Events from the TCP transport ----------------------------------------------------------- */

static void tcp_connect(void *up, int status) {
  tls_conn_t *t = up;
  if (t->closing)
    return;
  if (status < 0) {
    t->closing = 1; /* the TCP transport closes itself */
    t->base.ev->on_connect(t->base.up, status);
    return;
  }
  int rv = handshake(t); /* ClientHello */
  if (rv < 0)
    fail(t, rv);
  else
    push(t);
}

static void tcp_read(void *up, const uint8_t *p, size_t n) {
  tls_conn_t *t = up;
  if (t->closing || t->failed || t->eof_sent)
    return;
  if (BIO_write(t->in, p, (int)n) != (int)n) {
    deliver_eof(t, -ENOMEM);
    return;
  }
  if (!t->hs_done) {
    int rv = handshake(t);
    if (rv < 0) {
      fail(t, rv);
      return;
    }
    if (rv == 0) {
      push(t); /* our next flight, if any */
      return;
    }
    if (!t->server) {
      t->base.ev->on_connect(t->base.up, 0);
      if (t->closing)
        return;
    }
  }
  read_plain(t);
  if (!t->closing)
    push(t); /* replies made while reading, and anything OpenSSL wrote (alerts, key updates) */
}

static void tcp_eof(void *up, int err) {
  tls_conn_t *t = up;
  if (t->closing || t->failed)
    return;
  if (!t->hs_done) {
    /* Routine for a server (probes, health checks); worth a line for a client. */
    SJ_LOG_(t->server ? SJ_LOG_LEVEL_DEBUG : SJ_LOG_LEVEL_WARN, NET,
            "%s TLS: connection %s during the handshake", t->base.peer,
            err ? uv_strerror(err) : "closed");
    if (!t->server) {
      t->closing = 1;
      t->base.ev->on_connect(t->base.up, err ? err : SJ_EPROTO);
      t->tcp->ops->close(t->tcp, 0);
      return;
    }
  }
  deliver_eof(t, err);
}

static void tcp_drain(void *up) {
  tls_conn_t *t = up;
  update_queued(t);
  if (!t->closing && !t->failed)
    t->base.ev->on_drain(t->base.up);
}

static void tcp_closed(void *up) {
  tls_conn_t *t = up;
  if (t->base.ev && t->base.ev->on_closed)
    t->base.ev->on_closed(t->base.up);
  SSL_free(t->ssl);
  sj_buf_deinit(&t->plain);
  free(t); /* the only place a TLS transport is freed */
}

static const sj_conn_events_t tcp_events = {tcp_connect, tcp_read, tcp_eof, tcp_drain, tcp_closed};

/* ---- Operations for the session ------------------------------------------------------------- */

/* Plaintext is encrypted as soon as it makes a full record: first the buffered head topped up
 * to one record, then whole records straight from p; only the tail (< 16 KiB) is copied and
 * waits for more or for the flush. So the buffer never grows beyond a record once the handshake
 * is done, and big DATA frames are not copied an extra time. */
static int op_write(sj_conn_t *c, const uint8_t *p, size_t n) {
  tls_conn_t *t = (tls_conn_t *)c;
  if (t->hs_done && !t->failed) {
    if (t->plain.n) {
      size_t take = RECORD - t->plain.n < n ? RECORD - t->plain.n : n;
      if (sj_buf_append(&t->plain, p, take) < 0)
        return -ENOMEM;
      p += take;
      n -= take;
      if (t->plain.n < RECORD)
        goto done;
      encrypt(t, t->plain.p, RECORD);
      t->plain.n = 0;
    }
    size_t whole = n - n % RECORD;
    if (whole)
      encrypt(t, p, whole);
    p += whole;
    n -= whole;
  }
  if (n && sj_buf_append(&t->plain, p, n) < 0)
    return -ENOMEM;
done:
  update_queued(t);
  return 0;
}

static void op_flush(sj_conn_t *c) {
  tls_conn_t *t = (tls_conn_t *)c;
  if (!t->closing)
    push(t);
}

static void op_read_pause(sj_conn_t *c, int pause) {
  tls_conn_t *t = (tls_conn_t *)c;
  if (!t->closing)
    t->tcp->ops->read_pause(t->tcp, pause);
}

static void op_close(sj_conn_t *c, int graceful) {
  tls_conn_t *t = (tls_conn_t *)c;
  if (!t->closing) {
    t->closing = 1;
    if (t->failed) {
      graceful = 1; /* let the alert out */
    } else if (graceful && t->hs_done) {
      push(t);
      ERR_clear_error();
      (void)SSL_shutdown(t->ssl); /* close_notify; we do not wait for the peer's */
      ERR_clear_error();
      t->tcp->ops->flush(t->tcp);
    }
  }
  t->tcp->ops->close(t->tcp, graceful);
}

static const sj_conn_ops_t tls_ops = {op_write, op_flush, op_read_pause, op_close};

/* ---- Creating connections -------------------------------------------------------------------- */

static tls_conn_t *tls_new(sj_tls_ctx_t *ctx, uv_loop_t *loop, const sj_conn_events_t *ev,
                           void *up) {
  tls_conn_t *t = calloc(1, sizeof *t);
  BIO *in = BIO_new(BIO_s_mem());
  BIO *out = BIO_new(g_sink);
  SSL *ssl = SSL_new(ctx->ssl);
  if (!t || !in || !out || !ssl) {
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl);
    free(t);
    ERR_clear_error();
    return NULL;
  }
  BIO_set_mem_eof_return(in, -1); /* empty means "wait for more", not end of stream */
  SSL_set_bio(ssl, in, out);      /* ssl owns both now */
  t->ssl = ssl;
  t->in = in;
  t->server = ctx->server;
  t->loop = loop;
  t->base.ops = &tls_ops;
  t->base.ev = ev;
  t->base.up = up;
  return t;
}

/* Frees a connection that never got a TCP transport. */
static void tls_discard(tls_conn_t *t) {
  SSL_free(t->ssl);
  free(t);
}

int sj_tls_accept(sj_tls_ctx_t *ctx, uv_stream_t *listener, uint64_t hs_timeout_ms,
                  const sj_conn_events_t *ev, void *up, sj_conn_t **out) {
  tls_conn_t *t = tls_new(ctx, listener->loop, ev, up);
  if (!t) {
    sj_tcp_reject(listener);
    return -ENOMEM;
  }
  int rv = sj_tcp_accept_plain(listener, &tcp_events, t, &t->tcp);
  if (rv < 0) {
    tls_discard(t);
    return rv;
  }
  BIO_set_data(SSL_get_wbio(t->ssl), t->tcp);
  SSL_set_accept_state(t->ssl);
  memcpy(t->base.peer, t->tcp->peer, sizeof t->base.peer);
  memcpy(t->base.peer_ip, t->tcp->peer_ip, sizeof t->base.peer_ip);
  t->base.peer_ip_len = t->tcp->peer_ip_len;
  if (hs_timeout_ms)
    t->base.hs_deadline = uv_now(t->loop) + hs_timeout_ms;
  *out = &t->base;
  return 0;
}

/* Sets the name the server's certificate must carry, and SNI for DNS names (RFC 6066 §3 forbids
 * IP literals there). */
static int set_peer_name(SSL *ssl, const char *name) {
  unsigned char ip[16];
  X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
  if (uv_inet_pton(AF_INET, name, ip) == 0 || uv_inet_pton(AF_INET6, name, ip) == 0)
    return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : SJ_EINVAL;
  X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (SSL_set1_host(ssl, name) != 1 || SSL_set_tlsext_host_name(ssl, name) != 1)
    return SJ_EINVAL;
  return 0;
}

int sj_tls_connect(sj_tls_ctx_t *ctx, uv_loop_t *loop, const struct sockaddr *sa, const char *name,
                   const sj_conn_events_t *ev, void *up, sj_conn_t **out) {
  tls_conn_t *t = tls_new(ctx, loop, ev, up);
  if (!t)
    return -ENOMEM;
  int rv = set_peer_name(t->ssl, name);
  if (rv == 0)
    rv = sj_tcp_connect(loop, sa, &tcp_events, t, &t->tcp);
  if (rv < 0) {
    ERR_clear_error();
    tls_discard(t);
    return rv;
  }
  BIO_set_data(SSL_get_wbio(t->ssl), t->tcp);
  SSL_set_connect_state(t->ssl);
  memcpy(t->base.peer, t->tcp->peer, sizeof t->base.peer);
  memcpy(t->base.peer_ip, t->tcp->peer_ip, sizeof t->base.peer_ip);
  t->base.peer_ip_len = t->tcp->peer_ip_len;
  *out = &t->base;
  return 0;
}

/* ---- Request accessor ------------------------------------------------------------------------ */

const char *sj_req_peer_cert_cn(sj_req_t *req) {
  if (!req->peer_cn_copied && req->conn && req->conn->h2.tr && req->conn->h2.tr->peer_cn) {
    snprintf(req->peer_cn, sizeof req->peer_cn, "%s", req->conn->h2.tr->peer_cn);
    req->peer_cn_copied = 1;
  }
  return req->peer_cn_copied ? req->peer_cn : NULL;
}
