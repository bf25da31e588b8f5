/* node/epcis — GS1 EPCIS 2.0 and CBV 2.0 beyond the minimal event contract of node/record.h:
 * event times, the CBV vocabularies (business steps, dispositions, business transaction types,
 * source/destination types, error reasons) in their three spellings, units of measure (a subset of
 * UN/CEFACT Recommendation 20), the rules each event type adds, the Chinese practice extension
 * fields, and the EPCISDocument wrapper (epcisBody.eventList) that POST /v1/epcis/capture takes.
 *
 * Error codes are those of docs/API.md ("EPCIS 2.0 / CBV 2.0 codes"). Pure functions over their
 * arguments: thread-safe, no global mutable state, never log. */
#ifndef SJ_NODE_EPCIS_H
#define SJ_NODE_EPCIS_H

#include "node/record.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Times ------------------------------------------------------------------------------------
 */

/* RFC 3339 date-time "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)" (offset mandatory, 1-9 fraction
 * digits, real dates) into milliseconds since the epoch, UTC. Returns 0 or SJ_EINVAL (*ms
 * untouched). */
int sj_epcis_parse_time(const char *s, size_t n, int64_t *ms);
/* An eventTimeZoneOffset "+hh:mm" / "-hh:mm" between -14:00 and +14:00 into minutes east.
 * Returns 0 or SJ_EINVAL. */
int sj_epcis_parse_offset(const char *s, size_t n, int *minutes);
/* Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (at least 25 bytes). */
void sj_epcis_format_time(int64_t ms, char out[64]);

/* ---- CBV vocabularies ---------------------------------------------------------------------------
 */

typedef enum {
  SJ_CBV_BIZSTEP = 0,  /* bizStep:  shipping | urn:epcglobal:cbv:bizstep:shipping |
                          https://ref.gs1.org/cbv/BizStep-shipping | cbv:BizStep-shipping */
  SJ_CBV_DISPOSITION,  /* disposition, persistentDisposition set/unset (Disp-, disp:) */
  SJ_CBV_BTT,          /* bizTransactionList[].type (BTT-, btt:) */
  SJ_CBV_SDT,          /* sourceList[].type, destinationList[].type (SDT-, sdt:) */
  SJ_CBV_ERROR_REASON, /* errorDeclaration.reason (ER-, er:) */
} sj_cbv_vocab_t;

/* Classifies a vocabulary value of n bytes.
 *   1   a CBV value in any of its spellings; *word (may be NULL) receives the bare word (static)
 *   0   an extension value: an absolute URI outside the CBV namespaces (EPCIS 2.0 allows these)
 *  -1   invalid: an unknown bare word, an unknown word in a CBV namespace, or not a URI */
int sj_cbv_classify(sj_cbv_vocab_t v, const char *s, size_t n, const char **word);

/* Whether s (NUL-terminated) is one of the UN/CEFACT Rec 20 unit codes accepted as "uom"
 * (docs/API.md lists them). */
int sj_epcis_uom_known(const char *s);

/* ---- Event rules --------------------------------------------------------------------------------
 */

/* Checks what EPCIS 2.0 / CBV 2.0 and the Chinese practice extensions add to an event whose
 * minimal members (type, times, action, identifiers) node/record.c checks: vocabularies, uom and
 * quantities, parentID of aggregations, inputs/outputs of transformations, bizTransactionList,
 * sourceList/destinationList, eventID, the extension fields. ev is the event object (borrowed);
 * type is its index in ObjectEvent, AggregationEvent, TransformationEvent, TransactionEvent,
 * AssociationEvent (or -1 if unknown: type-specific rules are skipped); base the JSON Pointer of
 * the event in the record ("/event"). Errors are added to errs with index, and with "line N: "
 * in front of the message when line is nonzero. Returns the number of errors added. */
size_t sj_epcis_check_event(json_t *ev, int type, const char *base, size_t index, size_t line,
                            sj_rec_errors_t *errs);

/* The operator's unified social credit code an event names through an extension field
 * (docs/TRACE.md: a member whose local name ends in "USCC", top level or in ilmd, preferring
 * "operatorUSCC"), or NULL. Borrowed from ev. */
const char *sj_epcis_operator(json_t *ev);

/* ---- EPCISDocument ------------------------------------------------------------------------------
 */

typedef struct {
  size_t off, len; /* byte range in the body */
} sj_epcis_span_t;

typedef struct {
  sj_epcis_span_t *events; /* owned array of nevents: each event object's bytes */
  size_t nevents;
  sj_epcis_span_t context; /* the document's "@context" value; len 0 if none or a bare event */
  int is_document;         /* 1: an EPCISDocument; 0: the body was one event */
} sj_epcis_doc_t;

/* Finds the events of a capture body: an EPCISDocument ({"type":"EPCISDocument",
 * "epcisBody":{"eventList":[...]}}) or a single event object (its "type" one of the event
 * types). The body is parsed with jansson (duplicate keys refused); the byte ranges then come
 * from a scan of the accepted text, so the events keep their own bytes.
 * Returns 0 and fills *out (sj_epcis_doc_free), or adds one error to errs and returns
 * SJ_EFORMAT (JSON_SYNTAX, JSON_DUPLICATE_KEY, EPCIS_BODY_INVALID, EPCIS_EVENT_LIST_MISSING,
 * EPCIS_EVENT_LIST_EMPTY, EPCIS_SCHEMA_VERSION_UNSUPPORTED), SJ_ETOOBIG (TOO_MANY_RECORDS, more
 * than max_events) or -ENOMEM. */
int sj_epcis_split(const uint8_t *body, size_t n, size_t max_events, sj_epcis_doc_t *out,
                   sj_rec_errors_t *errs);
void sj_epcis_doc_free(sj_epcis_doc_t *d);

/* Builds the NDJSON submission for the events of d: one line per event,
 * {"kind":"trace",["@context":<the document's>,]"event":<event bytes, whitespace outside strings
 * removed>}. Appends to out. Errors: -ENOMEM. */
int sj_epcis_to_ndjson(const uint8_t *body, const sj_epcis_doc_t *d, sj_buf_t *out);

#endif
