/* node/credit — the credit domain beyond the minimal record contract: the decision fields of
 * published records, rating schemes, publication windows and repair rules (docs/CREDIT.md), and
 * folding a subject's entries into a credit report.
 *
 * Thread-safe, no global mutable state. Never logs. */
#ifndef SJ_NODE_CREDIT_H
#define SJ_NODE_CREDIT_H

#include "node/record.h"

#include <jansson.h>

/* Checks the optional credit fields of a record whose minimal fields (kind, type, subject,
 * disclosure) were already checked. Adds every error found to errs (index = record number,
 * line = NDJSON line or 0, field pointers relative to the record). Returns the number of errors
 * added. */
size_t sj_credit_check(json_t *rec, size_t index, size_t line, sj_rec_errors_t *errs);

#endif
