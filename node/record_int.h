/* node/record_int.h — what the record validators share (record.c for records, epcis.c for EPCIS
 * events): the JSON Pointer (RFC 6901) that names where a validation walk is, and reporting a
 * broken rule there. Internal to node/; defined in record.c. Plain functions on caller-owned
 * values: no allocation, no global state, any thread. */
#ifndef SJ_RECORD_INT_H
#define SJ_RECORD_INT_H

#include "node/record.h"

#include <stddef.h>

/* A JSON Pointer built while walking a record: s is NUL-terminated, n its length. A segment that
 * does not fit is left out whole, so the pointer then names an ancestor, which is still true.
 * Initialise with {0} (the whole document, "") or by writing s and n. */
typedef struct sj_rec_ptr {
  char s[128];
  size_t n;
} sj_rec_ptr_t;

/* Appends "/" + key escaped as RFC 6901 §3 says ("~" as "~0", "/" as "~1"); returns the previous
 * length, the mark to give sj_rec_ptr_pop. */
size_t sj_rec_ptr_push(sj_rec_ptr_t *p, const char *key);

/* Appends "/" + the decimal array index i; returns the mark as sj_rec_ptr_push. */
size_t sj_rec_ptr_push_index(sj_rec_ptr_t *p, size_t i);

/* Goes back to the pointer as it was when push returned mark. */
void sj_rec_ptr_pop(sj_rec_ptr_t *p, size_t mark);

/* Where a validation walk is and what it reported, for one record. Caller-owned. */
typedef struct sj_rec_walk {
  sj_rec_errors_t *errs; /* where errors go (borrowed) */
  size_t index;          /* the record's number in the request (0-based) */
  size_t line;           /* its NDJSON line (1-based), 0 for application/json */
  size_t nerr;           /* errors reported through this walk */
  sj_rec_ptr_t ptr;      /* where the walk is */
} sj_rec_walk_t;

/* Reports a broken rule: adds to w->errs the error code for record w->index at w->ptr, or at
 * w->ptr + "/" + member when member is not NULL, with the message formatted from fmt, prefixed
 * "line <line>: " on an NDJSON line; counts it in w->nerr. w->ptr is as before on return. Never
 * fails (see sj_rec_errors_add). */
void sj_rec_walk_error(sj_rec_walk_t *w, const char *member, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
