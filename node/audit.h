/* node/audit — the audit trail of reads of non-public data (docs/DISCLOSURE.md): who read, whose
 * record, which entry, when, and the purpose the reader gave. A subject reads its own trail at
 * GET /v1/subjects/{id}/audit.
 *
 * Storage: an append-only NDJSON file (<data-dir>/audit.log), one row a line. Rows are queued in
 * memory by sj_audit_add (cheap: a mutex and a copy, never I/O) and written by the trail's own
 * flusher thread every flush_ms or once SJ_AUDIT_BATCH rows wait, each batch with one write and
 * one fdatasync. Rows added less than flush_ms (plus one fdatasync) before a crash or power loss
 * may be lost; sj_audit_flush and sj_audit_close lose nothing. A torn last line (crash mid-write)
 * is cut off at open. An in-memory index (subject key -> file offsets) is rebuilt at open.
 *
 * Threads: every function may be called from any thread; sj_audit_add never blocks on I/O
 * (sj_audit_query reads the subject's rows with pread, under the trail's lock). */
#ifndef SJ_NODE_AUDIT_H
#define SJ_NODE_AUDIT_H

#include "common/common.h"
#include "crypto/crypto.h"
#include "node/credit.h"
#include "node/node_int.h"

#include <stddef.h>
#include <stdint.h>

#define SJ_AUDIT_WHO_MAX 64
#define SJ_AUDIT_PURPOSE_MAX 128
#define SJ_AUDIT_BATCH 4096       /* rows that wake the flusher before flush_ms */
#define SJ_AUDIT_QUEUE_MAX 262144 /* rows waiting; beyond it rows are dropped and counted */

typedef struct sj_audit sj_audit_t;

typedef struct {
  uint64_t time_ms;           /* when the read was answered (ms since the epoch) */
  uint8_t role;               /* the reader's sj_role_t */
  char who[SJ_AUDIT_WHO_MAX]; /* the reader's token label ("" if it has none) */
  uint8_t key_type;           /* whose: the subject's index key type (SJ_KEY_USCC, */
  uint8_t key_len;            /*   SJ_KEY_PERSON = HMAC of the identity number, never */
  uint8_t key[SJ_HASH_LEN];   /*   the number itself) and its bytes */
  uint32_t region;            /* the entry read */
  uint64_t seq;
  char purpose[SJ_AUDIT_PURPOSE_MAX]; /* the X-Purpose the reader gave, or "" */
} sj_audit_row_t;

typedef struct {
  uint64_t written;      /* rows written and synced since open */
  uint64_t on_disk;      /* rows in the file (including those from before open) */
  uint64_t pending;      /* rows waiting in memory */
  uint64_t dropped;      /* rows refused because the queue was full */
  uint64_t write_errors; /* failed write/fdatasync calls (their rows are lost) */
} sj_audit_stats_t;

/* Opens (creating, mode 0600) the trail at path and starts its flusher. flush_ms 0 = 200.
 * Errors: -errno (open, read), -ENOMEM, SJ_EINVAL (thread). */
int sj_audit_open(const char *path, uint64_t flush_ms, sj_audit_t **out);
/* Queues one row (copied). Returns 0, or SJ_ETOOBIG when SJ_AUDIT_QUEUE_MAX rows wait (the row
 * is dropped and counted). */
int sj_audit_add(sj_audit_t *a, const sj_audit_row_t *row);
/* Waits until every row added before the call is written and synced. Returns 0 or the first
 * write error since the last flush (-errno). */
int sj_audit_flush(sj_audit_t *a);
/* Calls fn for the subject's rows, newest first: rows whose ordinal (0 = the subject's first row
 * ever) is below before (UINT64_MAX = from the newest), at most limit of them. *next receives the
 * ordinal to pass as before for the following page, or 0 when there is none. fn returns 0 to go
 * on, nonzero to stop. Errors: -errno (read), -ENOMEM. */
typedef int (*sj_audit_fn)(void *ctx, const sj_audit_row_t *row);
int sj_audit_query(sj_audit_t *a, uint8_t key_type, const uint8_t *key, size_t key_len,
                   uint64_t before, size_t limit, sj_audit_fn fn, void *ctx, uint64_t *next);
void sj_audit_stats(sj_audit_t *a, sj_audit_stats_t *out);
/* Flushes, stops the flusher and frees a. NULL is fine. */
void sj_audit_close(sj_audit_t *a);

/* ---- Node glue shared by node/api_credit.c and node/disclosure.c -------------------------------
 * (These belong in node_int.h / struct sj_node; see docs/DISCLOSURE.md "Wiring".) Loop thread. */

/* The node's audit trail (<data-dir>/audit.log), opened when the credit routes are registered and
 * flushed at process exit. NULL if it could not be opened (logged once). */
sj_audit_t *api_audit(sj_node_t *n);
/* The node, if exactly one registered its routes in this process; else NULL. For
 * api_body_visible, which is given no node (docs/DISCLOSURE.md "Wiring"). */
sj_node_t *api_only_node(void);
/* The X-Purpose of the request being answered on this thread, for the rows its reads add; NULL
 * clears it. The string is copied (truncated to SJ_AUDIT_PURPOSE_MAX - 1 bytes). */
void api_audit_set_purpose(const char *purpose);
/* Queues one audit row: the caller c read entry h (about the subject its first subject key names).
 * Entries without a subject key (trace events) are not audited. */
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
