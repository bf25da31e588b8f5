/* node/node_int.h — the node's state and the helpers its API files share (api_*.c, node.c). */
#ifndef SJ_NODE_INT_H
#define SJ_NODE_INT_H

#include "common/common.h"
#include "crypto/crypto.h"
#include "net/net.h"
#include "node/audit.h"
#include "node/cache.h"
#include "node/config.h"
#include "node/credit.h"
#include "node/metrics.h"
#include "node/node.h"
#include "node/record.h"
#include "node/tokens.h"
#include "node/writer.h"
#include "storage/storage.h"

#include <uv.h>

/* Routes, for metrics labels. */
enum {
  R_RECORDS_POST, R_RECORD_GET, R_SUBJECT, R_TRACE, R_CHECKPOINT, R_INCLUSION, R_CONSISTENCY,
  R_ENTRIES, R_KEYS, R_HEALTHZ, R_METRICS, R_OPENAPI,
  R_REPORT, R_AUDIT,                          /* api_credit.c */
  R_JOURNEY, R_EPCIS_CAPTURE, R_EPCIS_EVENTS, /* api_trace.c */
  R_STATUS, R_ALERTS, R_COSIGNATURES,         /* replication */
  R_ADMIN,                                    /* api_admin.c */
  R_WEB,                                      /* api_web.c: pages and assets */
  R_COUNT
};

/* One in-flight Idempotency-Key (chained hash table keyed by XXH3, full compare behind it). */
typedef struct idem_slot {
  struct idem_slot *next;
  uint64_t h;
  char key[72];
} idem_slot_t;
#define IDEM_BUCKETS 1024

typedef struct follow_sub follow_sub_t; /* node/follow.c */
typedef struct repl repl_t;             /* node/replicate.c */
typedef struct fold_cache fold_cache_t; /* node/disclosure.c */

struct sj_node {
  uv_loop_t *loop;
  sj_config_t cfg;
  char region_str[8];    /* "310000" */
  sj_store_t *store;
  sj_signer_t *signer;   /* the region's key: signs checkpoints */
  sj_signer_t *next_signer; /* during a key rotation: the next key, co-signing checkpoints */
  sj_buf_t vkey;         /* its verifier key text */
  sj_writer_t *writer;
  sj_server_t *server;     /* cleartext h2 (listen); the registration target of api_register_* */
  sj_server_t *tls_server; /* HTTPS (tls-listen), same routes; NULL when not configured */
  int servers_open;        /* servers not yet closed (shutdown) */
  sj_token_t mtls_peers[SJ_MAX_PEERS]; /* identities of peers known by client certificate (CN =
                                          region code), used like peer tokens */
  sj_tokens_t *tokens;
  sj_addr_limiter_t *public_limit; /* the public's per-address rate limit; NULL when off */
  sj_metrics_t *metrics;
  sj_cache_t *cache;     /* public lookup responses (node/cache.c) */
  fold_cache_t *folds;   /* subjects' public-window folds (node/disclosure.c) */
  sj_audit_t *audit;     /* the trail of non-public reads (node/audit.c); NULL if it failed */
  int route_ids[R_COUNT];
  uint8_t hmac_key[SJ_REC_HMAC_KEY_LEN];
  idem_slot_t *inflight[IDEM_BUCKETS];
  uint64_t posts_inflight; /* POST /v1/records waiting for the writer */
  follow_sub_t *follow_subs; /* open follow streams (node/follow.c) */
  repl_t *repl;              /* followers of the other regions (node/replicate.c) */
  uint64_t cosigned[33];     /* [k]: newest size of our checkpoints carrying >= k cosignatures */
  void (*close_done)(void *);
  void *close_arg;
  int closing;
  int store_jobs;     /* backups and compactions running on the thread pool (node/api_admin.c) */
  int close_deferred; /* the servers closed while store_jobs > 0: the last job finishes closing */
  struct {            /* the index compaction (node/api_admin.c); loop thread only */
    int running, rv;
    uint64_t runs, started_ms, upper_before, upper_after, ms, finished_ms;
  } compaction;
  struct {           /* the block cache warm-up at start (cfg.block_cache_warm; api_admin.c) */
    atomic_int stop; /* set when the node closes: the scan returns soon */
    int running;     /* loop thread only, as the rest */
    uint64_t bytes, ms;
  } warm;
};

/* The last part of sj_node_close, once the servers are closed and no store job runs. */
void node_close_finish(sj_node_t *n);

/* Who is asking. */
typedef struct {
  sj_role_t role;
  const sj_token_t *tok; /* NULL for the public */
  uint8_t subject_key_type; /* SJ_ROLE_SUBJECT: its index key */
  uint8_t subject_key[SJ_HASH_LEN];
  size_t subject_key_len;
  const char *purpose; /* the X-Purpose header (for the audit trail), or NULL; request-owned */
  uint64_t *changes_ms; /* or NULL: lowered by api_disclose_record and api_public_prime to the
                           earliest wall-clock instant (ms) at which what they disclosed may change
                           with time alone (node/disclosure.c); for the response cache */
} caller_t;

/* Finds the caller from the Authorization header. On a bad header or unknown token answers 401
 * and returns nonzero. */
int api_caller(sj_node_t *n, sj_req_t *req, int route, caller_t *c);
/* The servers' gate (sj_server_set_gate, arg = the node; node/tokens.c): callers without a known
 * token or peer certificate are rate-limited per source address (public-rate); over it, 429 with
 * Retry-After and a problem+json body. */
int tokens_public_gate(sj_req_t *req, void *arg);
/* Whether the caller may see the raw body of an entry (node/disclosure.c): everything for full
 * access, and for the public only a body that is exactly its public view. body may be NULL when
 * the node does not hold it (then: full access only). */
int api_body_visible(sj_node_t *n, const caller_t *c, const sj_entry_header_t *h,
                     const uint8_t *body, size_t len);
/* Appends ",\"record\":<the record as the caller may see it>" to out and returns 0, or returns
 * 1 (nothing appended) when the caller may see nothing of the body. Records the read in the audit
 * trail where the data is not public (node/disclosure.c). */
int api_disclose_record(sj_node_t *n, const caller_t *c, const sj_entry_header_t *h,
                        const uint8_t *body, size_t len, sj_buf_t *out);

/* Answers an RFC 7807 problem. errors_json (may be NULL) is a JSON array. */
void api_problem(sj_node_t *n, sj_req_t *req, int route, int status, const char *title,
                 const char *detail, const sj_buf_t *errors_json);
/* Answers with an owned buffer's bytes (the buffer is consumed). */
/* The response cache (node/cache.h) for GET answers to the public, keyed by the request's path
 * and query. api_from_cache answers req from it and returns 1 when it holds a valid copy (never
 * for a request with an Authorization header). api_to_cache keeps out for the public caller c,
 * valid while none of the index keys behind dep_hashes (sj_cache_dep_hash) changed and until the
 * wall-clock instant changes_ms (api_cache_expiry; 0: not kept). */
int api_from_cache(sj_node_t *n, sj_req_t *req, int route, uint64_t t0);
void api_to_cache(sj_node_t *n, sj_req_t *req, const caller_t *c, const uint64_t *dep_hashes,
                  size_t ndeps, uint64_t changes_ms, const sj_buf_t *out);
void api_reply(sj_node_t *n, sj_req_t *req, int route, int status, const char *ctype, sj_buf_t *b,
               uint64_t t0);
/* A problem naming one invalid parameter: 400 with errors [{"field":name,"code":code}]. */
void api_bad_param(sj_node_t *n, sj_req_t *req, int route, const char *name, const char *code,
                   const char *message);

/* Appends s as a JSON string (quoted, escaped). */
int json_str(sj_buf_t *b, const char *s, size_t n);
/* Appends base64 of p as a JSON string. */
int json_b64(sj_buf_t *b, const uint8_t *p, size_t n);

/* Parses a region path parameter; answers 400 and returns nonzero when invalid. */
int api_region_param(sj_node_t *n, sj_req_t *req, int route, uint32_t *region);
/* Parses an unsigned decimal query/path value; 0 or SJ_EINVAL. */
int parse_u64(const char *s, uint64_t *out);

/* Appends one entry as a JSON object {"region","seq","leaf_hash",...} for lookups: with_leaf adds
 * "leaf" (header bytes) and the body where visible. Errors from the store. */
int api_entry_json(sj_node_t *n, const caller_t *c, uint32_t region, uint64_t seq, int with_leaf,
                   const sj_bytes_t *fetched_body, sj_buf_t *out, sj_buf_t *scratch_h,
                   sj_buf_t *scratch_b);
/* The same for an entry already read with sj_store_get_entries (SJ_GET_ENTRY, and SJ_GET_FACTS
 * for its stored leaf hash), e.g. a page of lookups read in one MultiGet. */
int api_entry_json_read(sj_node_t *n, const caller_t *c, uint32_t region, uint64_t seq,
                        int with_leaf, const sj_store_entry_t *e, sj_buf_t *out);
/* The loop-clock instant (uv_now's clock, loop_now_ms being its present value) at which an answer
 * that may change at wall-clock instant changes_ms (CLOCK_REALTIME, ms) expires in the response
 * cache: the same distance ahead, and at most cache-ttl. A past changes_ms gives loop_now_ms (not
 * kept). */
uint64_t api_cache_expiry(const sj_node_t *n, uint64_t changes_ms, uint64_t loop_now_ms);
/* A subject lookup has read every index row of key (refs, with their times, and copies[i]: the
 * entry as its row's copy holds it, found = 0 where the row had none or the lookup kept none;
 * copies may be NULL): folds the subject's publication windows from them unless a current fold
 * is cached (node/disclosure.c), reading only the entries without a copy, and gives the stored
 * leaf hash of refs[i] in leaf[i] where the fold read it (has_leaf[i] = 1). On success lowers
 * *changes_ms to the earliest wall-clock instant at which any of the subject's entries may change
 * with time alone (at most cache-ttl from the fold). */
int api_public_prime(sj_node_t *n, const uint8_t *key, size_t keylen, const sj_entry_ref_t *refs,
                     const uint64_t *time_ms, const sj_store_entry_t *copies, size_t nrefs,
                     uint8_t (*leaf)[SJ_HASH_LEN], uint8_t *has_leaf, uint64_t *changes_ms);
/* The fold cache of fold-cache-entries slots (0: off, lookups fold every time); its counters for
 * /metrics: current folds found, subjects folded, slots holding a fold. */
int api_folds_new(size_t entries, fold_cache_t **out);
void api_folds_free(fold_cache_t *fc); /* NULL is fine */
void api_folds_stats(fold_cache_t *fc, uint64_t *hits, uint64_t *folds, uint64_t *entries);

/* Fetches a withheld body of region's entry seq from its origin on behalf of an authorised
 * caller ("authority" or "subject <id>"), through the peer connection (node/replicate.c). cb runs
 * once on the loop with the body (unverified: the caller checks it against the header) or an
 * error. Returns 0, or SJ_ENOTFOUND when the region is not a configured peer (cb not called). */
typedef void (*repl_body_cb)(void *arg, int err, const uint8_t *body, size_t n);
int repl_fetch_body(sj_node_t *n, uint32_t region, uint64_t seq, const char *on_behalf,
                    repl_body_cb cb, void *arg);

/* Follow streams (node/follow.c): start one on req (answers it), wake the streams of a region
 * after a commit, end them all at shutdown. */
int api_follow_start(sj_node_t *n, sj_req_t *req, const caller_t *c, uint32_t region,
                     uint64_t start);
void api_follow_notify(sj_node_t *n, uint32_t region);
void api_follow_close_all(sj_node_t *n);

/* Replication (node/replicate.c): start following every configured peer region; stop. */
int repl_start(sj_node_t *n);
void repl_stop(sj_node_t *n);
void repl_free(sj_node_t *n); /* after repl_stop and a loop turn */
/* Verifies a cosignature line by a peer region over checkpoint text (its pinned key, or the next
 * key a verified rotation announced). 0, SJ_ENOTFOUND (not a configured peer, or another key),
 * SJ_EFORMAT, SJ_EVERIFY. */
int repl_cosig_verify(sj_node_t *n, uint32_t region, const char *text, size_t tl, const char *line,
                      size_t len);
/* The stored rotation note of a region (own: the one this node announced). SJ_ENOTFOUND if none. */
int repl_rotation_note(sj_node_t *n, uint32_t region, sj_buf_t *out);
/* Appends the per-region status / alerts JSON (node/replicate.c). */
void repl_status_json(sj_node_t *n, sj_buf_t *out);
void repl_alerts_json(sj_node_t *n, sj_buf_t *out);
void repl_metrics(sj_node_t *n, sj_buf_t *out);
void api_register_repl(sj_node_t *n);
/* The newest size of our own checkpoints carrying at least k cosignatures (node/api_repl.c). */
int api_cosigned_size(sj_node_t *n, uint64_t k, uint64_t *size);

/* ---- Submissions (node/api_write.c): POST /v1/records and POST /v1/epcis/capture ------------- */

/* 0 when the caller may append (role submit); otherwise answers 401/403 and returns -1. */
int api_require_submit(sj_node_t *n, sj_req_t *req, const caller_t *c, int route,
                       const char *doing, const char *verb);

/* What an endpoint that appends records supplies to api_submit_records. Static; borrowed. */
typedef struct api_submit_ops {
  int route; /* R_RECORDS_POST or R_EPCIS_CAPTURE: metrics label of every answer */
  /* Any thread (a writer prepare thread, never the loop): turns the body (borrowed for the call)
   * into records with sj_record_parse_request's contract; ctype is the Content-Type or NULL. */
  int (*parse)(const uint8_t *body, size_t len, const char *ctype, const uint8_t *hmac_key,
               sj_record_t **recs, size_t *nrecs, sj_rec_errors_t *errs);
  /* Loop: answers a body parse refused, with parse's return and errors. */
  void (*refused)(sj_node_t *n, sj_req_t *req, int rv, sj_rec_errors_t *errs);
  /* Loop: answers an append that failed with the writer's rv (nothing was written). */
  void (*failed)(sj_node_t *n, sj_req_t *req, int rv, size_t nrecs);
  /* Loop: answers an appended submission, or one replayed for its Idempotency-Key: count entries
   * from first, their leaf hashes, the tree size after their commit, and the meta row key of
   * meta_key ("" when none). */
  void (*accepted)(sj_node_t *n, sj_req_t *req, const char *mkey, uint64_t first, size_t count,
                   uint8_t (*leaf)[SJ_HASH_LEN], uint64_t tree_size, uint64_t t0);
  /* Loop: the meta row written in the same batch as the records (the writer's idempotency row:
   * body hash, first seq, count, tree size), into mkey; key is the request's Idempotency-Key (len
   * printable bytes, not NUL-terminated) or NULL. Returns 1 for a row, 0 for none. A committed
   * row under that key answers a request that has an Idempotency-Key again (422 if its body
   * differs); while one is in flight, another gets 409. */
  int (*meta_key)(const caller_t *c, const char *key, size_t len, char mkey[72]);
} api_submit_ops_t;

/* Appends the records of req, whose caller c the endpoint has authorised: Idempotency-Key
 * (validated: 400 IDEMPOTENCY_KEY_INVALID; replayed; 409 while in flight), the body parsed and
 * validated off the loop by ops->parse, then appended all-or-nothing by the writer, in arrival
 * order, and answered through ops once synced (503 when the node is stopping or out of memory).
 * t0 (api_now_us) is the start of the request for its latency metric. Loop thread. */
void api_submit_records(sj_node_t *n, sj_req_t *req, const caller_t *c, const api_submit_ops_t *ops,
                        uint64_t t0);

/* Invalidates cached lookups that depend on the index keys of a committed header. */
void api_cache_invalidate_header(sj_node_t *n, const sj_entry_header_t *h);

void api_register_admin(sj_node_t *n); /* node/api_admin.c */
/* Starts reading cfg.block_cache_warm's families through the block cache on the thread pool (a
 * store job: the node closes after it; closing stops it early). 0 when nothing is to be warmed. */
int api_warm_start(sj_node_t *n);      /* node/api_admin.c */
void api_register_web(sj_node_t *n);   /* node/api_web.c */
void api_register_write(sj_node_t *n);
void api_register_read(sj_node_t *n);
void api_register_log(sj_node_t *n);
void api_register_credit(sj_node_t *n); /* node/api_credit.c */
void api_register_trace(sj_node_t *n);  /* node/api_trace.c */
uint64_t api_now_us(void);

/* ---- Node glue (node/api_credit.c). Loop thread. ---------------------------------------------- */

/* Queues one audit row in n->audit: the caller c (its X-Purpose included) read entry h (about
 * the subject its first subject key names). Entries without a subject key (trace events) are not audited. */
void api_audit_read(sj_node_t *n, const caller_t *c, const sj_entry_header_t *h);

/* Every entry a node holds about one subject, decoded and folded (node/api_credit.c). */
typedef struct {
  size_t n;             /* entries */
  int truncated;        /* more than the cap: the oldest-indexed ones were read */
  sj_buf_t *hdr, *body; /* owned: header and body bytes of each entry */
  int *has_body;        /* whether the node holds entry i's body */
  json_t **rec;         /* owned: parsed bodies (NULL where absent or unparsable) */
  sj_credit_entry_t *e; /* fold input (rec pointers borrow from rec[]) */
  sj_credit_state_t *s; /* fold output */
} api_subject_t;

/* Loads and folds at now_ms the entries indexed under key (sj_store_index_key form), at most cap
 * of them. Errors: the store's, -ENOMEM, SJ_EFORMAT (rules). */
int api_subject_load(sj_node_t *n, const uint8_t *key, size_t keylen, size_t cap, uint64_t now_ms,
                     api_subject_t *out);
void api_subject_free(api_subject_t *s);

#endif
