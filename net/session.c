/* net/session.c — what the server and client sessions share: moving frames between nghttp2 and
 * the transport, the deferred-flush list, and the nghttp2 options we always set.
 *
 * Frames are produced with nghttp2_session_mem_send and appended to the transport's buffer;
 * one flush per pump means one uv_write per burst, however many streams contributed. When the
 * transport holds more than max_queue bytes we simply stop asking nghttp2 for frames (the same
 * effect as NGHTTP2_ERR_WOULDBLOCK from a send callback); the transport's on_drain resumes. */
#include "net/net_int.h"

#include <stdio.h>

static void idle_cb(uv_idle_t *idle) {
  sj_flusher_t *fl = idle->data;
  /* Detach the list first: kicks may list sessions again (a drain callback answering on another
   * connection); those run on the next iteration. */
  sj_h2_t *h = fl->head;
  fl->head = NULL;
  while (h) {
    sj_h2_t *next = h->fnext;
    h->listed = 0;
    h->fnext = h->fprev = NULL;
    if (!h->dead)
      h->kick(h);
    h = next;
  }
  if (!fl->head)
    uv_idle_stop(&fl->idle);
}

int sj_flusher_init(uv_loop_t *loop, sj_flusher_t *fl) {
  fl->head = NULL;
  fl->idle.data = fl;
  return uv_idle_init(loop, &fl->idle);
}

void sj_flusher_close(sj_flusher_t *fl, uv_close_cb cb) {
  uv_close((uv_handle_t *)&fl->idle, cb);
}

void sj_h2_want_send(sj_h2_t *h) {
  if (h->in_recv || h->listed || h->dead)
    return; /* the read path pumps when mem_recv returns */
  h->listed = 1;
  h->fprev = NULL;
  h->fnext = h->fl->head;
  if (h->fl->head)
    h->fl->head->fprev = h;
  h->fl->head = h;
  uv_idle_start(&h->fl->idle, idle_cb);
}

void sj_h2_unlist(sj_h2_t *h) {
  if (!h->listed)
    return;
  if (h->fprev)
    h->fprev->fnext = h->fnext;
  else
    h->fl->head = h->fnext;
  if (h->fnext)
    h->fnext->fprev = h->fprev;
  h->fnext = h->fprev = NULL;
  h->listed = 0;
}

int sj_h2_recv(sj_h2_t *h, const uint8_t *p, size_t n) {
  h->in_recv = 1;
  ssize_t rv = nghttp2_session_mem_recv(h->ng, p, n);
  h->in_recv = 0;
  return rv < 0 ? (int)rv : 0;
}

int sj_h2_pump(sj_h2_t *h) {
  /* Never from inside mem_recv (a handler closing the server, say): nghttp2 is not re-entrant,
   * and the read path pumps as soon as mem_recv returns. */
  if (h->dead || !h->tr || h->in_recv)
    return 0;
  for (;;) {
    while (h->tr->queued < h->max_queue) {
      const uint8_t *data;
      ssize_t n = nghttp2_session_mem_send(h->ng, &data);
      if (n < 0)
        return (int)n;
      if (n == 0) {
        h->tr->ops->flush(h->tr);
        return 0;
      }
      if (h->tr->ops->write(h->tr, data, (size_t)n) < 0)
        return NGHTTP2_ERR_NOMEM;
    }
    /* The bound is reached: flush. If the socket took it all at once, carry on producing;
     * otherwise the transport's on_drain calls us again. */
    h->tr->ops->flush(h->tr);
    if (h->tr->queued >= h->max_queue)
      return 0;
  }
}

int sj_h2_finished(const sj_h2_t *h) {
  return !nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng);
}

nghttp2_option *sj_h2_option_new(int server, uint32_t reset_burst, uint32_t reset_rate) {
  nghttp2_option *o;
  if (nghttp2_option_new(&o) != 0)
    return NULL;
  /* Window updates stay automatic (a consumer that stops reading is bounded by max_body and the
   * request timeout instead). Outbound ACK and SETTINGS flooding are capped at their defaults,
   * written out so that the protection is visible here. */
  nghttp2_option_set_no_auto_window_update(o, 0);
  nghttp2_option_set_max_outbound_ack(o, 1000);
  nghttp2_option_set_max_settings(o, 32);
  nghttp2_option_set_no_closed_streams(o, 1);
  if (server) {
    /* Rapid reset (CVE-2023-44487): RST_STREAM beyond the token bucket tears the session down. */
    nghttp2_option_set_stream_reset_rate_limit(o, reset_burst, reset_rate);
  } else {
    /* Until the server's SETTINGS arrive assume the RFC's recommended minimum of 100 streams, so
     * a burst before the handshake is not refused wholesale. */
    nghttp2_option_set_peer_max_concurrent_streams(o, 100);
  }
  return o;
}

const char *sj_h2_status_str(int status, char buf[4]) {
  if (status < 100 || status > 999)
    return NULL;
  buf[0] = (char)('0' + status / 100);
  buf[1] = (char)('0' + status / 10 % 10);
  buf[2] = (char)('0' + status % 10);
  buf[3] = 0;
  return buf;
}
