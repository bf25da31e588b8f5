/* node/credit — the credit domain beyond the minimal record contract (docs/CREDIT.md): the
 * decision fields of published records, severities, rating schemes, lifecycle actions that refer
 * to earlier entries, publication windows and repair rules, folding a subject's entries into its
 * current status, and the public view of a record body (docs/DISCLOSURE.md).
 *
 * The rules are data (node/credit_rules.json, node/disclosure_rules.json), embedded in the binary
 * and parsed once, on first use, into an immutable table.
 *
 * Thread-safe: no mutable global state besides that one-time initialisation. Never logs. Every
 * function that needs the time takes it as now_ms (ms since the epoch), so results are
 * reproducible. */
#ifndef SJ_NODE_CREDIT_H
#define SJ_NODE_CREDIT_H

#include "node/record.h"

#include <jansson.h>

/* ---- Validation --------------------------------------------------------------------------------
 */

/* Checks the optional credit fields of a record whose minimal fields (kind, type, subject,
 * disclosure) were already checked. Adds every error found to errs (index = record number,
 * line = NDJSON line or 0, field pointers relative to the record). Returns the number of errors
 * added. Decision dates are checked against the current time. */
size_t sj_credit_check(json_t *rec, size_t index, size_t line, sj_rec_errors_t *errs);

/* Whether the embedded rule sets parse (they always should; tests check it). 0 or SJ_EFORMAT. */
int sj_credit_rules_ok(void);

/* The embedded rule files, exactly as in the node/ JSON files (for tests and GET of the rules). */
const char *sj_credit_rules_text(size_t *len);
const char *sj_disclosure_rules_text(size_t *len);

/* ---- Folding -----------------------------------------------------------------------------------
 * A subject's entries (from every region a node holds) are folded into the status of each one.
 * Nothing is edited in the log: corrections, revocations, repairs and removals are later entries
 * whose "ref":{"region","seq"} names the entry they act on. */

/* What the fold needs of one entry's body, derived once when the entry is stored (the store's
 * per-entry facts row, node/disclosure.c) so that a fold need not parse bodies: the members the
 * fold reads, the instant the record stops being about a minor, and whether the public view of
 * the body is the body itself. The same fold result as from the parsed body (tests/test_credit.c
 * checks both ways agree). Strings are NUL-terminated; absent ones are NULL pointers after
 * decoding. */
#define SJ_CREDIT_FACT_STR 48 /* longest type, severity or scheme kept (longer: no facts) */
typedef struct {
  uint8_t has_rec;    /* a credit record whose body is held (else nothing below is meaningful) */
  uint8_t disclosure; /* sj_disclosure_t, from the header */
  uint8_t person;     /* the header names a person (SJ_KEY_PERSON) */
  uint8_t action;     /* sj_credit_action_t (a repair with a ref and no action is a repair) */
  uint8_t has_ref, specific, warning_only;
  uint8_t plain; /* the public view removes nothing: the raw body is its public view */
  uint32_t ref_region;
  uint64_t ref_seq;
  uint64_t date_ms, from_ms, until_ms; /* decision.date, period.from/until; 0 if absent */
  uint64_t minor_until_ms; /* about a minor while now < this (SJ_CREDIT_FOREVER: a minor flag) */
  const char *type, *severity, *scheme; /* point into the strings below, or NULL if absent */
  char type_s[SJ_CREDIT_FACT_STR + 1], severity_s[SJ_CREDIT_FACT_STR + 1],
      scheme_s[SJ_CREDIT_FACT_STR + 1];
} sj_credit_fact_t;

/* The facts of a parsed credit record (rec NULL: not held). disclosure and person are left for
 * the caller (they come from the header). 0, or SJ_EINVAL when a string is too long to keep
 * (then use the body). */
int sj_credit_fact_read(const json_t *rec, sj_credit_fact_t *f);
/* Encoded size is at most SJ_CREDIT_FACT_MAX bytes; encode returns the length written. The
 * encoding carries a digest of the embedded rule files: decode answers SJ_EVERSION for facts made
 * under other rules (the caller then parses the body), SJ_EFORMAT for anything malformed. */
#define SJ_CREDIT_FACT_MAX (64u + 3u * (1u + SJ_CREDIT_FACT_STR))
size_t sj_credit_fact_encode(const sj_credit_fact_t *f, uint8_t *out);
int sj_credit_fact_decode(const uint8_t *p, size_t n, sj_credit_fact_t *f);

/* The store's per-entry annotation (sj_store_opts_t.annotate in storage/storage.h; ctx unused):
 * the encoded facts of a credit entry (of any other entry: "no record"), with disclosure, person
 * and plain filled in. Returns the length written to out, or 0 (no facts: lookups then parse the
 * body) when cap is too small, a string too long or the rules did not load. Any thread. */
size_t sj_credit_annotate(void *ctx, const sj_entry_header_t *h, const uint8_t *body, size_t bn,
                          uint8_t *out, size_t cap);
/* The same from the body already parsed (with JSON_DECODE_INT_AS_REAL, as the hook parses it):
 * rec is the credit record of a credit entry, NULL for any other entry (borrowed, not changed).
 * Lets the node's submission path annotate without parsing the body twice. Any thread. */
size_t sj_credit_annotate_parsed(const sj_entry_header_t *h, const json_t *rec,
                                 const uint8_t *body, size_t bn, uint8_t *out, size_t cap);

/* One decoded entry about the subject. Everything is borrowed for the call. */
typedef struct {
  uint32_t region;
  uint64_t seq;
  uint8_t leaf_hash[SJ_HASH_LEN];
  uint64_t time_ms;             /* header time */
  uint8_t disclosure;           /* sj_disclosure_t */
  uint8_t person;               /* the subject is a person (SJ_KEY_PERSON) */
  const json_t *rec;            /* the body parsed, or NULL when the node does not hold it */
  const sj_credit_fact_t *fact; /* used instead of rec when rec is NULL and fact is not */
} sj_credit_entry_t;

typedef enum {
  SJ_CREDIT_ACTIVE = 0, /* in effect now */
  SJ_CREDIT_PENDING,    /* starts later */
  SJ_CREDIT_EXPIRED,    /* its window or period ended */
  SJ_CREDIT_REPAIRED,   /* ended early by an accepted repair */
  SJ_CREDIT_REMOVED,    /* taken off a list (or a ban lifted) by a removal */
  SJ_CREDIT_REVOKED,    /* the decision was revoked (with every corrected version) */
  SJ_CREDIT_SUPERSEDED, /* replaced by a correction */
  SJ_CREDIT_REPLACED,   /* a rating replaced by a newer one of the same scheme */
  SJ_CREDIT_ACTION,     /* a repair, removal or revocation: acts on another entry */
  SJ_CREDIT_UNKNOWN,    /* the body is not held here */
} sj_credit_status_t;

typedef enum {
  SJ_CREDIT_CAT_NONE = 0,
  SJ_CREDIT_CAT_PENALTY,
  SJ_CREDIT_CAT_LIST,
  SJ_CREDIT_CAT_BAN,
  SJ_CREDIT_CAT_RATING,
  SJ_CREDIT_CAT_OTHER,
} sj_credit_category_t;

typedef enum {
  SJ_CREDIT_ACT_NONE = 0,
  SJ_CREDIT_ACT_CORRECTION,
  SJ_CREDIT_ACT_REVOCATION,
  SJ_CREDIT_ACT_REPAIR,
  SJ_CREDIT_ACT_REMOVAL,
} sj_credit_action_t;

#define SJ_CREDIT_NONE ((size_t)-1) /* no index */
#define SJ_CREDIT_FOREVER UINT64_MAX

/* The folded state of one entry. */
typedef struct {
  uint8_t status;    /* sj_credit_status_t */
  uint8_t category;  /* sj_credit_category_t of the record's type */
  uint8_t action;    /* sj_credit_action_t the entry performs (a correction is also a record) */
  uint8_t published; /* the rules publish such a record at all (not a warning, minor, action) */
  uint8_t specific_serious;
  const char *reject;   /* an action not applied: REF_NOT_HELD, REF_OTHER_SUBJECT, REPAIR_TOO_EARLY,
                           NOT_REPAIRABLE, ACTION_TARGET_INVALID, ACTION_REVOKED; static; or NULL */
  size_t target;        /* actions: index of the entry acted on (after following corrections) */
  size_t ended_by;      /* index of the repair, removal or revocation that ended it */
  size_t superseded_by; /* index of the correction that replaced it */
  size_t replaced_by;   /* ratings: index of the newer rating */
  uint64_t start_ms;    /* decision date, period start, or header time */
  uint64_t end_ms;      /* natural end of its window or period; SJ_CREDIT_FOREVER if none */
  uint64_t repairable_ms;   /* earliest accepted repair; SJ_CREDIT_FOREVER if never before end */
  uint64_t ended_ms;        /* when a repair, removal or revocation took effect; 0 if none */
  uint64_t public_until_ms; /* the public may see it while now < this (and now >= start); 0:
                               never. Includes disclosure, person subject, minors, publication */
  uint64_t changes_ms;      /* the earliest instant > now at which this state (status, visibility,
                               public_until_ms) may change with time alone: a start, an end (its
                               window's, a replacing rating's start, a repair's, removal's or
                               revocation's effective instant) or a minor's 18th birthday that the
                               fold compared with now and found still ahead; SJ_CREDIT_FOREVER if
                               none. Only new entries change it before then */
} sj_credit_state_t;

/* Folds n entries (any order; they should all be about one subject) at time now_ms into out[n].
 * Pure: reads only its arguments and the rule table. Errors: -ENOMEM, SJ_EFORMAT (rules). */
int sj_credit_fold(const sj_credit_entry_t *e, size_t n, uint64_t now_ms, sj_credit_state_t *out);

const char *sj_credit_status_name(sj_credit_status_t s);
const char *sj_credit_category_name(sj_credit_category_t c);
const char *sj_credit_action_name(sj_credit_action_t a);

/* ---- Public view (docs/DISCLOSURE.md) ----------------------------------------------------------
 */

/* From an entry header alone (its type): whether a credit record of that type may ever be in a
 * public window — 0 for types the rules never publish. No bound in time: a body's period (from,
 * until) may place its window anywhere after the append, so the header's append time bounds
 * nothing (an earlier version's bound, the longest default window from the append, hid raw
 * bodies the fold still showed). Time does not enter it, so it cannot change what a cached answer
 * shows. */
int sj_credit_header_may_publish(const char *type, size_t type_len);

/* Quick test on the raw body bytes: 0 when the body certainly holds nothing the public view would
 * remove (no backslash escape, no personal member name, no run of 11+ digits), 1 when it may. */
int sj_credit_body_may_mask(const uint8_t *body, size_t n);

/* Removes from rec (in place) every member the public may not see: personal members and their
 * values, objects flagged or identified as about a minor, strings that are resident identity
 * numbers or mobile numbers. Returns the number of removals (0: rec unchanged), or -1 when the
 * whole record is about a minor and must not be shown at all. */
int sj_credit_mask_public(json_t *rec, uint64_t now_ms);

/* Whether a record (parsed body) is about a minor at now_ms: a flag, or the subject's identity
 * number giving an age under 18. */
int sj_credit_about_minor(const json_t *rec, uint64_t now_ms);

/* Dates: "YYYY-MM-DD" → ms since the epoch at 00:00 China Standard Time (UTC+8). 0 or SJ_EINVAL. */
int sj_credit_date_parse(const char *s, uint64_t *ms);
/* ms → "YYYY-MM-DD" in China Standard Time (out holds 11 bytes). */
void sj_credit_date_format(uint64_t ms, char out[11]);
/* Adds calendar months to a CST date given in ms (day clamped to the month's end). */
uint64_t sj_credit_add_months(uint64_t ms, unsigned months);

#endif
