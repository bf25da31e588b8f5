/* node/record.c — submission parsing and record validation (see record.h and docs/API.md).
 *
 * jansson parses and checks the JSON (UTF-8, syntax, duplicate keys); this file never interprets
 * JSON text itself except to find the byte range of each element of an array jansson has already
 * accepted, so that array elements keep their own bytes. Validation walks the parsed tree and
 * reports every rule broken, each with a JSON Pointer into the record. */
#include "node/record.h"

#include "node/credit.h"
#include "node/epcis.h"
#include "node/json.h"
#include "node/record_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Duplicate keys are refused (ARCHITECTURE §2). Integers are read as reals so that a big integer
 * somewhere in a record is not a syntax error: values are only inspected, never re-serialised.
 * Any JSON value is decoded so that "42" gets a precise code (BODY_NOT_RECORDS, RECORD_NOT_OBJECT)
 * rather than a syntax error. */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY)

/* ---- Error list ---------------------------------------------------------------------------------
 */

void sj_rec_errors_init(sj_rec_errors_t *e, size_t limit) {
  memset(e, 0, sizeof *e);
  e->limit = limit ? limit : SJ_REC_ERRORS_DEFAULT_LIMIT;
}

void sj_rec_errors_deinit(sj_rec_errors_t *e) {
  free(e->v);
  memset(e, 0, sizeof *e);
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (len == 0 || len > n)
    return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  unsigned s1 = len > 1 ? s[1] : 0;
  if ((c == 0xE0 && s1 < 0xA0) || (c == 0xED && s1 > 0x9F) || (c == 0xF0 && s1 < 0x90) ||
      (c == 0xF4 && s1 > 0x8F))
    return 0;
  return len;
}

/* Copies src into dst[cap] as well-formed UTF-8: never cuts a sequence, and replaces bytes that
 * are not UTF-8 by '?' (messages may quote input, e.g. jansson's syntax errors, which can hold
 * half a sequence: the errors must still serialise as JSON). */
static void copy_utf8(char *dst, size_t cap, const char *src) {
  const unsigned char *s = (const unsigned char *)src;
  size_t n = strlen(src), o = 0;
  for (size_t i = 0; i < n;) {
    size_t len = utf8_seq(s + i, n - i);
    size_t w = len ? len : 1;
    if (o + w >= cap)
      break;
    if (len)
      memcpy(dst + o, s + i, len);
    else
      dst[o] = '?';
    o += w;
    i += w;
  }
  dst[o] = 0;
}

static int errors_grow(sj_rec_errors_t *e) {
  size_t cap = e->cap ? e->cap * 2 : 16;
  if (cap > e->limit)
    cap = e->limit;
  sj_rec_error_t *v = realloc(e->v, cap * sizeof *v);
  if (!v)
    return -ENOMEM;
  e->v = v;
  e->cap = cap;
  return 0;
}

void sj_rec_errors_add(sj_rec_errors_t *e, size_t index, const char *field, const char *code,
                       const char *fmt, ...) {
  e->total++;
  if (e->n >= e->limit)
    return;
  if (e->n == e->cap && errors_grow(e)) {
    e->oom = 1;
    return;
  }
  sj_rec_error_t *x = &e->v[e->n++];
  x->index = index;
  copy_utf8(x->field, sizeof x->field, field);
  copy_utf8(x->code, sizeof x->code, code);
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  copy_utf8(x->message, sizeof x->message, msg);
}

int sj_rec_errors_to_json(const sj_rec_errors_t *e, sj_buf_t *out) {
  int rv = -ENOMEM;
  char *s = NULL;
  json_t *arr = json_array();
  if (!arr)
    goto done;
  for (size_t i = 0; i < e->n; i++) {
    const sj_rec_error_t *x = &e->v[i];
    json_t *o = json_pack("{s:I,s:s,s:s,s:s}", "index", (json_int_t)x->index, "field", x->field,
                          "code", x->code, "message", x->message);
    if (!o || json_array_append_new(arr, o))
      goto done;
  }
  s = json_dumps(arr, JSON_COMPACT);
  if (s)
    rv = sj_buf_append_str(out, s);
done:
  free(s);
  json_decref(arr);
  return rv;
}

/* ---- JSON Pointers (RFC 6901), shared with epcis.c through record_int.h
 * -------------------------------------------------------------------- */

size_t sj_rec_ptr_push(sj_rec_ptr_t *p, const char *key) {
  size_t mark = p->n, need = 1;
  for (const char *k = key; *k; k++)
    need += (*k == '~' || *k == '/') ? 2 : 1;
  if (p->n + need >= sizeof p->s)
    return mark;
  p->s[p->n++] = '/';
  for (const char *k = key; *k; k++) {
    if (*k == '~' || *k == '/') {
      p->s[p->n++] = '~';
      p->s[p->n++] = *k == '~' ? '0' : '1';
    } else {
      p->s[p->n++] = *k;
    }
  }
  p->s[p->n] = 0;
  return mark;
}

/* Decimal by hand: every array element walked while validating pushes its index, and
 * snprintf's format machinery was ~2 % of an ingesting node's CPU. */
size_t sj_rec_ptr_push_index(sj_rec_ptr_t *p, size_t i) {
  char num[24];
  size_t n = sizeof num;
  num[--n] = 0;
  do {
    num[--n] = (char)('0' + i % 10);
    i /= 10;
  } while (i > 0);
  return sj_rec_ptr_push(p, num + n);
}

void sj_rec_ptr_pop(sj_rec_ptr_t *p, size_t mark) {
  p->n = mark;
  p->s[mark] = 0;
}

void sj_rec_walk_error(sj_rec_walk_t *w, const char *member, const char *code, const char *fmt,
                       ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t mark = member ? sj_rec_ptr_push(&w->ptr, member) : w->ptr.n;
  if (w->line)
    sj_rec_errors_add(w->errs, w->index, w->ptr.s, code, "line %zu: %s", w->line, msg);
  else
    sj_rec_errors_add(w->errs, w->index, w->ptr.s, code, "%s", msg);
  sj_rec_ptr_pop(&w->ptr, mark);
  w->nerr++;
}

/* ---- Validation context
 * -------------------------------------------------------------------------- */

typedef struct {
  uint8_t type;
  uint16_t len;
  size_t off; /* into kb */
} keyref_t;

typedef struct {
  sj_rec_walk_t w; /* errors, record number, NDJSON line, where the walk is */
  const uint8_t *hmac_key;
  int oom;
  sj_buf_t kb; /* index key bytes, back to back */
  keyref_t *keys;
  size_t nkeys, capkeys;
  int too_many_keys;
} vctx_t;

/* Adds an index key unless the record already has it. */
static void key_add(vctx_t *c, uint8_t type, const void *p, size_t n) {
  for (size_t i = 0; i < c->nkeys; i++)
    if (c->keys[i].type == type && c->keys[i].len == n &&
        memcmp(c->kb.p + c->keys[i].off, p, n) == 0)
      return;
  if (c->nkeys == SJ_ENTRY_MAX_KEYS) {
    c->too_many_keys = 1;
    return;
  }
  if (c->nkeys == c->capkeys) {
    size_t cap = c->capkeys ? c->capkeys * 2 : 8;
    keyref_t *k = realloc(c->keys, cap * sizeof *k);
    if (!k) {
      c->oom = 1;
      return;
    }
    c->keys = k;
    c->capkeys = cap;
  }
  size_t off = c->kb.n;
  if (sj_buf_append(&c->kb, p, n)) {
    c->oom = 1;
    return;
  }
  c->keys[c->nkeys++] = (keyref_t){type, (uint16_t)n, off};
}

/* Index of s in a NULL-terminated list of names, or -1. */
static int enum_index(const char *const *names, const char *s) {
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], s) == 0)
      return i;
  return -1;
}

/* The string member name of obj. Reports FIELD_MISSING (if required) or FIELD_TYPE; NULL then.
 * jansson strings may hold NUL only with JSON_ALLOW_NUL, which is not set: strlen is the length. */
static const char *get_string(vctx_t *c, json_t *obj, const char *name, int required) {
  json_t *v = json_object_get(obj, name);
  if (!v) {
    if (required)
      sj_rec_walk_error(&c->w, name, "FIELD_MISSING", "required field \"%s\" is missing", name);
    return NULL;
  }
  if (!json_is_string(v)) {
    sj_rec_walk_error(&c->w, name, "FIELD_TYPE", "\"%s\" must be a string", name);
    return NULL;
  }
  return json_string_value(v);
}

/* An enumerated string member: its index in names, or -1 (reported with code bad_code). */
static int get_enum(vctx_t *c, json_t *obj, const char *name, int required,
                    const char *const *names, const char *bad_code, const char *allowed) {
  const char *s = get_string(c, obj, name, required);
  if (!s)
    return -1;
  int i = enum_index(names, s);
  if (i < 0)
    sj_rec_walk_error(&c->w, name, bad_code, "\"%s\" must be one of %s", name, allowed);
  return i;
}

/* ---- Credit records
 * -------------------------------------------------------------------------------- */

static const char *const credit_types[] = {"penalty",      "blacklist",       "abnormal_list",
                                           "rating",       "procurement_ban", "commitment",
                                           "commendation", "repair",          NULL};
static const char *const subject_types[] = {"enterprise", "organisation", "individual_business",
                                            "person", NULL};
static const char *const disclosures[] = {"public", "authorities", "subject", NULL};

int sj_record_person_key(const uint8_t hmac_key[SJ_REC_HMAC_KEY_LEN], const char *id, size_t n,
                         uint8_t out[SJ_HASH_LEN]) {
  if (sj_resident_id_check(id, n) != SJ_ID_OK)
    return SJ_EINVAL;
  sj_hmac_sha256(hmac_key, SJ_REC_HMAC_KEY_LEN, id, n, out);
  return 0;
}

/* Messages for the identifier codes; they never quote the value (it may be a person's number). */
static const char *id_message(sj_id_code_t code) {
  switch (code) {
  case SJ_ID_USCC_LENGTH:
    return "unified social credit code must have 18 characters";
  case SJ_ID_USCC_CHARSET:
    return "unified social credit code allows only 0-9 and A-Z without I, O, Z, S, V";
  case SJ_ID_USCC_STRUCTURE:
    return "unified social credit code has an undefined registration authority, category or "
           "division code";
  case SJ_ID_USCC_CHECKSUM:
    return "unified social credit code check character is wrong";
  case SJ_ID_ID_LENGTH:
    return "resident identity number must have 18 characters";
  case SJ_ID_ID_CHARSET:
    return "resident identity number must be 17 digits and a digit or capital X";
  case SJ_ID_ID_BIRTHDATE_INVALID:
    return "resident identity number birth date is not a real date between 1850 and today";
  case SJ_ID_ID_CHECKSUM:
    return "resident identity number check character is wrong";
  case SJ_ID_GTIN_LENGTH:
    return "GTIN must have 8, 12, 13 or 14 digits";
  case SJ_ID_GTIN_CHARSET:
    return "GTIN must be digits only";
  case SJ_ID_GTIN_CHECKSUM:
    return "GTIN check digit is wrong";
  default:
    return "identifier is invalid";
  }
}

/* subject.id for a subject type (index into subject_types): checked, then turned into the key. */
static void check_subject_id(vctx_t *c, int st, const char *id, sj_record_t *r) {
  size_t n = strlen(id);
  int person = st == SJ_SUBJECT_PERSON - 1;
  sj_id_code_t code = person ? sj_resident_id_check(id, n) : sj_uscc_check(id, n);
  if (code != SJ_ID_OK) {
    sj_rec_walk_error(&c->w, "id", sj_id_code_name(code), "%s", id_message(code));
    return;
  }
  memcpy(r->subject_id, id, n + 1);
  if (person) {
    uint8_t k[SJ_HASH_LEN];
    sj_hmac_sha256(c->hmac_key, SJ_REC_HMAC_KEY_LEN, id, n, k);
    key_add(c, SJ_KEY_PERSON, k, sizeof k);
  } else {
    key_add(c, SJ_KEY_USCC, id, n);
  }
}

static void check_subject(vctx_t *c, json_t *rec, sj_record_t *r) {
  json_t *subj = json_object_get(rec, "subject");
  if (!subj) {
    sj_rec_walk_error(&c->w, "subject", "FIELD_MISSING", "required field \"subject\" is missing");
    return;
  }
  if (!json_is_object(subj)) {
    sj_rec_walk_error(&c->w, "subject", "FIELD_TYPE", "\"subject\" must be an object");
    return;
  }
  size_t mark = sj_rec_ptr_push(&c->w.ptr, "subject");
  int st = get_enum(c, subj, "type", 1, subject_types, "SUBJECT_TYPE_INVALID",
                    "enterprise, organisation, individual_business, person");
  const char *id = get_string(c, subj, "id", 1);
  if (id && st >= 0)
    check_subject_id(c, st, id, r);
  const char *name = get_string(c, subj, "name", 1);
  if (name && !name[0])
    sj_rec_walk_error(&c->w, "name", "FIELD_EMPTY", "\"name\" must not be empty");
  sj_rec_ptr_pop(&c->w.ptr, mark);
  r->subject_type = (uint8_t)(st + 1); /* SJ_SUBJECT_NONE if the type was bad */
}

static void check_credit(vctx_t *c, json_t *rec, sj_record_t *r) {
  int t = get_enum(c, rec, "type", 1, credit_types, "CREDIT_TYPE_INVALID",
                   "penalty, blacklist, abnormal_list, rating, procurement_ban, commitment, "
                   "commendation, repair");
  if (t >= 0) {
    r->type_len = (uint8_t)strlen(credit_types[t]);
    memcpy(r->type, credit_types[t], r->type_len + 1u);
  }
  check_subject(c, rec, r);
  int d = get_enum(c, rec, "disclosure", 1, disclosures, "DISCLOSURE_INVALID",
                   "public, authorities, subject");
  r->disclosure = (uint8_t)(d < 0 ? 0 : d);
  c->w.nerr += sj_credit_check(rec, c->w.index, c->w.line, c->w.errs); /* node/credit.c */
}

/* ---- EPCIS events
 * ---------------------------------------------------------------------------------- */

static const char *const event_types[] = {"ObjectEvent",         "AggregationEvent",
                                          "TransformationEvent", "TransactionEvent",
                                          "AssociationEvent",    NULL};
static const char *const actions[] = {"ADD", "OBSERVE", "DELETE", NULL};

/* What an identifier field may name. */
typedef enum { WANT_INSTANCE, WANT_CLASS, WANT_LOCATION } want_t;

static int scheme_fits(sj_epc_scheme_t s, want_t w) {
  switch (w) {
  case WANT_INSTANCE:
    return s == SJ_EPC_SGTIN || s == SJ_EPC_SSCC || s == SJ_EPC_GRAI;
  case WANT_CLASS:
    return s == SJ_EPC_LGTIN || s == SJ_EPC_GTIN_CLASS;
  case WANT_LOCATION:
    return s == SJ_EPC_SGLN;
  }
  return 0;
}

static const char *want_message(want_t w) {
  switch (w) {
  case WANT_INSTANCE:
    return "must name an instance (sgtin, sscc or grai), not a class or location";
  case WANT_CLASS:
    return "must name a class (lgtin or GTIN), not an instance or location";
  case WANT_LOCATION:
    return "must name a location (sgln)";
  }
  return "wrong kind of identifier";
}

/* One identifier at the current pointer: canonicalised and added as an SJ_KEY_EPC. */
static void check_epc(vctx_t *c, json_t *v, want_t want) {
  if (!json_is_string(v)) {
    sj_rec_walk_error(&c->w, NULL, "FIELD_TYPE",
                      "must be a string: an EPC URN or a GS1 Digital Link URI");
    return;
  }
  sj_epc_t e;
  sj_epc_code_t code = sj_epc_canonical(json_string_value(v), json_string_length(v), &e);
  if (code != SJ_EPC_OK) {
    sj_rec_walk_error(&c->w, NULL, sj_epc_code_name(code), "%s", sj_epc_code_message(code));
    return;
  }
  if (!scheme_fits(e.scheme, want)) {
    sj_rec_walk_error(&c->w, NULL, "EPC_WRONG_KIND", "%s", want_message(want));
    return;
  }
  key_add(c, SJ_KEY_EPC, e.urn, e.len);
}

/* An array of identifiers (epcList, childEPCs, ...). Returns how many it holds. */
static size_t check_epc_list(vctx_t *c, json_t *ev, const char *name) {
  json_t *a = json_object_get(ev, name), *v;
  if (!a)
    return 0;
  size_t mark = sj_rec_ptr_push(&c->w.ptr, name), i;
  if (!json_is_array(a)) {
    sj_rec_walk_error(&c->w, NULL, "FIELD_TYPE", "\"%s\" must be an array", name);
  } else {
    json_array_foreach(a, i, v) {
      size_t m = sj_rec_ptr_push_index(&c->w.ptr, i);
      check_epc(c, v, WANT_INSTANCE);
      sj_rec_ptr_pop(&c->w.ptr, m);
    }
  }
  sj_rec_ptr_pop(&c->w.ptr, mark);
  return json_is_array(a) ? json_array_size(a) : 1;
}

static void check_quantity_element(vctx_t *c, json_t *q) {
  if (!json_is_object(q)) {
    sj_rec_walk_error(&c->w, NULL, "FIELD_TYPE", "a quantity element must be an object");
    return;
  }
  json_t *cls = json_object_get(q, "epcClass"), *qty = json_object_get(q, "quantity");
  if (!cls) {
    sj_rec_walk_error(&c->w, "epcClass", "FIELD_MISSING", "required field \"epcClass\" is missing");
  } else {
    size_t m = sj_rec_ptr_push(&c->w.ptr, "epcClass");
    check_epc(c, cls, WANT_CLASS);
    sj_rec_ptr_pop(&c->w.ptr, m);
  }
  if (qty && !json_is_number(qty))
    sj_rec_walk_error(&c->w, "quantity", "FIELD_TYPE", "\"quantity\" must be a number");
}

static size_t check_quantity_list(vctx_t *c, json_t *ev, const char *name) {
  json_t *a = json_object_get(ev, name), *q;
  if (!a)
    return 0;
  size_t mark = sj_rec_ptr_push(&c->w.ptr, name), i;
  if (!json_is_array(a)) {
    sj_rec_walk_error(&c->w, NULL, "FIELD_TYPE", "\"%s\" must be an array", name);
  } else {
    json_array_foreach(a, i, q) {
      size_t m = sj_rec_ptr_push_index(&c->w.ptr, i);
      check_quantity_element(c, q);
      sj_rec_ptr_pop(&c->w.ptr, m);
    }
  }
  sj_rec_ptr_pop(&c->w.ptr, mark);
  return json_is_array(a) ? json_array_size(a) : 1;
}

/* readPoint / bizLocation: {"id": <sgln>}. */
static void check_location(vctx_t *c, json_t *ev, const char *name) {
  json_t *o = json_object_get(ev, name);
  if (!o)
    return;
  size_t mark = sj_rec_ptr_push(&c->w.ptr, name);
  if (!json_is_object(o)) {
    sj_rec_walk_error(&c->w, NULL, "FIELD_TYPE", "\"%s\" must be an object with an \"id\"", name);
  } else if (!json_object_get(o, "id")) {
    sj_rec_walk_error(&c->w, "id", "FIELD_MISSING", "required field \"id\" is missing");
  } else {
    size_t m = sj_rec_ptr_push(&c->w.ptr, "id");
    check_epc(c, json_object_get(o, "id"), WANT_LOCATION);
    sj_rec_ptr_pop(&c->w.ptr, m);
  }
  sj_rec_ptr_pop(&c->w.ptr, mark);
}

/* Every field that names an identifier, in the order the keys are listed (record.h). Returns how
 * many "what" identifiers (everything but locations) the event names, valid or not. */
static size_t check_event_ids(vctx_t *c, json_t *ev) {
  static const char *const lists[] = {"epcList", "childEPCs", "inputEPCList", "outputEPCList"};
  static const char *const qlists[] = {"quantityList", "childQuantityList", "inputQuantityList",
                                       "outputQuantityList"};
  size_t what = check_epc_list(c, ev, lists[0]);
  json_t *parent = json_object_get(ev, "parentID");
  if (parent) {
    size_t m = sj_rec_ptr_push(&c->w.ptr, "parentID");
    check_epc(c, parent, WANT_INSTANCE);
    sj_rec_ptr_pop(&c->w.ptr, m);
    what++;
  }
  for (size_t i = 1; i < 4; i++)
    what += check_epc_list(c, ev, lists[i]);
  for (size_t i = 0; i < 4; i++)
    what += check_quantity_list(c, ev, qlists[i]);
  check_location(c, ev, "readPoint");
  check_location(c, ev, "bizLocation");
  return what;
}

static void check_event_time(vctx_t *c, json_t *ev, sj_record_t *r) {
  const char *t = get_string(c, ev, "eventTime", 1);
  if (t && sj_epcis_parse_time(t, strlen(t), &r->event_time_ms))
    sj_rec_walk_error(&c->w, "eventTime", "EVENT_TIME_INVALID",
                      "\"eventTime\" must be an RFC 3339 date-time with an offset, e.g. "
                      "2024-05-01T08:30:00.000+08:00");
  const char *z = get_string(c, ev, "eventTimeZoneOffset", 1);
  int minutes;
  if (z && sj_epcis_parse_offset(z, strlen(z), &minutes))
    sj_rec_walk_error(
        &c->w, "eventTimeZoneOffset", "EVENT_TIME_ZONE_OFFSET_INVALID",
        "\"eventTimeZoneOffset\" must be of the form +hh:mm or -hh:mm, between -14:00 and +14:00");
}

static void check_event(vctx_t *c, json_t *ev, sj_record_t *r) {
  int t = get_enum(c, ev, "type", 1, event_types, "EVENT_TYPE_INVALID",
                   "ObjectEvent, AggregationEvent, TransformationEvent, TransactionEvent, "
                   "AssociationEvent");
  if (t >= 0) {
    r->type_len = (uint8_t)strlen(event_types[t]);
    memcpy(r->type, event_types[t], r->type_len + 1u);
  }
  check_event_time(c, ev, r);
  if (t != 2) /* every event type but TransformationEvent carries an action (EPCIS 2.0 §7.4) */
    get_enum(c, ev, "action", t >= 0, actions, "EVENT_ACTION_INVALID", "ADD, OBSERVE, DELETE");
  size_t before = c->w.nerr;
  size_t what = check_event_ids(c, ev);
  if (what == 0 && c->w.nerr == before)
    sj_rec_walk_error(&c->w, NULL, "EVENT_WHAT_MISSING",
                      "the event names no identifier (epcList, parentID, childEPCs, inputEPCList, "
                      "outputEPCList or a quantity list)");
  if (c->too_many_keys)
    sj_rec_walk_error(&c->w, NULL, "EVENT_TOO_MANY_EPCS",
                      "the event names more than %d distinct identifiers", SJ_ENTRY_MAX_KEYS);
  /* CBV vocabularies, uom, type rules, extension fields (node/epcis.c) */
  c->w.nerr += sj_epcis_check_event(ev, t, c->w.ptr.s, c->w.index, c->w.line, c->w.errs);
}

static void check_trace(vctx_t *c, json_t *rec, sj_record_t *r) {
  json_t *ev = json_object_get(rec, "event");
  if (!ev) {
    sj_rec_walk_error(&c->w, "event", "FIELD_MISSING", "required field \"event\" is missing");
  } else if (!json_is_object(ev)) {
    sj_rec_walk_error(&c->w, "event", "FIELD_TYPE",
                      "\"event\" must be an object (an EPCIS 2.0 event)");
  } else {
    size_t mark = sj_rec_ptr_push(&c->w.ptr, "event");
    check_event(c, ev, r);
    sj_rec_ptr_pop(&c->w.ptr, mark);
  }
  int d = get_enum(c, rec, "disclosure", 0, disclosures, "DISCLOSURE_INVALID",
                   "public, authorities, subject");
  r->disclosure = (uint8_t)(d < 0 ? SJ_DISCLOSE_PUBLIC : d);
}

/* ---- Whole records
 * ------------------------------------------------------------------------------- */

/* Every member named "gtin", at any depth, must be a valid GTIN string. */
static void walk_gtin(vctx_t *c, json_t *v) {
  const char *key;
  json_t *child;
  size_t i;
  if (json_is_object(v)) {
    json_object_foreach(v, key, child) {
      size_t m = sj_rec_ptr_push(&c->w.ptr, key);
      if (strcmp(key, "gtin") != 0) {
        walk_gtin(c, child);
      } else if (!json_is_string(child)) {
        sj_rec_walk_error(&c->w, NULL, "FIELD_TYPE", "\"gtin\" must be a string of digits");
      } else {
        sj_id_code_t code = sj_gtin_check(json_string_value(child), json_string_length(child));
        if (code != SJ_ID_OK)
          sj_rec_walk_error(&c->w, NULL, sj_id_code_name(code), "%s", id_message(code));
      }
      sj_rec_ptr_pop(&c->w.ptr, m);
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, child) {
      size_t m = sj_rec_ptr_push_index(&c->w.ptr, i);
      walk_gtin(c, child);
      sj_rec_ptr_pop(&c->w.ptr, m);
    }
  }
}

static void check_record(vctx_t *c, json_t *rec, sj_record_t *r) {
  if (!json_is_object(rec)) {
    sj_rec_walk_error(&c->w, NULL, "RECORD_NOT_OBJECT", "a record must be a JSON object");
    return;
  }
  const char *kind = get_string(c, rec, "kind", 1);
  if (kind && strcmp(kind, "credit") == 0) {
    r->kind = SJ_KIND_CREDIT;
    check_credit(c, rec, r);
  } else if (kind && strcmp(kind, "trace") == 0) {
    r->kind = SJ_KIND_TRACE;
    check_trace(c, rec, r);
  } else if (kind) {
    sj_rec_walk_error(&c->w, "kind", "KIND_INVALID", "\"kind\" must be \"credit\" or \"trace\"");
  }
  walk_gtin(c, rec);
}

static int is_ws(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copies a JSON text jansson accepted, dropping whitespace outside strings. Returns the length. */
static size_t compact_json(const uint8_t *p, size_t n, uint8_t *out) {
  size_t k = 0;
  int in_string = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = p[i];
    if (in_string) {
      out[k++] = ch;
      if (ch == '\\' && i + 1 < n)
        out[k++] = p[++i];
      else if (ch == '"')
        in_string = 0;
    } else if (!is_ws(ch)) {
      out[k++] = ch;
      in_string = ch == '"';
    }
  }
  return k;
}

/* Moves the body and keys of a valid record into r. Returns 0 or -ENOMEM. */
static int record_finish(vctx_t *c, sj_record_t *r, const uint8_t *body, size_t n, int compact) {
  r->body = malloc(n ? n : 1);
  r->keys = calloc(c->nkeys ? c->nkeys : 1, sizeof *r->keys);
  r->key_bytes = malloc(c->kb.n ? c->kb.n : 1);
  if (!r->body || !r->keys || !r->key_bytes)
    return -ENOMEM;
  r->body_len = compact ? compact_json(body, n, r->body) : n;
  if (!compact && n)
    memcpy(r->body, body, n);
  sj_sha256(r->body, r->body_len, r->body_hash);
  if (c->kb.n)
    memcpy(r->key_bytes, c->kb.p, c->kb.n);
  for (size_t i = 0; i < c->nkeys; i++)
    r->keys[i] = (sj_index_key_t){c->keys[i].type, c->keys[i].len, r->key_bytes + c->keys[i].off};
  r->nkeys = (uint16_t)c->nkeys;
  return 0;
}

_Static_assert(SJ_CREDIT_FACT_MAX <= SJ_REC_FACTS_MAX, "sj_record_t.facts is too small");

/* The facts the store's hook (sj_credit_annotate) would make of the entry, from the parsed tree. */
static void record_facts(json_t *rec, sj_record_t *r) {
  sj_entry_header_t h;
  memset(&h, 0, sizeof h);
  h.version = SJ_ENTRY_VERSION;
  sj_record_header_fill(r, &h);
  size_t n = sj_credit_annotate_parsed(&h, r->kind == SJ_KIND_CREDIT ? rec : NULL, r->body,
                                       r->body_len, r->facts, sizeof r->facts);
  r->facts_n = (uint16_t)(n <= sizeof r->facts ? n : 0);
}

/* Validates one parsed record (index, NDJSON line or 0) whose bytes are body[0..n).
 * Returns 0 (valid, *r filled), 1 (invalid, errors added) or -ENOMEM. */
static int record_build(json_t *rec, const uint8_t *body, size_t n, int compact, size_t index,
                        size_t line, const uint8_t *hmac_key, sj_rec_errors_t *errs,
                        sj_record_t *r) {
  vctx_t c = {.w = {.errs = errs, .index = index, .line = line}, .hmac_key = hmac_key};
  memset(r, 0, sizeof *r);
  r->index = index;
  check_record(&c, rec, r);
  int rv = c.oom ? -ENOMEM : c.w.nerr ? 1 : 0;
  if (rv == 0)
    rv = record_finish(&c, r, body, n, compact);
  if (rv == 0)
    record_facts(rec, r);
  sj_buf_deinit(&c.kb);
  free(c.keys);
  return rv;
}

void sj_records_free(sj_record_t *recs, size_t n) {
  if (!recs)
    return;
  for (size_t i = 0; i < n; i++) {
    free(recs[i].body);
    free(recs[i].keys);
    free(recs[i].key_bytes);
  }
  free(recs);
}

void sj_record_header_fill(const sj_record_t *rec, sj_entry_header_t *h) {
  h->kind = rec->kind;
  h->disclosure = rec->disclosure;
  h->type = rec->type;
  h->type_len = rec->type_len;
  memcpy(h->body_hash, rec->body_hash, SJ_HASH_LEN);
  h->body_len = (uint32_t)rec->body_len;
  h->nkeys = rec->nkeys;
  h->keys = rec->keys;
}

/* ---- Requests
 * ------------------------------------------------------------------------------------ */

typedef enum { CT_JSON, CT_NDJSON, CT_UNSUPPORTED } ctype_t;

static const char *skip_sp(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

/* Media type (case-insensitive) and parameters; a charset parameter must say UTF-8. */
static ctype_t content_type_of(const char *ct) {
  if (!ct)
    return CT_UNSUPPORTED;
  ct = skip_sp(ct);
  size_t n = strcspn(ct, "; \t");
  ctype_t t = CT_UNSUPPORTED;
  if (n == 16 && strncasecmp(ct, "application/json", n) == 0)
    t = CT_JSON;
  else if ((n == 20 && strncasecmp(ct, "application/x-ndjson", n) == 0) ||
           (n == 18 && strncasecmp(ct, "application/ndjson", n) == 0))
    t = CT_NDJSON;
  for (const char *p = strchr(ct + n, ';'); p && t != CT_UNSUPPORTED; p = strchr(p + 1, ';')) {
    const char *param = skip_sp(p + 1);
    if (strncasecmp(param, "charset=", 8) != 0)
      continue;
    const char *v = param + 8;
    size_t vn = strcspn(v, "; \t");
    int quoted = vn >= 2 && v[0] == '"' && v[vn - 1] == '"';
    if (quoted)
      v++, vn -= 2;
    if (!((vn == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
          (vn == 4 && strncasecmp(v, "utf8", 4) == 0)))
      t = CT_UNSUPPORTED;
  }
  return t;
}

typedef struct {
  const uint8_t *hmac_key;
  size_t max_records;
  sj_rec_errors_t *errs;
  sj_record_t *recs; /* calloc'd array of nrecs */
  size_t nrecs;
  int invalid; /* some record broke a rule */
} req_t;

/* Reports a whole-body JSON error from jansson. */
static void json_fail(req_t *q, size_t index, size_t line, const json_error_t *je) {
  const char *code =
      json_error_code(je) == json_error_duplicate_key ? "JSON_DUPLICATE_KEY" : "JSON_SYNTAX";
  if (line)
    sj_rec_errors_add(q->errs, index, "", code, "line %zu, column %d: %s", line, je->column,
                      je->text);
  else
    sj_rec_errors_add(q->errs, index, "", code, "line %d, column %d: %s", je->line, je->column,
                      je->text);
}

static int alloc_recs(req_t *q, size_t n) {
  if (q->max_records && n > q->max_records) {
    sj_rec_errors_add(q->errs, 0, "", "TOO_MANY_RECORDS",
                      "%zu records in one request; at most %zu are accepted", n, q->max_records);
    return SJ_ETOOBIG;
  }
  q->recs = calloc(n, sizeof *q->recs);
  if (!q->recs)
    return -ENOMEM;
  q->nrecs = n;
  return 0;
}

static int add_record(req_t *q, json_t *rec, const uint8_t *p, size_t n, int compact, size_t index,
                      size_t line) {
  int rv = record_build(rec, p, n, compact, index, line, q->hmac_key, q->errs, &q->recs[index]);
  if (rv == 1)
    q->invalid = 1;
  return rv < 0 ? rv : 0;
}

/* Trims whitespace (SP, HT, CR, LF) on both sides of p[0..*n). */
static const uint8_t *trim(const uint8_t *p, size_t *n) {
  while (*n && is_ws(p[0]))
    p++, (*n)--;
  while (*n && is_ws(p[*n - 1]))
    (*n)--;
  return p;
}

/* The byte range of element k of a JSON array jansson accepted; *pos advances past it. Only
 * strings and nesting need tracking: the text is known to be valid JSON. */
static size_t next_element(const uint8_t *p, size_t n, size_t *pos) {
  size_t i = *pos;
  int depth = 0, in_string = 0;
  for (; i < n; i++) {
    uint8_t ch = p[i];
    if (in_string) {
      if (ch == '\\')
        i++;
      else if (ch == '"')
        in_string = 0;
    } else if (ch == '"') {
      in_string = 1;
    } else if (ch == '[' || ch == '{') {
      depth++;
    } else if (ch == ']' || ch == '}') {
      if (depth-- == 0)
        break;
    } else if (ch == ',' && depth == 0) {
      break;
    }
  }
  size_t end = i;
  *pos = i + 1; /* past the ',' (or the closing ']') */
  return end;
}

static int parse_array(req_t *q, json_t *arr, const uint8_t *p, size_t n) {
  size_t count = json_array_size(arr);
  if (count == 0) {
    sj_rec_errors_add(q->errs, 0, "", "BODY_EMPTY", "the array holds no records");
    return SJ_EFORMAT;
  }
  int rv = alloc_recs(q, count);
  size_t pos = 1; /* p[0] is '[' (trimmed) */
  for (size_t k = 0; rv == 0 && k < count; k++) {
    size_t start = pos, end = next_element(p, n, &pos);
    size_t len = end - start;
    const uint8_t *el = trim(p + start, &len);
    rv = add_record(q, json_array_get(arr, k), el, len, 1, k, 0);
  }
  return rv;
}

static int parse_json_body(req_t *q, const uint8_t *body, size_t n) {
  const uint8_t *p = trim(body, &n);
  if (n == 0) {
    sj_rec_errors_add(q->errs, 0, "", "BODY_EMPTY", "the request body is empty");
    return SJ_EFORMAT;
  }
  json_error_t je;
  json_t *root = sj_json_loadb((const char *)p, n, LOAD_FLAGS, &je);
  if (!root) {
    json_fail(q, 0, 0, &je);
    return SJ_EFORMAT;
  }
  int rv;
  if (json_is_object(root)) {
    rv = alloc_recs(q, 1);
    if (rv == 0)
      rv = add_record(q, root, p, n, 0, 0, 0);
  } else if (json_is_array(root)) {
    rv = parse_array(q, root, p, n);
  } else {
    sj_rec_errors_add(q->errs, 0, "", "BODY_NOT_RECORDS",
                      "the body must be a record object or an array of record objects");
    rv = SJ_EFORMAT;
  }
  json_decref(root);
  return rv;
}

/* Calls fn for every non-empty NDJSON line (trimmed), with its record number and line number. */
typedef int (*line_fn)(req_t *q, const uint8_t *p, size_t n, size_t index, size_t line);

static int each_line(req_t *q, const uint8_t *body, size_t n, line_fn fn, size_t *count) {
  size_t index = 0, line = 0, pos = 0;
  while (pos < n) {
    const uint8_t *nl = memchr(body + pos, '\n', n - pos);
    size_t len = nl ? (size_t)(nl - (body + pos)) : n - pos;
    const uint8_t *p = body + pos;
    pos += len + 1;
    line++;
    p = trim(p, &len);
    if (len == 0)
      continue;
    int rv = fn ? fn(q, p, len, index, line) : 0;
    if (rv)
      return rv;
    index++;
  }
  *count = index;
  return 0;
}

static int ndjson_line(req_t *q, const uint8_t *p, size_t n, size_t index, size_t line) {
  json_error_t je;
  json_t *rec = sj_json_loadb((const char *)p, n, LOAD_FLAGS, &je);
  if (!rec) {
    json_fail(q, index, line, &je);
    q->invalid = 1;
    return 0;
  }
  int rv = add_record(q, rec, p, n, 0, index, line);
  json_decref(rec);
  return rv;
}

static int parse_ndjson_body(req_t *q, const uint8_t *body, size_t n) {
  size_t count = 0;
  each_line(q, body, n, NULL, &count);
  if (count == 0) {
    sj_rec_errors_add(q->errs, 0, "", "BODY_EMPTY", "the request body holds no records");
    return SJ_EFORMAT;
  }
  int rv = alloc_recs(q, count);
  return rv ? rv : each_line(q, body, n, ndjson_line, &count);
}

int sj_record_parse_request(const uint8_t *body, size_t n, const char *content_type,
                            const uint8_t hmac_key[SJ_REC_HMAC_KEY_LEN], size_t max_records,
                            sj_record_t **recs, size_t *nrecs, sj_rec_errors_t *errs) {
  req_t q = {.hmac_key = hmac_key, .max_records = max_records, .errs = errs};
  int rv;
  switch (content_type_of(content_type)) {
  case CT_JSON:
    rv = parse_json_body(&q, body, n);
    break;
  case CT_NDJSON:
    rv = parse_ndjson_body(&q, body, n);
    break;
  default:
    sj_rec_errors_add(errs, 0, "", "CONTENT_TYPE_UNSUPPORTED",
                      "Content-Type must be application/json or application/x-ndjson (UTF-8)");
    rv = SJ_EPROTO;
    break;
  }
  if (rv == 0 && errs->oom)
    rv = -ENOMEM;
  if (rv == 0 && q.invalid)
    rv = SJ_EINVAL;
  if (rv) {
    sj_records_free(q.recs, q.nrecs);
    return rv;
  }
  *recs = q.recs;
  *nrecs = q.nrecs;
  return 0;
}
