/* node/journey — trace events as the lookups see them, and the journey of a trace code: a bounded
 * walk over the EPCIS events of every region this node holds (its own log and the replicas),
 * following aggregation (parent <-> children), transformation (inputs -> outputs) and the
 * containers that carried an object, in time order (docs/TRACE.md describes the rules).
 *
 * Reads the store only (sj_store_scan over SJ_INDEX_TRACE, sj_store_get_entry); any thread, as
 * the store allows. Never logs. Results are JSON text appended to a caller's buffer. */
#ifndef SJ_NODE_JOURNEY_H
#define SJ_NODE_JOURNEY_H

#include "common/common.h"
#include "crypto/crypto.h"
#include "node/epc.h"
#include "storage/storage.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Whether the caller may see the body of the entry with this header; body/len are the body when
 * the node holds it (NULL/0 when not), borrowed for the call. */
typedef int (*sj_trace_visible_fn)(void *ctx, const sj_entry_header_t *h, const uint8_t *body,
                                   size_t len);

/* ---- One trace event --------------------------------------------------------------------------
 */

/* The role a code plays in an event. */
typedef enum {
  SJ_TR_EPC = 0, /* epcList, or quantityList's epcClass */
  SJ_TR_PARENT,  /* parentID */
  SJ_TR_CHILD,   /* childEPCs, or childQuantityList */
  SJ_TR_INPUT,   /* inputEPCList, or inputQuantityList */
  SJ_TR_OUTPUT,  /* outputEPCList, or outputQuantityList */
} sj_tr_role_t;

typedef struct {
  char *urn;    /* owned; canonical EPC URN */
  uint8_t role; /* sj_tr_role_t */
  uint8_t qty;  /* named in a quantity list (a class), not an instance list */
} sj_tr_code_t;

enum { SJ_TR_ADD = 0, SJ_TR_OBSERVE, SJ_TR_DELETE };

/* An entry of the trace index, read and (where visible) parsed. Everything is owned. */
typedef struct {
  uint32_t region;
  uint64_t seq;
  uint8_t leaf[SJ_HASH_LEN];
  int visible;          /* the body is held and the caller may see it; else "withheld" says why */
  const char *withheld; /* "disclosure", "not replicated" or NULL (static) */
  int type;             /* 0 ObjectEvent ... 4 AssociationEvent (as in the header), -1 other */
  int action;           /* SJ_TR_ADD / OBSERVE / DELETE, -1 none */
  int64_t time_ms;      /* eventTime; the entry's time when not visible */
  char event_time[40];  /* eventTime as sent ("" when not visible) */
  char tz[8];           /* eventTimeZoneOffset as sent */
  char biz_step[80];    /* CBV bare word, or the extension URI as sent (truncated) */
  char disposition[80]; /* likewise */
  char location[SJ_EPC_MAX + 1];   /* bizLocation.id, canonical; "" if none */
  char read_point[SJ_EPC_MAX + 1]; /* readPoint.id, canonical; "" if none */
  char operator_uscc[24];          /* the operator extension field (node/epcis.h), "" if none */
  sj_tr_code_t *codes;             /* every identifier the event names, with its role */
  size_t ncodes;
  json_t *record; /* the record JSON when loaded with keep_json and visible, else NULL */
} sj_trace_ev_t;

/* Reads entry (region, seq) and parses it. keep_json keeps the parsed record in out->record.
 * Errors: SJ_ENOTFOUND, SJ_ESTORE, SJ_EFORMAT (header undecodable), -ENOMEM. A body that is not
 * a trace record, or not JSON, gives visible = 0 with withheld "not a trace event". */
int sj_trace_ev_load(sj_store_t *s, uint32_t region, uint64_t seq, sj_trace_visible_fn vis,
                     void *vis_ctx, int keep_json, sj_trace_ev_t *out);
void sj_trace_ev_deinit(sj_trace_ev_t *e);

/* Whether a query value (canonical URN) matches an event's code: equal, or the value is a GTIN
 * pattern (urn:epc:idpat:sgtin:CP.IR.*) and the code is an sgtin, lgtin or pattern of that GTIN. */
int sj_trace_code_matches(const char *value, const char *code);

/* ---- Journeys ---------------------------------------------------------------------------------
 */

typedef enum { SJ_JOURNEY_BACK = 1, SJ_JOURNEY_FORWARD = 2, SJ_JOURNEY_BOTH = 3 } sj_journey_dir_t;

typedef struct {
  int dir;            /* sj_journey_dir_t */
  unsigned max_depth; /* hops from the code (code -> container, lot -> its inputs, ...) */
  size_t max_steps;   /* events in the answer */
  size_t max_events;  /* entries read in all (bounds the work) */
  /* Optional: called with the index key (sj_store_index_key form) of every code whose trace rows
   * the walk read. The answer depends on those rows only, so a cache of it stays exact while
   * none of these keys gets a new entry. */
  void (*read_key)(void *ctx, const uint8_t *key, size_t n);
  void *read_key_ctx;
} sj_journey_opts_t;

#define SJ_JOURNEY_DEPTH_DEFAULT 16
#define SJ_JOURNEY_DEPTH_MAX 64
#define SJ_JOURNEY_STEPS_DEFAULT 1000
#define SJ_JOURNEY_STEPS_MAX 10000

/* Walks the journey of code (a canonical EPC URN, e.g. from sj_epc_canonical) and appends
 * {"code","direction","steps":[...],"regions":[...],"truncated":bool} to out (docs/API.md).
 * vis decides which bodies the caller sees; an event it may not see is listed (its region, seq,
 * leaf hash, type, entry time) but not followed. Errors: SJ_ESTORE, -ENOMEM (out may then hold a
 * partial answer: discard it). */
int sj_journey_walk(sj_store_t *s, const char *code, const sj_journey_opts_t *o,
                    sj_trace_visible_fn vis, void *vis_ctx, sj_buf_t *out);

#endif
