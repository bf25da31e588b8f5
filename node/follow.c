/* node/follow.c — the serving side of streaming replication:
 * GET /v1/logs/{region}/entries?start=S&follow=1 keeps the HTTP/2 stream open and pushes every
 * entry of the region from S on, as they are committed, with the checkpoints that cover them in
 * band — so a follower's lag is a round trip, not a polling period.
 *
 * Checkpoints are interleaved: a stored checkpoint (a group commit of the origin; on a relay, a
 * checkpoint of the origin it verified and stored — only those sizes exist) is written right
 * after the entry that completes its size, so a follower that lags behind sustained ingest still
 * commits as it goes instead of buffering entries until it has caught up exactly (which under
 * load may never happen). Which ones: the newest size the stream knows of when it reaches it
 * (one per wake-up when the follower keeps up, as before), and any stored size once
 * FOLLOW_CP_ENTRIES entries or FOLLOW_CP_BYTES bytes went out without a checkpoint — not every
 * one of a lagging stream, whose follower pays a signature check and a commit for each and would
 * otherwise fall further behind. The sizes come from each wake-up's look at the latest
 * checkpoint; for entries already stored when the stream started (a backlog) each size is looked
 * up (one point read) once a checkpoint is due, and so is every size after FOLLOW_PROBE_AFTER
 * entries without one (commits the loop heard of only after a later one, or more than
 * FOLLOW_MARKS sizes ahead). Each checkpoint covers exactly the entries sent before it.
 *
 * Backpressure: a subscriber writes only while fewer than FOLLOW_HIGH_WATER bytes wait in its
 * stream; the drain callback resumes it. Loop thread only. */
#include "node/node_int.h"

#include <stdlib.h>
#include <string.h>

#define FOLLOW_HIGH_WATER (1u << 20)
#define FOLLOW_MAX_PER_PUMP 4096   /* entries written per pump before yielding to the loop */
#define FOLLOW_MARKS 64            /* checkpoint sizes remembered ahead of the stream */
#define FOLLOW_PROBE_AFTER 4096    /* entries without a checkpoint before each size is looked up */
#define FOLLOW_CP_ENTRIES 256      /* entries without a checkpoint before any stored one is sent */
#define FOLLOW_CP_BYTES (1u << 20) /* bytes likewise */

struct follow_sub {
  follow_sub_t *next, *prev;
  sj_node_t *n;
  sj_req_t *req;
  caller_t caller;
  uint32_t region;
  uint64_t next_seq;            /* next entry to send */
  uint64_t sent_cp;             /* size of the last checkpoint sent (0 = none) */
  uint64_t since_cp;            /* entries sent since the last checkpoint (or the start) */
  uint64_t since_bytes;         /* bytes of those entries */
  uint64_t marks[FOLLOW_MARKS]; /* stored checkpoint sizes > next_seq, ascending, not yet sent */
  size_t nmarks;                /* how many of marks are used */
  uint64_t probe_until; /* sizes up to this one are looked up: stored before the stream knew */
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

/* Writes the checkpoint record of size next_seq held in note. */
static int write_checkpoint(follow_sub_t *s, const sj_buf_t *note) {
  uint8_t hdr[5] = {'C'};
  sj_put_be32(hdr + 1, (uint32_t)note->n);
  int rv = sj_req_stream_write(s->req, hdr, sizeof hdr);
  if (rv == 0)
    rv = sj_req_stream_write(s->req, note->p, note->n);
  if (rv == 0) {
    s->sent_cp = s->next_seq;
    s->since_cp = s->since_bytes = 0;
  }
  return rv;
}

/* Writes the checkpoint stored for size next_seq, if there is one. */
static int checkpoint_at(follow_sub_t *s, sj_buf_t *tmp) {
  sj_buf_reset(tmp);
  int rv = sj_store_checkpoint_get(s->n->store, s->region, s->next_seq, tmp);
  if (rv == SJ_ENOTFOUND)
    return 0;
  return rv ? rv : write_checkpoint(s, tmp);
}

/* Remembers the latest stored checkpoint's size if the stream has not reached it yet. Sizes only
 * grow, so marks stay ascending; when full, the newest is dropped (the probe finds it). */
static void note_latest(follow_sub_t *s, sj_buf_t *tmp) {
  uint64_t size = 0;
  sj_buf_reset(tmp);
  if (sj_store_checkpoint_latest(s->n->store, s->region, &size, tmp) || size <= s->next_seq)
    return;
  if (s->nmarks > 0 && s->marks[s->nmarks - 1] >= size)
    return;
  if (s->nmarks < FOLLOW_MARKS)
    s->marks[s->nmarks++] = size;
  else if (size > s->probe_until)
    s->probe_until = size;
}

/* After an entry was sent: writes the checkpoint of size next_seq, if one is stored and it is
 * the newest size the stream knows of, or a checkpoint is due (see the top of the file). */
static int maybe_checkpoint(follow_sub_t *s, sj_buf_t *tmp) {
  int marked = s->nmarks > 0 && s->marks[0] == s->next_seq;
  if (marked)
    memmove(s->marks, s->marks + 1, --s->nmarks * sizeof s->marks[0]);
  int due = s->since_cp >= FOLLOW_CP_ENTRIES || s->since_bytes >= FOLLOW_CP_BYTES;
  if (marked && (s->nmarks == 0 || due))
    return checkpoint_at(s, tmp);
  if (!marked && due && (s->next_seq <= s->probe_until || s->since_cp >= FOLLOW_PROBE_AFTER))
    return checkpoint_at(s, tmp);
  return 0;
}

/* Sends what the subscriber has not seen, up to the high-water mark. */
static void pump(follow_sub_t *s) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_buf_t hb = {0}, bb = {0}, out = {0};
  uint64_t size;
  int rv = 0, has_body = 0, sent = 0;
  sj_store_head(s->n->store, s->region, &size, NULL, NULL);
  note_latest(s, &out);
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
    if (rv == 0) {
      s->next_seq++, sent++, s->since_cp++, s->since_bytes += out.n;
      rv = maybe_checkpoint(s, &out);
    }
  }
  if (rv == 0 && s->next_seq == size && s->sent_cp != size) /* caught up: the head's, if any */
    rv = checkpoint_at(s, &out);
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
  sj_store_head(n->store, region, &s->probe_until, NULL, NULL);
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
