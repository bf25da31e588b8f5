/* node/epcis.c — EPCIS 2.0 / CBV 2.0 rules beyond the minimal event contract, and the
 * EPCISDocument wrapper of POST /v1/epcis/capture (see epcis.h, docs/API.md, docs/TRACE.md).
 *
 * jansson has parsed and checked every JSON text this file looks at; the raw scanner below only
 * finds byte ranges in text jansson accepted, so it needs to track strings and nesting, nothing
 * more. */
#include "node/epcis.h"

#include "common/common.h"
#include "node/epc.h"
#include "node/json.h"
#include "node/record_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- Times ---------------------------------------------------------------------------------- */

static int digits_at(const char *s, size_t k, int *v) {
  int x = 0;
  for (size_t i = 0; i < k; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return 0;
}

/* "+hh:mm" / "-hh:mm" with hh <= max_h (and mm 00 at max_h when strict_max) into minutes east. */
static int offset_parse(const char *s, size_t n, int max_h, int strict_max, int *minutes) {
  int h, m;
  if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' || digits_at(s + 1, 2, &h) ||
      digits_at(s + 4, 2, &m) || h > max_h || m > 59 || (strict_max && h == max_h && m != 0))
    return -1;
  *minutes = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
  return 0;
}

int sj_epcis_parse_offset(const char *s, size_t n, int *minutes) {
  return offset_parse(s, n, 14, 1, minutes) ? SJ_EINVAL : 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (eras of 400 years). */
static int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int month_days(int y, int m) {
  static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : dm[m - 1];
}

int sj_epcis_parse_time(const char *s, size_t n, int64_t *ms) {
  int Y, M, D, h, mi, sec, off = 0, frac = 0;
  if (n < 20 || digits_at(s, 4, &Y) || s[4] != '-' || digits_at(s + 5, 2, &M) || s[7] != '-' ||
      digits_at(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || digits_at(s + 11, 2, &h) ||
      s[13] != ':' || digits_at(s + 14, 2, &mi) || s[16] != ':' || digits_at(s + 17, 2, &sec))
    return SJ_EINVAL;
  if (Y < 1 || M < 1 || M > 12 || D < 1 || D > month_days(Y, M) || h > 23 || mi > 59 || sec > 59)
    return SJ_EINVAL;
  size_t i = 19;
  if (s[i] == '.') {
    size_t start = ++i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
      if (i - start < 3)
        frac = frac * 10 + (s[i] - '0');
    if (i == start || i - start > 9)
      return SJ_EINVAL;
    for (size_t k = i - start; k < 3; k++)
      frac *= 10; /* ".5" is 500 ms */
  }
  if (i == n - 1 && (s[i] == 'Z' || s[i] == 'z'))
    off = 0;
  else if (i >= n || offset_parse(s + i, n - i, 23, 0, &off))
    return SJ_EINVAL;
  int64_t secs = ((days_from_civil(Y, M, D) * 24 + h) * 60 + mi) * 60 + sec - (int64_t)off * 60;
  *ms = secs * 1000 + frac;
  return 0;
}

void sj_epcis_format_time(int64_t ms, char out[64]) {
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  int64_t rem = secs - days * 86400;
  int y, m, d;
  civil_from_days(days, &y, &m, &d);
  snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
           (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms - secs * 1000));
}

/* ---- CBV 2.0 vocabularies ------------------------------------------------------------------- */

static const char *const bizsteps[] = {"accepting",
                                       "arriving",
                                       "assembling",
                                       "collecting",
                                       "commissioning",
                                       "consigning",
                                       "creating_class_instance",
                                       "cycle_counting",
                                       "decommissioning",
                                       "departing",
                                       "destroying",
                                       "disassembling",
                                       "dispensing",
                                       "encoding",
                                       "entering_exiting",
                                       "holding",
                                       "inspecting",
                                       "installing",
                                       "killing",
                                       "loading",
                                       "other",
                                       "packing",
                                       "picking",
                                       "receiving",
                                       "removing",
                                       "repackaging",
                                       "repairing",
                                       "replacing",
                                       "reserving",
                                       "retail_selling",
                                       "sampling",
                                       "sensor_reporting",
                                       "shipping",
                                       "staging_outbound",
                                       "stock_taking",
                                       "stocking",
                                       "storing",
                                       "transporting",
                                       "unloading",
                                       "unpacking",
                                       "void_shipping",
                                       NULL};

static const char *const dispositions[] = {"active",
                                           "available",
                                           "completeness_inferred",
                                           "completeness_verified",
                                           "conformant",
                                           "container_closed",
                                           "container_open",
                                           "damaged",
                                           "destroyed",
                                           "dispensed",
                                           "disposed",
                                           "encoded",
                                           "expired",
                                           "in_progress",
                                           "in_transit",
                                           "inactive",
                                           "mismatch_instance",
                                           "mismatch_class",
                                           "mismatch_quantity",
                                           "needs_replacement",
                                           "no_pedigree_match",
                                           "non_conformant",
                                           "non_sellable_other",
                                           "partially_dispensed",
                                           "recalled",
                                           "reserved",
                                           "retail_sold",
                                           "returned",
                                           "sellable_accessible",
                                           "sellable_not_accessible",
                                           "stolen",
                                           "unavailable",
                                           "unknown",
                                           NULL};

static const char *const btts[] = {"bol",     "cert",    "desadv",    "inv",    "pedigree",
                                   "po",      "poc",     "prodorder", "recadv", "rma",
                                   "testprd", "testres", "upevt",     NULL};
static const char *const sdts[] = {"owning_party", "possessing_party", "location", NULL};
static const char *const reasons[] = {"did_not_occur", "incorrect_data", NULL};

typedef struct {
  const char *const *words;
  const char *urn; /* "urn:epcglobal:cbv:bizstep:" */
  const char *cls; /* "BizStep-": after "https://ref.gs1.org/cbv/" or "cbv:" */
} vocab_t;

static const vocab_t vocabs[] = {
    [SJ_CBV_BIZSTEP] = {bizsteps, "urn:epcglobal:cbv:bizstep:", "BizStep-"},
    [SJ_CBV_DISPOSITION] = {dispositions, "urn:epcglobal:cbv:disp:", "Disp-"},
    [SJ_CBV_BTT] = {btts, "urn:epcglobal:cbv:btt:", "BTT-"},
    [SJ_CBV_SDT] = {sdts, "urn:epcglobal:cbv:sdt:", "SDT-"},
    [SJ_CBV_ERROR_REASON] = {reasons, "urn:epcglobal:cbv:er:", "ER-"},
};

static const char *word_find(const char *const *words, const char *s, size_t n) {
  for (size_t i = 0; words[i]; i++)
    if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0)
      return words[i];
  return NULL;
}

static int starts_ci(const char *s, size_t n, const char *prefix) {
  size_t k = strlen(prefix);
  return n >= k && strncasecmp(s, prefix, k) == 0;
}

static int starts(const char *s, size_t n, const char *prefix) {
  size_t k = strlen(prefix);
  return n >= k && memcmp(s, prefix, k) == 0;
}

/* RFC 3986 absolute URI, loosely: a scheme, ':', then at least one character, no whitespace or
 * control characters anywhere. */
static int is_uri(const char *s, size_t n) {
  size_t i = 0;
  if (n == 0 || !isalpha((unsigned char)s[0]))
    return 0;
  while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
    i++;
  if (i == n || s[i] != ':' || i + 1 == n)
    return 0;
  for (size_t k = 0; k < n; k++)
    if ((unsigned char)s[k] <= 0x20 || s[k] == 0x7f)
      return 0;
  return 1;
}

/* The word after a CBV namespace prefix of vocabulary v, or NULL if s is not in that form. */
static const char *cbv_tail(const vocab_t *v, const char *s, size_t n, size_t *tn) {
  static const char *const web[] = {"https://ref.gs1.org/cbv/", "http://ref.gs1.org/cbv/", "cbv:"};
  if (starts_ci(s, n, v->urn)) {
    *tn = n - strlen(v->urn);
    return s + strlen(v->urn);
  }
  for (size_t i = 0; i < 3; i++) {
    size_t k = strlen(web[i]), c = strlen(v->cls);
    if (starts(s, n, web[i]) && starts(s + k, n - k, v->cls)) {
      *tn = n - k - c;
      return s + k + c;
    }
  }
  return NULL;
}

int sj_cbv_classify(sj_cbv_vocab_t v, const char *s, size_t n, const char **word) {
  const vocab_t *vo = &vocabs[v];
  size_t tn;
  const char *tail = cbv_tail(vo, s, n, &tn);
  const char *w = NULL;
  if (tail)
    w = word_find(vo->words, tail, tn);
  else if (!memchr(s, ':', n))
    w = word_find(vo->words, s, n); /* a bare word must be a CBV one */
  else if (starts_ci(s, n, "urn:epcglobal:cbv:") || starts(s, n, "https://ref.gs1.org/cbv/") ||
           starts(s, n, "http://ref.gs1.org/cbv/") || starts(s, n, "cbv:"))
    return -1; /* the CBV namespace, but another vocabulary or an unknown class */
  else
    return is_uri(s, n) ? 0 : -1;
  if (!w)
    return -1;
  if (word)
    *word = w;
  return 1;
}

/* UN/CEFACT Recommendation 20 codes accepted as uom: mass, volume, length, area, count, time,
 * temperature and ratio units met in food supply chains. */
static const char *const uoms[] = {"KGM", "GRM", "MGM", "TNE", "LBR", "ONZ", "LTR", "MLT", "CLT",
                                   "HLT", "MTQ", "DMQ", "CMQ", "GLL", "MTR", "CMT", "MMT", "KMT",
                                   "MTK", "HAR", "H87", "EA",  "C62", "NAR", "PR",  "DZN", "SET",
                                   "CEL", "FAH", "KEL", "P1",  "HUR", "MIN", "SEC", "DAY", NULL};

int sj_epcis_uom_known(const char *s) {
  return word_find(uoms, s, strlen(s)) != NULL;
}

/* ---- Checking an event ------------------------------------------------------------------------
 */

/* A vocabulary member: absent is fine; a non-string or an invalid value is reported. */
static void check_vocab(sj_rec_walk_t *c, json_t *obj, const char *name, sj_cbv_vocab_t v,
                        const char *code, const char *what) {
  json_t *x = json_object_get(obj, name);
  if (!x)
    return;
  if (!json_is_string(x))
    sj_rec_walk_error(c, name, "FIELD_TYPE", "\"%s\" must be a string", name);
  else if (sj_cbv_classify(v, json_string_value(x), json_string_length(x), NULL) < 0)
    sj_rec_walk_error(c, name, code,
                      "\"%s\" must be a CBV 2.0 %s (bare word, urn:epcglobal:cbv:... or "
                      "https://ref.gs1.org/cbv/... form) or an extension URI",
                      name, what);
}

static void check_quantity(sj_rec_walk_t *c, json_t *q) {
  json_t *qty = json_object_get(q, "quantity"), *uom = json_object_get(q, "uom");
  if (qty && json_is_number(qty) && json_number_value(qty) < 0)
    sj_rec_walk_error(c, "quantity", "QUANTITY_INVALID", "\"quantity\" must not be negative");
  if (!uom)
    return;
  if (!json_is_string(uom))
    sj_rec_walk_error(c, "uom", "FIELD_TYPE", "\"uom\" must be a string");
  else if (!qty)
    sj_rec_walk_error(c, "uom", "UOM_WITHOUT_QUANTITY",
                      "\"uom\" is only allowed beside a \"quantity\"");
  else if (!sj_epcis_uom_known(json_string_value(uom)))
    sj_rec_walk_error(
        c, "uom", "UOM_INVALID",
        "\"uom\" must be a UN/CEFACT Recommendation 20 code such as KGM, LTR, GRM, TNE, MTR, "
        "H87 or EA (docs/API.md lists those accepted)");
}

static void check_quantities(sj_rec_walk_t *c, json_t *ev) {
  static const char *const lists[] = {"quantityList", "childQuantityList", "inputQuantityList",
                                      "outputQuantityList"};
  for (size_t k = 0; k < 4; k++) {
    json_t *a = json_object_get(ev, lists[k]), *q;
    size_t i;
    if (!json_is_array(a))
      continue; /* record.c reports the type */
    size_t m = sj_rec_ptr_push(&c->ptr, lists[k]);
    json_array_foreach(a, i, q) {
      if (!json_is_object(q))
        continue;
      size_t mi = sj_rec_ptr_push_index(&c->ptr, i);
      check_quantity(c, q);
      sj_rec_ptr_pop(&c->ptr, mi);
    }
    sj_rec_ptr_pop(&c->ptr, m);
  }
}

/* An array of objects, each with a vocabulary "type" and a URI member named id_name. */
static void check_typed_list(sj_rec_walk_t *c, json_t *ev, const char *name, const char *id_name,
                             sj_cbv_vocab_t v, int type_required, const char *type_code) {
  json_t *a = json_object_get(ev, name), *o;
  size_t i;
  if (!a)
    return;
  if (!json_is_array(a)) {
    sj_rec_walk_error(c, name, "FIELD_TYPE", "\"%s\" must be an array", name);
    return;
  }
  size_t m = sj_rec_ptr_push(&c->ptr, name);
  json_array_foreach(a, i, o) {
    size_t mi = sj_rec_ptr_push_index(&c->ptr, i);
    if (!json_is_object(o)) {
      sj_rec_walk_error(c, NULL, "FIELD_TYPE", "an element of \"%s\" must be an object", name);
    } else {
      if (type_required && !json_object_get(o, "type"))
        sj_rec_walk_error(c, "type", "FIELD_MISSING", "required field \"type\" is missing");
      check_vocab(c, o, "type", v, type_code, "type");
      json_t *id = json_object_get(o, id_name);
      if (!id)
        sj_rec_walk_error(c, id_name, "FIELD_MISSING", "required field \"%s\" is missing", id_name);
      else if (!json_is_string(id) || !is_uri(json_string_value(id), json_string_length(id)))
        sj_rec_walk_error(c, id_name, "URI_INVALID", "\"%s\" must be an absolute URI", id_name);
    }
    sj_rec_ptr_pop(&c->ptr, mi);
  }
  sj_rec_ptr_pop(&c->ptr, m);
}

static void check_persistent_disposition(sj_rec_walk_t *c, json_t *ev) {
  json_t *pd = json_object_get(ev, "persistentDisposition");
  if (!pd)
    return;
  if (!json_is_object(pd)) {
    sj_rec_walk_error(c, "persistentDisposition", "FIELD_TYPE",
                      "\"persistentDisposition\" must be an object");
    return;
  }
  size_t m = sj_rec_ptr_push(&c->ptr, "persistentDisposition");
  static const char *const parts[] = {"set", "unset"};
  for (size_t k = 0; k < 2; k++) {
    json_t *a = json_object_get(pd, parts[k]), *x;
    size_t i;
    if (!a)
      continue;
    if (!json_is_array(a)) {
      sj_rec_walk_error(c, parts[k], "FIELD_TYPE", "\"%s\" must be an array of dispositions",
                        parts[k]);
      continue;
    }
    size_t mk = sj_rec_ptr_push(&c->ptr, parts[k]);
    json_array_foreach(a, i, x) {
      size_t mi = sj_rec_ptr_push_index(&c->ptr, i);
      if (!json_is_string(x) || sj_cbv_classify(SJ_CBV_DISPOSITION, json_string_value(x),
                                                json_string_length(x), NULL) < 0)
        sj_rec_walk_error(c, NULL, "DISPOSITION_INVALID",
                          "must be a CBV 2.0 disposition or an extension URI");
      sj_rec_ptr_pop(&c->ptr, mi);
    }
    sj_rec_ptr_pop(&c->ptr, mk);
  }
  sj_rec_ptr_pop(&c->ptr, m);
}

static void check_error_declaration(sj_rec_walk_t *c, json_t *ev) {
  json_t *ed = json_object_get(ev, "errorDeclaration");
  if (!ed)
    return;
  if (!json_is_object(ed)) {
    sj_rec_walk_error(c, "errorDeclaration", "FIELD_TYPE",
                      "\"errorDeclaration\" must be an object");
    return;
  }
  size_t m = sj_rec_ptr_push(&c->ptr, "errorDeclaration");
  json_t *t = json_object_get(ed, "declarationTime");
  int64_t ms;
  if (!t)
    sj_rec_walk_error(c, "declarationTime", "FIELD_MISSING",
                      "required field \"declarationTime\" is missing");
  else if (!json_is_string(t) ||
           sj_epcis_parse_time(json_string_value(t), json_string_length(t), &ms))
    sj_rec_walk_error(c, "declarationTime", "EVENT_TIME_INVALID",
                      "\"declarationTime\" must be an RFC 3339 date-time with an offset");
  check_vocab(c, ed, "reason", SJ_CBV_ERROR_REASON, "ERROR_REASON_INVALID", "error reason");
  sj_rec_ptr_pop(&c->ptr, m);
}

/* Type-specific rules (EPCIS 2.0 §7.4). */
static void check_type_rules(sj_rec_walk_t *c, json_t *ev, int type) {
  const char *action = json_string_value(json_object_get(ev, "action"));
  if (type == 1 && action && strcmp(action, "OBSERVE") != 0 && !json_object_get(ev, "parentID"))
    sj_rec_walk_error(c, NULL, "PARENT_ID_MISSING",
                      "an AggregationEvent with action ADD or DELETE must name its \"parentID\"");
  if (type == 2) {
    static const char *const io[] = {"inputEPCList", "inputQuantityList", "outputEPCList",
                                     "outputQuantityList"};
    size_t n = 0;
    for (size_t k = 0; k < 4; k++)
      n += json_array_size(json_object_get(ev, io[k]));
    if (n == 0)
      sj_rec_walk_error(c, NULL, "TRANSFORMATION_IO_MISSING",
                        "a TransformationEvent must name at least one input or output");
  }
}

/* ---- Chinese practice extension fields ------------------------------------------------------ */

typedef enum { EXT_NONE, EXT_USCC, EXT_CERT, EXT_AREA } ext_t;

/* The member's local name (after the last ':', '#' or '/'), lower case, '_' and '-' dropped. */
static void local_name(const char *key, char *out, size_t cap) {
  const char *s = key;
  for (const char *p = key; *p; p++)
    if (*p == ':' || *p == '#' || *p == '/')
      s = p + 1;
  size_t k = 0;
  for (; *s && k + 1 < cap; s++)
    if (*s != '_' && *s != '-')
      out[k++] = (char)tolower((unsigned char)*s);
  out[k] = 0;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

static ext_t ext_kind(const char *key) {
  char ln[64];
  local_name(key, ln, sizeof ln);
  if (ends_with(ln, "uscc"))
    return EXT_USCC;
  if (strstr(ln, "quarantinecert") || strstr(ln, "inspectioncert"))
    return EXT_CERT;
  if (ends_with(ln, "areacode"))
    return EXT_AREA;
  return EXT_NONE;
}

/* GB/T 2260: a 6-digit code whose first two digits are a province-level division. */
static int area_code_ok(const char *s, size_t n) {
  static const int provinces[] = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34,
                                  35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
                                  53, 54, 61, 62, 63, 64, 65, 71, 81, 82};
  int p;
  if (n != 6 || strspn(s, "0123456789") != 6 || digits_at(s, 2, &p))
    return 0;
  for (size_t i = 0; i < sizeof provinces / sizeof provinces[0]; i++)
    if (provinces[i] == p)
      return 1;
  return 0;
}

/* Certificate numbers as printed: 4..40 of 0-9 A-Z a-z and '-'. */
static int cert_ok(const char *s, size_t n) {
  if (n < 4 || n > 40)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-')
      return 0;
  return 1;
}

static void check_ext_value(sj_rec_walk_t *c, const char *key, json_t *v, ext_t kind) {
  if (!json_is_string(v)) {
    sj_rec_walk_error(c, key, "FIELD_TYPE", "\"%s\" must be a string", key);
    return;
  }
  const char *s = json_string_value(v);
  size_t n = json_string_length(v);
  if (kind == EXT_USCC) {
    sj_id_code_t code = sj_uscc_check(s, n);
    if (code != SJ_ID_OK)
      sj_rec_walk_error(c, key, sj_id_code_name(code),
                        "\"%s\" must be a valid unified social credit code", key);
  } else if (kind == EXT_CERT && !cert_ok(s, n)) {
    sj_rec_walk_error(c, key, "CERTIFICATE_NUMBER_INVALID",
                      "\"%s\" must be a certificate number of 4 to 40 letters, digits or '-'", key);
  } else if (kind == EXT_AREA && !area_code_ok(s, n)) {
    sj_rec_walk_error(c, key, "AREA_CODE_INVALID",
                      "\"%s\" must be a 6-digit GB/T 2260 division code such as \"340000\"", key);
  }
}

static void check_extensions_in(sj_rec_walk_t *c, json_t *obj) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    ext_t kind = ext_kind(key);
    if (kind != EXT_NONE)
      check_ext_value(c, key, v, kind);
  }
}

static void check_extensions(sj_rec_walk_t *c, json_t *ev) {
  check_extensions_in(c, ev);
  json_t *ilmd = json_object_get(ev, "ilmd");
  if (json_is_object(ilmd)) {
    size_t m = sj_rec_ptr_push(&c->ptr, "ilmd");
    check_extensions_in(c, ilmd);
    sj_rec_ptr_pop(&c->ptr, m);
  } else if (ilmd) {
    sj_rec_walk_error(c, "ilmd", "FIELD_TYPE", "\"ilmd\" must be an object");
  }
}

static const char *operator_in(json_t *obj, int exact) {
  const char *key;
  json_t *v;
  char ln[64];
  json_object_foreach(obj, key, v) {
    local_name(key, ln, sizeof ln);
    if (json_is_string(v) && (exact ? strcmp(ln, "operatoruscc") == 0 : ends_with(ln, "uscc")))
      return json_string_value(v);
  }
  return NULL;
}

const char *sj_epcis_operator(json_t *ev) {
  json_t *ilmd = json_object_get(ev, "ilmd");
  const char *s = operator_in(ev, 1);
  if (!s && json_is_object(ilmd))
    s = operator_in(ilmd, 1);
  if (!s)
    s = operator_in(ev, 0);
  if (!s && json_is_object(ilmd))
    s = operator_in(ilmd, 0);
  return s;
}

size_t sj_epcis_check_event(json_t *ev, int type, const char *base, size_t index, size_t line,
                            sj_rec_errors_t *errs) {
  sj_rec_walk_t c = {.errs = errs, .index = index, .line = line};
  snprintf(c.ptr.s, sizeof c.ptr.s, "%s", base);
  c.ptr.n = strlen(c.ptr.s);
  check_vocab(&c, ev, "bizStep", SJ_CBV_BIZSTEP, "BIZ_STEP_INVALID", "business step");
  check_vocab(&c, ev, "disposition", SJ_CBV_DISPOSITION, "DISPOSITION_INVALID", "disposition");
  check_persistent_disposition(&c, ev);
  check_quantities(&c, ev);
  check_typed_list(&c, ev, "bizTransactionList", "bizTransaction", SJ_CBV_BTT, 0,
                   "BIZ_TRANSACTION_TYPE_INVALID");
  check_typed_list(&c, ev, "sourceList", "source", SJ_CBV_SDT, 1, "SOURCE_DEST_TYPE_INVALID");
  check_typed_list(&c, ev, "destinationList", "destination", SJ_CBV_SDT, 1,
                   "SOURCE_DEST_TYPE_INVALID");
  json_t *id = json_object_get(ev, "eventID");
  if (id && (!json_is_string(id) || !is_uri(json_string_value(id), json_string_length(id))))
    sj_rec_walk_error(&c, "eventID", "URI_INVALID", "\"eventID\" must be an absolute URI");
  check_error_declaration(&c, ev);
  check_type_rules(&c, ev, type);
  check_extensions(&c, ev);
  return c.nerr;
}

/* ---- EPCISDocument -------------------------------------------------------------------------- */

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY)

static const char *const event_types[] = {"ObjectEvent",         "AggregationEvent",
                                          "TransformationEvent", "TransactionEvent",
                                          "AssociationEvent",    NULL};

static int is_ws(uint8_t ch) {
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static size_t skip_ws(const uint8_t *p, size_t n, size_t i) {
  while (i < n && is_ws(p[i]))
    i++;
  return i;
}

/* p[i] is '"': returns the index just past the closing quote. */
static size_t skip_string(const uint8_t *p, size_t n, size_t i) {
  for (i++; i < n; i++) {
    if (p[i] == '\\')
      i++;
    else if (p[i] == '"')
      return i + 1;
  }
  return n;
}

/* Returns the index just past the value starting at p[i] (text already validated). */
static size_t skip_value(const uint8_t *p, size_t n, size_t i) {
  if (i < n && p[i] == '"')
    return skip_string(p, n, i);
  int depth = 0;
  for (; i < n; i++) {
    uint8_t ch = p[i];
    if (ch == '"') {
      i = skip_string(p, n, i) - 1;
    } else if (ch == '{' || ch == '[') {
      depth++;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0)
        return i;
      if (--depth == 0)
        return i + 1;
    } else if (depth == 0 && (ch == ',' || is_ws(ch))) {
      return i;
    }
  }
  return n;
}

/* Whether the raw JSON string p[a..b) (quotes included) is name; escapes are decoded by jansson. */
static int key_is(const uint8_t *p, size_t a, size_t b, const char *name) {
  size_t len = b - a - 2, nl = strlen(name);
  if (!memchr(p + a, '\\', b - a))
    return len == nl && memcmp(p + a + 1, name, nl) == 0;
  json_t *s = json_loadb((const char *)p + a, b - a, JSON_DECODE_ANY, NULL);
  int eq = json_is_string(s) && strcmp(json_string_value(s), name) == 0;
  json_decref(s);
  return eq;
}

/* In the object starting at p[i] ('{'), finds member name: its value's range. */
static int find_member(const uint8_t *p, size_t n, size_t i, const char *name,
                       sj_epcis_span_t *out) {
  i = skip_ws(p, n, i + 1);
  while (i < n && p[i] == '"') {
    size_t ke = skip_string(p, n, i);
    size_t v = skip_ws(p, n, skip_ws(p, n, ke) + 1); /* past ':' */
    size_t ve = skip_value(p, n, v);
    if (key_is(p, i, ke, name)) {
      *out = (sj_epcis_span_t){v, ve - v};
      return 0;
    }
    i = skip_ws(p, n, ve);
    if (i < n && p[i] == ',')
      i = skip_ws(p, n, i + 1);
  }
  return -1;
}

/* The elements of the array starting at p[i] ('['), count of them known. */
static void array_elements(const uint8_t *p, size_t n, size_t i, sj_epcis_span_t *el,
                           size_t count) {
  i = skip_ws(p, n, i + 1);
  for (size_t k = 0; k < count && i < n; k++) {
    size_t e = skip_value(p, n, i);
    el[k] = (sj_epcis_span_t){i, e - i};
    i = skip_ws(p, n, e);
    if (i < n && p[i] == ',')
      i = skip_ws(p, n, i + 1);
  }
}

static int doc_fail(sj_rec_errors_t *errs, const char *field, const char *code, const char *msg) {
  sj_rec_errors_add(errs, 0, field, code, "%s", msg);
  return SJ_EFORMAT;
}

static int split_document(const uint8_t *p, size_t n, json_t *root, size_t max_events,
                          sj_epcis_doc_t *out, sj_rec_errors_t *errs) {
  json_t *sv = json_object_get(root, "schemaVersion");
  if (sv && (!json_is_string(sv) || strncmp(json_string_value(sv), "2.", 2) != 0))
    return doc_fail(errs, "/schemaVersion", "EPCIS_SCHEMA_VERSION_UNSUPPORTED",
                    "\"schemaVersion\" must be \"2.0\" (EPCIS 2.0)");
  json_t *list = json_object_get(json_object_get(root, "epcisBody"), "eventList");
  if (!json_is_array(list))
    return doc_fail(errs, "/epcisBody/eventList", "EPCIS_EVENT_LIST_MISSING",
                    "an EPCISDocument needs \"epcisBody\": {\"eventList\": [...]}");
  size_t count = json_array_size(list);
  if (count == 0)
    return doc_fail(errs, "/epcisBody/eventList", "EPCIS_EVENT_LIST_EMPTY",
                    "the document's eventList holds no events");
  if (max_events && count > max_events) {
    sj_rec_errors_add(errs, 0, "/epcisBody/eventList", "TOO_MANY_RECORDS",
                      "%zu events in one document; at most %zu are accepted", count, max_events);
    return SJ_ETOOBIG;
  }
  sj_epcis_span_t body, evl;
  if (find_member(p, n, 0, "epcisBody", &body) || find_member(p, n, body.off, "eventList", &evl))
    return doc_fail(errs, "/epcisBody/eventList", "EPCIS_EVENT_LIST_MISSING",
                    "eventList not found");
  out->events = calloc(count, sizeof *out->events);
  if (!out->events)
    return -ENOMEM;
  out->nevents = count;
  array_elements(p, n, evl.off, out->events, count);
  if (find_member(p, n, 0, "@context", &out->context))
    out->context = (sj_epcis_span_t){0, 0};
  out->is_document = 1;
  return 0;
}

int sj_epcis_split(const uint8_t *body, size_t n, size_t max_events, sj_epcis_doc_t *out,
                   sj_rec_errors_t *errs) {
  size_t a = skip_ws(body, n, 0), b = n;
  while (b > a && is_ws(body[b - 1]))
    b--;
  json_error_t je;
  json_t *root = sj_json_loadb((const char *)body + a, b - a, LOAD_FLAGS, &je);
  if (!root) {
    sj_rec_errors_add(errs, 0, "",
                      json_error_code(&je) == json_error_duplicate_key ? "JSON_DUPLICATE_KEY"
                                                                       : "JSON_SYNTAX",
                      "line %d, column %d: %s", je.line, je.column, je.text);
    return SJ_EFORMAT;
  }
  sj_epcis_doc_t d = {0};
  const char *type = json_string_value(json_object_get(root, "type"));
  int rv;
  if (!json_is_object(root) || !type) {
    rv = doc_fail(errs, "/type", "EPCIS_BODY_INVALID",
                  "the body must be an EPCISDocument or one EPCIS event (an object with \"type\")");
  } else if (strcmp(type, "EPCISDocument") == 0) {
    /* offsets are relative to the trimmed text; shift them back afterwards */
    rv = split_document(body + a, b - a, root, max_events, &d, errs);
    for (size_t i = 0; rv == 0 && i < d.nevents; i++)
      d.events[i].off += a;
    d.context.off += a;
  } else if (word_find(event_types, type, strlen(type))) {
    d.events = malloc(sizeof *d.events);
    rv = d.events ? 0 : -ENOMEM;
    d.nevents = d.events ? 1 : 0;
    if (d.events)
      d.events[0] = (sj_epcis_span_t){a, b - a};
  } else {
    rv = doc_fail(errs, "/type", "EPCIS_BODY_INVALID",
                  "\"type\" must be EPCISDocument or an EPCIS 2.0 event type");
  }
  json_decref(root);
  if (rv) {
    sj_epcis_doc_free(&d);
    return rv;
  }
  *out = d;
  return 0;
}

void sj_epcis_doc_free(sj_epcis_doc_t *d) {
  free(d->events);
  memset(d, 0, sizeof *d);
}

/* Appends p[0..n) with the whitespace outside strings removed. */
static int append_compact(sj_buf_t *out, const uint8_t *p, size_t n) {
  int rv = sj_buf_reserve(out, n);
  if (rv)
    return rv;
  int in_string = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t ch = p[i];
    if (in_string) {
      out->p[out->n++] = ch;
      if (ch == '\\' && i + 1 < n)
        out->p[out->n++] = p[++i];
      else if (ch == '"')
        in_string = 0;
    } else if (!is_ws(ch)) {
      out->p[out->n++] = ch;
      in_string = ch == '"';
    }
  }
  out->p[out->n] = 0;
  return 0;
}

int sj_epcis_to_ndjson(const uint8_t *body, const sj_epcis_doc_t *d, sj_buf_t *out) {
  int rv = 0;
  for (size_t i = 0; rv == 0 && i < d->nevents; i++) {
    rv = sj_buf_append_str(out, "{\"kind\":\"trace\",");
    if (rv == 0 && d->context.len) {
      rv = sj_buf_append_str(out, "\"@context\":");
      rv = rv ? rv : append_compact(out, body + d->context.off, d->context.len);
      rv = rv ? rv : sj_buf_append_u8(out, ',');
    }
    rv = rv ? rv : sj_buf_append_str(out, "\"event\":");
    rv = rv ? rv : append_compact(out, body + d->events[i].off, d->events[i].len);
    rv = rv ? rv : sj_buf_append_str(out, "}\n");
  }
  return rv ? -ENOMEM : 0;
}
