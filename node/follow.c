/* node/follow.c — the serving side of streaming replication:
 * GET /v1/logs/{region}/entries?start=S&follow=1 keeps the HTTP/2 stream open and pushes every
 * entry of the region from S on, and each checkpoint once the entries it covers were sent, as
 * they are committed — so a follower's lag is a round trip, not a polling period.
 *
 * Stream format (docs/FORMAT.md, "Follow stream"): a sequence of records, each one byte of type
 * then its payload: 'E' + an entry frame (crypto.h, sj_frame_append), 'C' + u32 big-endian length
 * + a signed checkpoint note. Bodies the caller may not see are withheld as in the entries frame.
 *
 * Backpressure: a subscriber writes only while fewer than FOLLOW_HIGH_WATER bytes wait in its
 * stream; the drain callback resumes it. Loop thread only. */
#include "node/node_int.h"

#include <stdlib.h>
#include <string.h>

#define FOLLOW_HIGH_WATER (1u << 20)
#define FOLLOW_MAX_PER_PUMP 4096 /* entries written per pump before yielding to the loop */

struct follow_sub {
  follow_sub_t *next, *prev;
  sj_node_t *n;
  sj_req_t *req;
  caller_t caller;
  uint32_t region;
  uint64_t next_seq;   /* next entry to send */
  uint64_t sent_cp;    /* size of the last checkpoint sent (0 = none) */
  int closed;
};

static void unlink_sub(follow_sub_t *s) {
  sj_node_t *n = s->n;
  if (s->prev)
    s->prev->next = s->next;
  else if (n->follow_subs == s)
    n->follow_subs = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->next = s->prev = NULL;
}

static void sub_free(follow_sub_t *s) {
  unlink_sub(s);
  sj_req_unref(s->req);
  free(s);
}

/* Writes one checkpoint record if the stream is at the latest checkpoint's size. */
static int send_checkpoint(follow_sub_t *s, sj_buf_t *tmp) {
  uint64_t size = 0;
  sj_buf_reset(tmp);
  if (sj_store_checkpoint_latest(s->n->store, s->region, &size, tmp) || size != s->next_seq ||
      size == s->sent_cp)
    return 0;
  uint8_t hdr[5] = {'C'};
  sj_put_be32(hdr + 1, (uint32_t)tmp->n);
  int rv = sj_req_stream_write(s->req, hdr, sizeof hdr);
  if (rv == 0)
    rv = sj_req_stream_write(s->req, tmp->p, tmp->n);
  if (rv == 0)
    s->sent_cp = size;
  return rv;
}

/* Sends what the subscriber has not seen, up to the high-water mark. */
static void pump(follow_sub_t *s) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_buf_t hb = {0}, bb = {0}, out = {0};
  uint64_t size;
  int rv = 0, has_body = 0, sent = 0;
  sj_store_head(s->n->store, s->region, &size, NULL, NULL);
  while (rv == 0 && s->next_seq < size && sent < FOLLOW_MAX_PER_PUMP &&
         sj_req_stream_pending(s->req) < FOLLOW_HIGH_WATER) {
    sj_entry_header_t h;
    rv = sj_store_get_entry(s->n->store, s->region, s->next_seq, &hb, &bb, &has_body);
    if (rv == 0)
      rv = sj_entry_decode(hb.p, hb.n, &h, keys, SJ_ENTRY_MAX_KEYS);
    if (rv == 0) {
      int show = has_body && api_body_visible(s->n, &s->caller, &h, bb.p, bb.n);
      sj_buf_reset(&out);
      sj_buf_append_u8(&out, 'E');
      rv = sj_frame_append(&out, hb.p, hb.n, bb.p, show ? bb.n : 0, show);
    }
    if (rv == 0)
      rv = sj_req_stream_write(s->req, out.p, out.n);
    if (rv == 0)
      s->next_seq++, sent++;
  }
  if (rv == 0 && s->next_seq == size)
    rv = send_checkpoint(s, &out);
  if (rv) {
    SJ_LOG_WARN("follow", "%s stream %d: follow of %06u stopped at %llu: %s", sj_req_peer(s->req),
                sj_req_stream_id(s->req), s->region, (unsigned long long)s->next_seq,
                sj_strerror(rv));
    sj_req_stream_end(s->req);
  }
  sj_buf_deinit(&hb);
  sj_buf_deinit(&bb);
  sj_buf_deinit(&out);
}

static void on_drain(sj_req_t *req, void *arg) {
  (void)req;
  follow_sub_t *s = arg;
  if (!s->closed)
    pump(s);
}

static void on_close(sj_req_t *req, int err, void *arg) {
  (void)req, (void)err;
  follow_sub_t *s = arg;
  s->closed = 1;
  sub_free(s);
}

int api_follow_start(sj_node_t *n, sj_req_t *req, const caller_t *c, uint32_t region,
                     uint64_t start) {
  follow_sub_t *s = calloc(1, sizeof *s);
  if (!s)
    return -12;
  sj_header_t h[1] = {{"content-type", "application/x-sanjiao-follow"}};
  int rv = sj_req_stream_start(req, 200, h, 1);
  if (rv) {
    free(s);
    return rv;
  }
  sj_metrics_request(n->metrics, n->route_ids[R_ENTRIES], 200, 0);
  s->n = n;
  s->req = req;
  s->caller = *c;
  s->region = region;
  s->next_seq = start;
  sj_req_ref(req);
  sj_req_set_on_close(req, on_close, s);
  sj_req_set_on_drain(req, on_drain, s);
  s->next = n->follow_subs;
  if (s->next)
    s->next->prev = s;
  n->follow_subs = s;
  pump(s);
  return 0;
}

void api_follow_notify(sj_node_t *n, uint32_t region) {
  for (follow_sub_t *s = n->follow_subs, *next; s; s = next) {
    next = s->next;
    if (s->region == region && !s->closed)
      pump(s);
  }
}

void api_follow_close_all(sj_node_t *n) {
  for (follow_sub_t *s = n->follow_subs; s; s = s->next)
    sj_req_stream_end(s->req);
}
