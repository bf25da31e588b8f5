/* net/conn.c — the TCP byte transport under the HTTP/2 sessions (directly, or under TLS).
 *
 * Output is double-buffered: the session appends frames to `fill` while at most one uv_write
 * sends `busy`; when that write completes the buffers swap. So every frame produced in one loop
 * iteration leaves in a single write(2), which is what makes small responses cheap. Reads use
 * one 64 KiB buffer per thread: the session consumes every byte inside on_read (nghttp2 copies
 * what it keeps), so the buffer is free again when the callback returns. */
#include "net/net_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
  sj_conn_t base;  /* first: sj_conn_t * and tcp_conn_t * convert */
  uv_tcp_t tcp;    /* tcp.data points back here */
  uv_write_t wreq; /* the one write in flight */
  uv_connect_t creq;
  sj_buf_t fill;   /* frames waiting for the next write */
  sj_buf_t busy;   /* bytes of the write in flight */
  size_t busy_off; /* busy's prefix that uv_try_write already sent */
  int writing;     /* wreq in flight */
  int closing;     /* close requested: no more events but on_closed */
  int closed;      /* uv_close called */
  int eof_sent;    /* on_eof was delivered */
  int reading;
} tcp_conn_t;

/* Buffers above this are released after use rather than kept for the next burst. */
#define KEEP_CAP (256 * 1024)
#define READ_BUF 65536

static _Thread_local uint8_t g_rbuf[READ_BUF];

static void on_tcp_closed(uv_handle_t *h) {
  tcp_conn_t *t = h->data;
  if (t->base.ev && t->base.ev->on_closed)
    t->base.ev->on_closed(t->base.up);
  sj_buf_deinit(&t->fill);
  sj_buf_deinit(&t->busy);
  free(t); /* the only place a transport is freed */
}

static void do_close(tcp_conn_t *t) {
  if (t->closed)
    return;
  t->closed = 1;
  uv_close((uv_handle_t *)&t->tcp, on_tcp_closed);
}

static void deliver_eof(tcp_conn_t *t, int err) {
  if (t->eof_sent || t->closing)
    return;
  t->eof_sent = 1;
  t->base.ev->on_eof(t->base.up, err);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = (char *)g_rbuf;
  buf->len = READ_BUF;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  tcp_conn_t *t = s->data;
  if (t->closing)
    return;
  if (nread > 0) {
    t->base.ev->on_read(t->base.up, (const uint8_t *)buf->base, (size_t)nread);
    return;
  }
  if (nread < 0) {
    uv_read_stop(s);
    t->reading = 0;
    deliver_eof(t, nread == UV_EOF ? 0 : (int)nread);
  }
}

static void start_write(tcp_conn_t *t);

static void write_cb(uv_write_t *w, int status) {
  tcp_conn_t *t = w->data;
  t->writing = 0;
  t->base.queued -= t->busy.n - t->busy_off;
  t->busy.n = t->busy_off = 0;
  if (t->busy.cap > KEEP_CAP)
    sj_buf_deinit(&t->busy);
  if (t->closed)
    return;
  if (status < 0) {
    /* The peer is gone; whatever is buffered cannot be sent. */
    t->base.queued = 0;
    t->fill.n = 0;
    if (t->closing)
      do_close(t);
    else
      deliver_eof(t, status);
    return;
  }
  if (t->fill.n)
    start_write(t);
  if (t->closing) {
    if (!t->writing)
      do_close(t);
    return;
  }
  t->base.ev->on_drain(t->base.up);
}

static void start_write(tcp_conn_t *t) {
  if (t->writing || !t->fill.n || t->closed)
    return;
  /* Most bursts fit in the socket buffer: write them now, without a request, a callback or an
   * epoll change. Only what the kernel does not take goes through uv_write. */
  uv_buf_t b = uv_buf_init((char *)t->fill.p, (unsigned)t->fill.n);
  int n = uv_try_write((uv_stream_t *)&t->tcp, &b, 1);
  if (n == (int)t->fill.n) {
    t->base.queued -= t->fill.n;
    t->fill.n = 0;
    if (t->fill.cap > KEEP_CAP)
      sj_buf_deinit(&t->fill);
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    t->base.queued = 0;
    t->fill.n = 0;
    if (t->closing)
      do_close(t);
    else
      deliver_eof(t, n);
    return;
  }
  if (n < 0)
    n = 0;
  sj_buf_t tmp = t->busy;
  t->busy = t->fill;
  t->fill = tmp;
  t->base.queued -= (size_t)n;
  t->busy_off = (size_t)n;
  b = uv_buf_init((char *)t->busy.p + n, (unsigned)(t->busy.n - (size_t)n));
  t->wreq.data = t;
  int rv = uv_write(&t->wreq, (uv_stream_t *)&t->tcp, &b, 1, write_cb);
  if (rv < 0) {
    t->base.queued = 0;
    t->busy.n = 0;
    t->fill.n = 0;
    if (t->closing)
      do_close(t);
    else
      deliver_eof(t, rv);
    return;
  }
  t->writing = 1;
}

static int op_write(sj_conn_t *c, const uint8_t *p, size_t n) {
  tcp_conn_t *t = (tcp_conn_t *)c;
  int rv = sj_buf_append(&t->fill, p, n);
  if (rv == 0)
    c->queued += n;
  return rv;
}

static void op_flush(sj_conn_t *c) {
  start_write((tcp_conn_t *)c);
}

static void op_read_pause(sj_conn_t *c, int pause) {
  tcp_conn_t *t = (tcp_conn_t *)c;
  if (t->closing || t->eof_sent)
    return;
  if (pause && t->reading) {
    uv_read_stop((uv_stream_t *)&t->tcp);
    t->reading = 0;
  } else if (!pause && !t->reading) {
    if (uv_read_start((uv_stream_t *)&t->tcp, alloc_cb, read_cb) == 0)
      t->reading = 1;
  }
}

static void op_close(sj_conn_t *c, int graceful) {
  tcp_conn_t *t = (tcp_conn_t *)c;
  if (!t->closing) {
    t->closing = 1;
    if (t->reading)
      uv_read_stop((uv_stream_t *)&t->tcp);
    t->reading = 0;
  }
  if (graceful && t->fill.n)
    start_write(t);
  if (graceful && t->writing)
    return; /* write_cb closes once the data is out */
  do_close(t);
}

static const sj_conn_ops_t tcp_ops = {op_write, op_flush, op_read_pause, op_close};

void sj_sockaddr_str(const struct sockaddr *sa, char *out, size_t cap) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, ip, sizeof ip);
    port = ntohs(in->sin_port);
    snprintf(out, cap, "%s:%d", ip, port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
    snprintf(out, cap, "[%s]:%d", ip, port);
  } else {
    snprintf(out, cap, "?");
  }
}

static tcp_conn_t *tcp_new(uv_loop_t *loop, const sj_conn_events_t *ev, void *up) {
  tcp_conn_t *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  if (uv_tcp_init(loop, &t->tcp) < 0) {
    free(t);
    return NULL;
  }
  t->tcp.data = t;
  t->base.ops = &tcp_ops;
  t->base.ev = ev;
  t->base.up = up;
  return t;
}

int sj_tcp_accept(uv_stream_t *listener, const sj_conn_events_t *ev, void *up, sj_conn_t **out) {
  const sj_server_t *s = listener->data;
  if (s->tls)
    return sj_tls_accept(s->tls, listener, s->o.tls_handshake_timeout_ms, ev, up, out);
  return sj_tcp_accept_plain(listener, ev, up, out);
}

int sj_tcp_accept_plain(uv_stream_t *listener, const sj_conn_events_t *ev, void *up,
                        sj_conn_t **out) {
  tcp_conn_t *t = tcp_new(listener->loop, ev, up);
  if (!t)
    return -ENOMEM;
  int rv = uv_accept(listener, (uv_stream_t *)&t->tcp);
  if (rv == 0)
    rv = uv_read_start((uv_stream_t *)&t->tcp, alloc_cb, read_cb);
  if (rv < 0) {
    t->base.ev = NULL; /* never reported: the caller sees the error */
    t->closing = 1;
    do_close(t);
    return rv;
  }
  t->reading = 1;
  uv_tcp_nodelay(&t->tcp, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(&t->tcp, (struct sockaddr *)&ss, &len) == 0) {
    sj_sockaddr_str((struct sockaddr *)&ss, t->base.peer, sizeof t->base.peer);
    if (ss.ss_family == AF_INET) {
      memcpy(t->base.peer_ip, &((struct sockaddr_in *)&ss)->sin_addr, 4);
      t->base.peer_ip_len = 4;
    } else if (ss.ss_family == AF_INET6) {
      memcpy(t->base.peer_ip, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
      t->base.peer_ip_len = 16;
    }
  } else {
    snprintf(t->base.peer, sizeof t->base.peer, "?");
  }
  *out = &t->base;
  return 0;
}

static void on_reject_closed(uv_handle_t *h) {
  free(h);
}

void sj_tcp_reject(uv_stream_t *listener) {
  uv_tcp_t *h = malloc(sizeof *h);
  if (!h || uv_tcp_init(listener->loop, h) < 0) {
    free(h);
    return;
  }
  (void)uv_accept(listener, (uv_stream_t *)h);
  uv_close((uv_handle_t *)h, on_reject_closed);
}

static void connect_cb(uv_connect_t *req, int status) {
  tcp_conn_t *t = req->data;
  if (t->closing)
    return; /* the owner gave up (timeout, close): it already reported */
  if (status == 0)
    status = uv_read_start((uv_stream_t *)&t->tcp, alloc_cb, read_cb);
  if (status < 0) {
    t->base.ev->on_connect(t->base.up, status);
    t->closing = 1;
    do_close(t);
    return;
  }
  t->reading = 1;
  uv_tcp_nodelay(&t->tcp, 1);
  t->base.ev->on_connect(t->base.up, 0);
}

int sj_tcp_connect(uv_loop_t *loop, const struct sockaddr *sa, const sj_conn_events_t *ev, void *up,
                   sj_conn_t **out) {
  tcp_conn_t *t = tcp_new(loop, ev, up);
  if (!t)
    return -ENOMEM;
  sj_sockaddr_str(sa, t->base.peer, sizeof t->base.peer);
  t->creq.data = t;
  int rv = uv_tcp_connect(&t->creq, &t->tcp, sa, connect_cb);
  if (rv < 0) {
    t->base.ev = NULL;
    t->closing = 1;
    do_close(t);
    return rv;
  }
  *out = &t->base;
  return 0;
}
