/* node/writer.c — group commit on a writer thread.
 *
 * The loop thread queues submissions; the writer thread takes everything queued (up to max_group
 * records), builds one batch — headers with consecutive sequence numbers and chain links, tree
 * rows, index rows, the idempotency rows — signs one checkpoint for the resulting tree, writes
 * it without waiting for the disk (sj_store_batch_write) and hands it to the sync thread, which
 * fsyncs, publishes the batch and posts the finished submissions back to the loop through a
 * uv_async. The writer builds the next group during that fsync; the store makes the next write
 * wait for the publish, so at most one group is between its write and its answer.
 *
 * A submission with a prepare step enters the queue waiting; prepare threads claim waiting
 * submissions in queue order (prep_next is the first one not yet claimed) and mark each ready or
 * refused. The writer thread only ever takes from the head of the queue, and only what is ready,
 * so commit order is submission order.
 *
 * The threads are named (sj-writer, sj-sync, sj-prepare) so that top -H, perf and
 * /proc/PID/task tell them apart. */
#define _GNU_SOURCE /* pthread_setname_np */
#include "node/writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

struct sj_writer {
  uv_async_t async; /* wakes the loop to run done callbacks; async.data = this */
  uv_loop_t *loop;
  sj_store_t *store;
  uint32_t region;
  const sj_signer_t *signers[2]; /* [0] the region's key, [1] its next key during a rotation */
  size_t nsigners;
  size_t max_group;
  pthread_t thread;
  pthread_t sync_thread;
  pthread_t prep_threads[SJ_WRITER_PREPARE_THREADS];
  size_t nprep;             /* prepare threads running */
  pthread_mutex_t lock;
  pthread_cond_t cond;      /* the writer thread waits on it: queued, or the head became ready */
  pthread_cond_t prep_cond; /* prepare threads wait on it: a submission waits for prepare */
  pthread_cond_t sync_cond; /* the sync thread waits on it: a written group, or sync_stop */
  sj_write_req_t *queue_head, *queue_tail; /* submitted, not yet taken (under lock) */
  sj_write_req_t *prep_next;               /* first queued submission waiting for prepare, or
                                              NULL (under lock) */
  sj_write_req_t *done_head, *done_tail;   /* finished, not yet delivered (under lock) */
  sj_write_req_t *sync_head, *sync_tail;   /* written groups (heads, linked by group_next)
                                              waiting for their fsync (under lock) */
  int stopping;                            /* under lock */
  int sync_stop;                           /* under lock: the writer thread has ended */
  uint64_t last_time_ms;                   /* writer thread only: keeps entry times monotonic */
  sj_writer_stats_t stats;
  sj_buf_t hdr, text, note; /* writer thread only: scratch */
  char space_dir[512];      /* "" = no free-space check */
  uint64_t min_free;
};

void sj_writer_set_next_signer(sj_writer_t *w, const sj_signer_t *next) {
  w->signers[1] = next;
  w->nsigners = next ? 2 : 1;
}

void sj_writer_set_space_check(sj_writer_t *w, const char *dir, uint64_t min_free) {
  snprintf(w->space_dir, sizeof w->space_dir, "%s", dir);
  w->min_free = min_free;
}

/* Enough room for the batch and RocksDB's own work (flushes, manifest)? */
static int space_ok(const sj_writer_t *w, size_t batch_bytes) {
  struct statvfs vfs;
  if (!w->space_dir[0] || statvfs(w->space_dir, &vfs) != 0)
    return 1; /* cannot tell: let RocksDB report a real failure */
  uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
  return avail >= w->min_free + 2 * (uint64_t)batch_bytes;
}

/* sj_write_req_t.state */
enum { ST_WAITING, ST_PREPARING, ST_READY, ST_REFUSED };

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void list_push(sj_write_req_t **head, sj_write_req_t **tail, sj_write_req_t *r) {
  r->next = NULL;
  if (*tail)
    (*tail)->next = r;
  else
    *head = r;
  *tail = r;
}

/* Whether the head of the queue can leave it (under lock). */
static int head_ready(const sj_writer_t *w) {
  return w->queue_head && w->queue_head->state >= ST_READY;
}

/* Takes the ready submissions at the head of the queue, until max_group records (at least one
 * submission), or else one refused submission (under lock; head_ready). */
static sj_write_req_t *take_group(sj_writer_t *w) {
  sj_write_req_t *head = w->queue_head, *last = head;
  size_t n = head->nitems;
  while (head->state == ST_READY && last->next && last->next->state == ST_READY &&
         n + last->next->nitems <= w->max_group) {
    last = last->next;
    n += last->nitems;
  }
  w->queue_head = last->next;
  if (!w->queue_head)
    w->queue_tail = NULL;
  last->next = NULL;
  return head;
}

/* The next queued submission after r that waits for prepare, or NULL (under lock). */
static sj_write_req_t *next_waiting(sj_write_req_t *r) {
  while (r && r->state != ST_WAITING)
    r = r->next;
  return r;
}

static void *prepare_main(void *arg) {
  sj_writer_t *w = arg;
  pthread_setname_np(pthread_self(), "sj-prepare");
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->prep_next && !w->stopping)
      pthread_cond_wait(&w->prep_cond, &w->lock);
    sj_write_req_t *r = w->prep_next;
    if (!r) /* stopping and nothing left to prepare */
      break;
    r->state = ST_PREPARING;
    w->prep_next = next_waiting(r->next);
    pthread_mutex_unlock(&w->lock);
    int rv = r->prepare(r);
    pthread_mutex_lock(&w->lock);
    r->rv = rv;
    r->state = rv ? ST_REFUSED : ST_READY;
    if (r == w->queue_head)
      pthread_cond_signal(&w->cond);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static void count_group(sj_writer_t *w, size_t n) {
  unsigned bucket = 0;
  for (size_t lim = 1; n > lim && bucket < 7; lim = lim == 1 ? 9 : lim * 10 + 9)
    bucket++;
  atomic_fetch_add(&w->stats.group_hist[bucket], 1);
}

/* Appends one submission's items to the batch. */
static int add_items(sj_writer_t *w, sj_store_batch_t *b, sj_write_req_t *r) {
  uint64_t size;
  sj_entry_header_t h;
  memset(&h, 0, sizeof h);
  h.version = SJ_ENTRY_VERSION;
  h.region = w->region;
  for (size_t i = 0; i < r->nitems; i++) {
    const sj_write_item_t *it = &r->items[i];
    sj_store_batch_head(b, &size, NULL, h.prev); /* no root: computing it costs log n hashes */
    if (i == 0)
      r->first_seq = size;
    uint64_t t = now_ms();
    w->last_time_ms = t > w->last_time_ms ? t : w->last_time_ms;
    h.seq = size;
    h.time_ms = w->last_time_ms;
    h.kind = it->kind;
    h.disclosure = it->disclosure;
    h.type = it->type;
    h.type_len = it->type_len;
    h.keys = it->keys;
    h.nkeys = it->nkeys;
    if (it->body_len > UINT32_MAX)
      return SJ_ETOOBIG;
    h.body_len = (uint32_t)it->body_len;
    if (it->body_hash)
      memcpy(h.body_hash, it->body_hash, SJ_HASH_LEN);
    else
      sj_sha256(it->body, it->body_len, h.body_hash);
    sj_buf_reset(&w->hdr);
    int rv = sj_entry_encode(&h, &w->hdr);
    /* The header was made here from this body and its hash: the store need not hash it again. */
    if (rv == 0)
      rv = sj_store_batch_add_own(b, w->hdr.p, w->hdr.n, it->body, it->body_len, it->facts,
                                  it->facts_n, r->leaf_hashes[i]);
    if (rv)
      return rv;
  }
  return 0;
}

/* The idempotency rows, once the group's final size is known. */
static int put_idem_rows(sj_store_batch_t *b, sj_write_req_t *group, uint64_t size) {
  uint8_t v[SJ_HASH_LEN + 20];
  int rv = 0;
  for (sj_write_req_t *r = group; rv == 0 && r; r = r->next) {
    if (!r->idem_key)
      continue;
    memcpy(v, r->idem_body_hash, SJ_HASH_LEN);
    sj_put_be64(v + SJ_HASH_LEN, r->first_seq);
    sj_put_be32(v + SJ_HASH_LEN + 8, (uint32_t)r->nitems);
    sj_put_be64(v + SJ_HASH_LEN + 12, size);
    rv = sj_store_batch_put_meta(b, r->idem_key, v, sizeof v);
  }
  return rv;
}

/* Signs the checkpoint of the batch's resulting tree and puts it in the batch. */
static int sign_checkpoint(sj_writer_t *w, sj_store_batch_t *b, uint64_t *size) {
  sj_checkpoint_t cp;
  uint8_t last[SJ_HASH_LEN];
  memset(&cp, 0, sizeof cp);
  snprintf(cp.origin, sizeof cp.origin, "%s", sj_signer_name(w->signers[0]));
  sj_store_batch_head(b, &cp.size, cp.root, last);
  sj_buf_reset(&w->text);
  sj_buf_reset(&w->note);
  int rv = sj_checkpoint_format(&cp, &w->text);
  if (rv == 0)
    rv = sj_note_sign((const char *)w->text.p, w->text.n, w->signers, w->nsigners, &w->note);
  if (rv == 0)
    rv = sj_store_batch_set_checkpoint(b, (const char *)w->note.p, w->note.n);
  if (rv == 0)
    *size = cp.size;
  return rv;
}

static size_t group_bytes(const sj_write_req_t *group) {
  size_t bytes = 0;
  for (const sj_write_req_t *r = group; r; r = r->next)
    for (size_t i = 0; i < r->nitems; i++)
      bytes += r->items[i].body_len + 256; /* header, tree and index rows */
  return bytes;
}

/* Builds the group's batch and writes it (not yet durable nor visible): on success group->batch
 * holds it and every submission its tree_size. */
static int write_group(sj_writer_t *w, sj_write_req_t *group) {
  sj_store_batch_t *b = NULL;
  uint64_t size = 0;
  if (!space_ok(w, group_bytes(group)))
    return SJ_ENOSPACE;
  int rv = sj_store_batch_begin(w->store, w->region, &b);
  for (sj_write_req_t *r = group; rv == 0 && r; r = r->next)
    rv = add_items(w, b, r);
  if (rv == 0)
    rv = sign_checkpoint(w, b, &size);
  if (rv == 0)
    rv = put_idem_rows(b, group, size);
  if (rv) {
    sj_store_batch_abort(b);
    return rv;
  }
  uint64_t t0 = mono_ns();
  rv = sj_store_batch_write(b);
  atomic_fetch_add(&w->stats.commit_ns, mono_ns() - t0);
  if (rv)
    return rv;
  group->batch = b;
  for (sj_write_req_t *r = group; r; r = r->next)
    r->tree_size = size;
  return 0;
}

/* Hands a finished group back to the loop; rv is every submission's result (a refused one keeps
 * its own). */
static void finish(sj_writer_t *w, sj_write_req_t *group, int rv) {
  pthread_mutex_lock(&w->lock);
  while (group) {
    sj_write_req_t *next = group->next;
    if (group->state != ST_REFUSED)
      group->rv = rv;
    list_push(&w->done_head, &w->done_tail, group);
    group = next;
  }
  pthread_mutex_unlock(&w->lock);
  uv_async_send(&w->async);
}

static void *writer_main(void *arg) {
  sj_writer_t *w = arg;
  pthread_setname_np(pthread_self(), "sj-writer");
  for (;;) {
    pthread_mutex_lock(&w->lock);
    while (!head_ready(w) && (w->queue_head || !w->stopping))
      pthread_cond_wait(&w->cond, &w->lock);
    if (!w->queue_head) { /* stopping and drained */
      pthread_mutex_unlock(&w->lock);
      break;
    }
    sj_write_req_t *group = take_group(w);
    pthread_mutex_unlock(&w->lock);
    if (group->state == ST_REFUSED) { /* its prepare step refused it: nothing to write */
      finish(w, group, 0);
      continue;
    }
    int rv = write_group(w, group);
    if (rv) {
      atomic_fetch_add(&w->stats.failures, 1);
      finish(w, group, rv);
      continue;
    }
    pthread_mutex_lock(&w->lock);
    group->group_next = NULL;
    if (w->sync_tail)
      w->sync_tail->group_next = group;
    else
      w->sync_head = group;
    w->sync_tail = group;
    pthread_cond_signal(&w->sync_cond);
    pthread_mutex_unlock(&w->lock);
  }
  return NULL;
}

/* Makes written groups durable (one fsync for all waiting), publishes them in order and hands
 * them back. A failed fsync fails every group it covered; the store then drops their batches. */
static void *sync_main(void *arg) {
  sj_writer_t *w = arg;
  pthread_setname_np(pthread_self(), "sj-sync");
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->sync_head && !w->sync_stop)
      pthread_cond_wait(&w->sync_cond, &w->lock);
    sj_write_req_t *g = w->sync_head;
    if (!g) /* the writer ended and everything is synced */
      break;
    w->sync_head = w->sync_tail = NULL;
    pthread_mutex_unlock(&w->lock);
    uint64_t t0 = mono_ns();
    int rv = sj_store_sync(w->store);
    atomic_fetch_add(&w->stats.commit_ns, mono_ns() - t0);
    while (g) {
      sj_write_req_t *next = g->group_next;
      size_t n = 0;
      for (sj_write_req_t *r = g; r; r = r->next)
        n += r->nitems;
      sj_store_batch_publish(g->batch, rv == 0);
      g->batch = NULL;
      if (rv == 0) {
        atomic_fetch_add(&w->stats.commits, 1);
        atomic_fetch_add(&w->stats.records, n);
        count_group(w, n);
      } else {
        atomic_fetch_add(&w->stats.failures, 1);
      }
      finish(w, g, rv);
      g = next;
    }
    pthread_mutex_lock(&w->lock);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* Loop thread: deliver finished submissions. */
static void on_async(uv_async_t *a) {
  sj_writer_t *w = a->data;
  pthread_mutex_lock(&w->lock);
  sj_write_req_t *r = w->done_head;
  w->done_head = w->done_tail = NULL;
  pthread_mutex_unlock(&w->lock);
  while (r) {
    sj_write_req_t *next = r->next;
    r->done(r);
    r = next;
  }
}

int sj_writer_start(uv_loop_t *loop, sj_store_t *store, uint32_t region, const sj_signer_t *signer,
                    size_t max_group, sj_writer_t **out) {
  sj_writer_t *w = calloc(1, sizeof *w);
  if (!w)
    return -ENOMEM;
  w->loop = loop;
  w->store = store;
  w->region = region;
  w->signers[0] = signer;
  w->nsigners = 1;
  w->max_group = max_group ? max_group : 20000;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  pthread_cond_init(&w->prep_cond, NULL);
  pthread_cond_init(&w->sync_cond, NULL);
  int rv = uv_async_init(loop, &w->async, on_async);
  if (rv) {
    free(w);
    return rv;
  }
  w->async.data = w;
  rv = pthread_create(&w->sync_thread, NULL, sync_main, w);
  if (rv) {
    uv_close((uv_handle_t *)&w->async, (uv_close_cb)free); /* async is the first member */
    return -rv;
  }
  rv = pthread_create(&w->thread, NULL, writer_main, w);
  if (rv) {
    pthread_mutex_lock(&w->lock);
    w->sync_stop = 1;
    pthread_cond_signal(&w->sync_cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->sync_thread, NULL);
    uv_close((uv_handle_t *)&w->async, (uv_close_cb)free); /* async is the first member */
    return -rv;
  }
  /* Prepare threads: at least one must start (the others only add parallelism). */
  while (w->nprep < SJ_WRITER_PREPARE_THREADS &&
         (rv = pthread_create(&w->prep_threads[w->nprep], NULL, prepare_main, w)) == 0)
    w->nprep++;
  if (w->nprep == 0) {
    *out = w;
    sj_writer_stop(w);
    *out = NULL;
    return -rv;
  }
  *out = w;
  return 0;
}

int sj_writer_submit(sj_writer_t *w, sj_write_req_t *r) {
  pthread_mutex_lock(&w->lock);
  if (w->stopping) {
    pthread_mutex_unlock(&w->lock);
    return SJ_ECLOSED;
  }
  r->state = r->prepare ? ST_WAITING : ST_READY;
  list_push(&w->queue_head, &w->queue_tail, r);
  if (r->prepare) {
    if (!w->prep_next)
      w->prep_next = r; /* everything before r was claimed already */
    pthread_cond_signal(&w->prep_cond);
  } else if (r == w->queue_head) {
    pthread_cond_signal(&w->cond);
  }
  pthread_mutex_unlock(&w->lock);
  return 0;
}

static void on_writer_closed(uv_handle_t *h) {
  sj_writer_t *w = h->data;
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cond);
  pthread_cond_destroy(&w->prep_cond);
  pthread_cond_destroy(&w->sync_cond);
  free(w);
}

void sj_writer_stop(sj_writer_t *w) {
  if (!w)
    return;
  pthread_mutex_lock(&w->lock);
  w->stopping = 1;
  pthread_cond_signal(&w->cond);
  pthread_cond_broadcast(&w->prep_cond);
  pthread_mutex_unlock(&w->lock);
  for (size_t i = 0; i < w->nprep; i++) /* they prepare what is queued first */
    pthread_join(w->prep_threads[i], NULL);
  pthread_join(w->thread, NULL);
  pthread_mutex_lock(&w->lock); /* the writer wrote its last group: sync it, then end */
  w->sync_stop = 1;
  pthread_cond_signal(&w->sync_cond);
  pthread_mutex_unlock(&w->lock);
  pthread_join(w->sync_thread, NULL);
  on_async(&w->async); /* deliver what finished while stopping */
  sj_buf_deinit(&w->hdr);
  sj_buf_deinit(&w->text);
  sj_buf_deinit(&w->note);
  uv_close((uv_handle_t *)&w->async, on_writer_closed);
}

const sj_writer_stats_t *sj_writer_stats(const sj_writer_t *w) {
  return &w->stats;
}
