/* node/writer — the region's single writer: a thread that takes every queued submission, appends
 * them to the region's own log as one RocksDB batch with one signed checkpoint and one fsync
 * (group commit), and hands the results back to the libuv loop. The loop never waits on fsync,
 * and neither does the writer thread: a sync thread makes each written group durable while the
 * writer builds the next one, and only then is the group visible and answered.
 * A submission may carry a prepare step (parsing and validating its request): it runs on one of
 * the writer's prepare threads, so that the loop never parses either, and overlaps the commit of
 * the submissions before it.
 *
 * Threads: sj_writer_submit() may be called from any thread; done callbacks run on the loop thread
 * given to sj_writer_start(). Submissions are committed in the order they were submitted, however
 * long each one's prepare step takes. A submission is all-or-nothing: if its group fails to
 * commit, every submission of the group gets the error and nothing of it is stored. */
#ifndef SJ_NODE_WRITER_H
#define SJ_NODE_WRITER_H

#include "crypto/crypto.h"
#include "storage/storage.h"

#include <stdatomic.h>
#include <uv.h>

/* One record to append: what its header says, and its body. Pointers are borrowed until done. */
typedef struct {
  uint8_t kind;       /* sj_kind_t */
  uint8_t disclosure; /* sj_disclosure_t */
  const char *type;   /* record type, type_len bytes */
  uint8_t type_len;
  const sj_index_key_t *keys;
  uint16_t nkeys;
  const uint8_t *body;
  size_t body_len;
  const uint8_t *body_hash; /* optional: SHA-256 of body, computed by the caller from these very
                               bytes (the writer then neither hashes the body nor has the store
                               check it again); NULL: the writer hashes it */
  const uint8_t *facts;     /* optional: the store's annotation of this entry (sj_store_opts_t.
                               annotate), made by the caller off the writer thread; facts_n bytes
                               (0: none). NULL: the store's hook makes it on the writer thread */
  size_t facts_n;
} sj_write_item_t;

typedef struct sj_write_req sj_write_req_t;
typedef void (*sj_write_done_fn)(sj_write_req_t *r);

/* A submission. The caller owns it and keeps it alive until done is called. */
struct sj_write_req {
  /* in */
  const sj_write_item_t *items;
  size_t nitems;
  const char *idem_key; /* optional: meta row written in the same batch, whose value is
                           idem_body_hash || be64 first_seq || be32 nitems || be64 tree_size, so
                           that a retried submission finds what the first one appended */
  uint8_t idem_body_hash[SJ_HASH_LEN];
  sj_write_done_fn done;
  void *ud;
  /* Optional: runs once on a prepare thread (never the loop) before r is committed, and may fill
   * items, nitems, leaf_hashes and idem_body_hash. A nonzero return means r is not committed:
   * done gets that value in rv. It must not touch the loop or the request's network objects. */
  int (*prepare)(sj_write_req_t *r);
  /* out, valid in done */
  int rv;                         /* 0, or SJ_ESTORE / SJ_ENOSPACE / -ENOMEM / SJ_ECLOSED */
  uint64_t first_seq;             /* seq of items[0] */
  uint64_t tree_size;             /* the log's size after the commit that held this submission */
  uint8_t (*leaf_hashes)[SJ_HASH_LEN]; /* caller-provided array of nitems, filled on success */
  /* private */
  sj_write_req_t *next;
  sj_write_req_t *group_next; /* the next written group waiting for its fsync */
  sj_store_batch_t *batch;    /* the written batch of the group this submission heads */
  int state; /* under the writer's lock: waiting for prepare, being prepared, ready, refused */
};

typedef struct {
  atomic_uint_fast64_t commits;      /* group commits done */
  atomic_uint_fast64_t records;      /* records appended */
  atomic_uint_fast64_t failures;     /* group commits that failed */
  atomic_uint_fast64_t commit_ns;    /* total time writing groups and syncing them */
  atomic_uint_fast64_t group_hist[8]; /* group sizes in records: 1, 2-9, 10-99, ... 10^6+, >=10^7 */
} sj_writer_stats_t;

typedef struct sj_writer sj_writer_t;

/* Starts the writer thread (and SJ_WRITER_PREPARE_THREADS prepare threads) for region, signing
 * checkpoints with signer (borrowed; must outlive the writer) under its name as origin. max_group
 * caps records per group commit (0 = 20000). */
#define SJ_WRITER_PREPARE_THREADS 2
int sj_writer_start(uv_loop_t *loop, sj_store_t *store, uint32_t region, const sj_signer_t *signer,
                    size_t max_group, sj_writer_t **out);
/* Refuses group commits with SJ_ENOSPACE (nothing written) while the file system holding dir has
 * less than min_free bytes available, so that RocksDB never meets a full disk mid-batch (which
 * would leave it read-only until reopened). dir is copied. Call before the first submit. */
void sj_writer_set_space_check(sj_writer_t *w, const char *dir, uint64_t min_free);
/* During a key rotation: checkpoints are signed by next as well (borrowed; outlives the writer).
 * Call before the first submit. */
void sj_writer_set_next_signer(sj_writer_t *w, const sj_signer_t *next);
/* Queues r. Returns 0 (done will be called once, later, on the loop) or SJ_ECLOSED when stopping. */
int sj_writer_submit(sj_writer_t *w, sj_write_req_t *r);
/* Stops accepting, finishes what is queued (prepared and committed), joins the threads, runs
 * pending done callbacks synchronously, closes its loop handle (the loop must run to finish
 * closing) and frees. */
void sj_writer_stop(sj_writer_t *w);
const sj_writer_stats_t *sj_writer_stats(const sj_writer_t *w);

#endif
