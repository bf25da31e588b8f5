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

#endif
