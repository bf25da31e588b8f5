/* node/record — validation and normalisation of submitted records, before anything is written.
 *
 * A submission body (application/json: one object or an array of objects; application/x-ndjson:
 * one object per non-empty line) is parsed with jansson, duplicate keys refused, and every record
 * checked against the record contract (docs/API.md): required fields and enums, unified social
 * credit codes, resident identity numbers, GTINs, EPC URNs and GS1 Digital Link URIs, EPCIS 2.0
 * event type, time and time zone offset. Every error of every record is collected (up to a cap),
 * each as {index, field (a JSON Pointer relative to the record), code, message}.
 *
 * A valid record becomes what a log entry header needs (crypto/crypto.h, sj_entry_header_t): kind,
 * type string, disclosure, index keys, and the body bytes with their SHA-256:
 *   - credit: one key, the subject: SJ_KEY_USCC (the code in clear) for enterprise, organisation
 *     and individual_business; SJ_KEY_PERSON = HMAC-SHA256(hmac key, identity number) for person.
 *   - trace: one SJ_KEY_EPC per distinct identifier the event names, in canonical EPC URN form
 *     (node/epc.h): epcList, parentID, childEPCs, inputEPCList, outputEPCList, the epcClass of the
 *     four quantity lists, readPoint.id and bizLocation.id, in that order, duplicates dropped.
 *   - body: a single object or an NDJSON line keeps the submitter's exact bytes (surrounding
 *     whitespace trimmed); an element of a JSON array keeps its bytes with the whitespace outside
 *     strings removed (keys, order, numbers and string escapes exactly as sent).
 *
 * Depends on jansson, crypto (SHA-256, HMAC) and node/epc. Thread-safe: no global state. Never
 * logs (the caller logs where it handles the error, without echoing identity numbers). */
#ifndef SJ_NODE_RECORD_H
#define SJ_NODE_RECORD_H

#include "common/common.h"
#include "crypto/crypto.h"
#include "node/epc.h"

#include <stddef.h>
#include <stdint.h>

#define SJ_REC_HMAC_KEY_LEN 32
#define SJ_REC_ERRORS_DEFAULT_LIMIT 1000
#define SJ_REC_FACTS_MAX 256 /* room for a record's facts annotation (>= SJ_CREDIT_FACT_MAX) */

/* ---- Errors ------------------------------------------------------------------------------------
 */

typedef struct {
  size_t index;      /* record number in the request, from 0 (NDJSON: non-empty lines) */
  char field[128];   /* JSON Pointer relative to the record ("/subject/id"); "" = whole record */
  char code[48];     /* stable UPPER_SNAKE code (docs/API.md, "Validation error codes") */
  char message[160]; /* one English sentence; never contains an identity number */
} sj_rec_error_t;

/* A growable list of errors, with a cap: errors past limit are counted in total, not kept. */
typedef struct {
  sj_rec_error_t *v; /* owned array of n */
  size_t n;          /* errors kept, <= limit */
  size_t cap;        /* allocated slots */
  size_t limit;      /* most errors kept */
  size_t total;      /* errors found, including those not kept */
  int oom;           /* an error could not be stored for lack of memory */
} sj_rec_errors_t;

/* limit 0 means SJ_REC_ERRORS_DEFAULT_LIMIT. deinit frees; the list may be reused after init. */
void sj_rec_errors_init(sj_rec_errors_t *e, size_t limit);
void sj_rec_errors_deinit(sj_rec_errors_t *e);
/* Adds one error (field and code are copied, truncated to fit; the message is formatted). Never
 * fails: past the limit only total grows; on allocation failure oom is set. */
void sj_rec_errors_add(sj_rec_errors_t *e, size_t index, const char *field, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Appends the kept errors as a JSON array of {"index","field","code","message"} to out.
 * Errors: -ENOMEM. */
int sj_rec_errors_to_json(const sj_rec_errors_t *e, sj_buf_t *out);

/* ---- Records -----------------------------------------------------------------------------------
 */

typedef enum {
  SJ_SUBJECT_NONE = 0, /* trace records */
  SJ_SUBJECT_ENTERPRISE,
  SJ_SUBJECT_ORGANISATION,
  SJ_SUBJECT_INDIVIDUAL_BUSINESS,
  SJ_SUBJECT_PERSON,
} sj_subject_type_t;

/* A validated record. Everything is owned by the record; sj_records_free() releases it. */
typedef struct {
  size_t index;                         /* record number in the request */
  uint8_t kind;                         /* sj_kind_t */
  uint8_t disclosure;                   /* sj_disclosure_t */
  uint8_t subject_type;                 /* sj_subject_type_t; NONE for trace */
  uint8_t type_len;                     /* strlen(type) */
  char type[SJ_ENTRY_MAX_TYPE_LEN + 1]; /* credit type ("penalty") or EPCIS event type */
  char subject_id[19];                  /* credit: USCC or identity number as sent; "" for trace.
                                           A person's number must never reach a header, a log
                                           line or a public response. */
  int64_t event_time_ms;                /* trace: eventTime, ms since the epoch (UTC); 0 credit */
  uint8_t *body;                        /* owned; the bytes to store and hash */
  size_t body_len;
  uint8_t body_hash[SJ_HASH_LEN]; /* SHA-256 of body */
  sj_index_key_t *keys;           /* owned array of nkeys; key bytes owned too */
  uint16_t nkeys;
  uint8_t *key_bytes; /* owned storage the keys point into */
  uint16_t facts_n;   /* length of facts (0: none) */
  uint8_t facts[SJ_REC_FACTS_MAX]; /* the store's annotation of the entry (node/credit.h,
                                      sj_credit_annotate_parsed), made from the tree already parsed
                                      so that the writer need not parse the body again */
} sj_record_t;

/* Frees an array of n records as returned by sj_record_parse_request. NULL is fine. */
void sj_records_free(sj_record_t *recs, size_t n);

/* Parses and validates a whole submission.
 *   body, n       the request body (not NUL-terminated); borrowed for the call only.
 *   content_type  the Content-Type header value, parameters allowed ("application/json;
 *                 charset=utf-8"); NULL counts as missing. Accepted: application/json,
 *                 application/x-ndjson (also application/ndjson). A charset other than utf-8 is
 *                 refused.
 *   hmac_key      the regions' shared 32-byte key for person index keys; borrowed.
 *   max_records   most records accepted in one request (0 = no limit).
 * On success returns 0 and *recs (owned by the caller, sj_records_free) holding *nrecs >= 1
 * records in request order. Otherwise nothing is returned in recs/nrecs, errs holds the reasons,
 * and the return tells the caller what to answer:
 *   SJ_EPROTO   content type not accepted (CONTENT_TYPE_UNSUPPORTED; HTTP 415)
 *   SJ_EFORMAT  the body as a whole is unusable: empty, not JSON, duplicate keys in an
 *               application/json body, neither an object nor an array (HTTP 400)
 *   SJ_ETOOBIG  more than max_records records (TOO_MANY_RECORDS; HTTP 413)
 *   SJ_EINVAL   one or more records invalid (every error collected; HTTP 400)
 *   -ENOMEM
 * errs must have been initialised; errors are appended to it. */
int sj_record_parse_request(const uint8_t *body, size_t n, const char *content_type,
                            const uint8_t hmac_key[SJ_REC_HMAC_KEY_LEN], size_t max_records,
                            sj_record_t **recs, size_t *nrecs, sj_rec_errors_t *errs);

/* Fills the record's part of an entry header: kind, disclosure, type, type_len, body_hash,
 * body_len, nkeys, keys. The pointers borrow from rec; region, seq, time and prev are the
 * writer's. */
void sj_record_header_fill(const sj_record_t *rec, sj_entry_header_t *h);

/* The SJ_KEY_PERSON index key of a resident identity number, for lookups: HMAC-SHA256(hmac_key,
 * id). Returns 0, or SJ_EINVAL if id is not a valid identity number (out untouched). */
int sj_record_person_key(const uint8_t hmac_key[SJ_REC_HMAC_KEY_LEN], const char *id, size_t n,
                         uint8_t out[SJ_HASH_LEN]);

#endif
