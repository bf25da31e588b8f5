/* node/credit.c — the credit domain (see credit.h, docs/CREDIT.md and docs/DISCLOSURE.md):
 * the rule tables, dates, validation of the optional credit fields, the fold of a subject's
 * entries into their current status, and the public view of a record body.
 *
 * The rule files are parsed once with jansson and then only read (jansson lookups do not touch
 * reference counts, so concurrent readers are safe). */
#include "node/credit.h"
#include "node/json.h"

#include "node/config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* The rule files, embedded at build time from node/credit_rules.json and disclosure_rules.json. */
extern const unsigned char sj_credit_rules_json[];
extern const size_t sj_credit_rules_json_len;
extern const unsigned char sj_disclosure_rules_json[];
extern const size_t sj_disclosure_rules_json_len;

/* ---- Rules --------------------------------------------------------------------------------------
 */

#define MAX_NAMES 256
#define MAX_RULES 64 /* types, severities, rating schemes each */

/* What the fold reads of one type's, severity's or scheme's rule, taken out of the JSON once (the
 * fold runs for every lookup of a subject; ~13 jansson lookups per entry otherwise). Each value is
 * exactly what the JSON lookups gave: rule_uint's defaults included. */
enum { WIN_NONE = 0, WIN_SEVERITY, WIN_PERIOD };
typedef struct {
  const char *name;             /* key in "types"; borrowed from the parsed rules */
  const json_t *r;              /* the rule */
  uint8_t win;                  /* "window": WIN_SEVERITY, WIN_PERIOD, or WIN_NONE otherwise */
  uint8_t published;            /* "published" is true */
  uint8_t category;             /* sj_credit_category_t of "category" */
  const char *default_severity; /* or NULL */
  unsigned default_months;      /* rule_uint(r, "default_months", 12) */
  unsigned min_months;          /* rule_uint(r, "min_months", 0) */
} type_rule_t;
typedef struct {
  const char *name;
  uint8_t published;               /* "published" is true */
  unsigned max_months, min_months; /* defaults 12 and 3 */
} sev_rule_t;
typedef struct {
  const char *name;
  int has_valid;         /* "valid_months" is an integer >= 0 ... */
  unsigned valid_months; /* ... of this value */
} scheme_rule_t;

static struct {
  json_t *credit;                  /* node/credit_rules.json */
  json_t *disclosure;              /* node/disclosure_rules.json */
  const char *personal[MAX_NAMES]; /* every personal member name and minor flag, sorted */
  size_t npersonal;
  uint64_t personal_shape[256]; /* bit n of [c]: some name of length n < 64 starts with c */
  int personal_long;            /* some name is 64 bytes or longer */
  uint32_t digest; /* of both rule files: facts derived under other rules are not used */
  type_rule_t types[MAX_RULES]; /* sorted by name */
  size_t ntypes;
  sev_rule_t sevs[MAX_RULES]; /* sorted by name */
  size_t nsevs;
  scheme_rule_t schemes[MAX_RULES]; /* sorted by name */
  size_t nschemes;
  int specific_repairable; /* specific_serious.repairable_before_end is true */
  int ok;
} rules;
static pthread_once_t rules_once = PTHREAD_ONCE_INIT;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void add_names(const json_t *arr) {
  size_t i;
  const json_t *v;
  json_array_foreach(arr, i, v) {
    if (json_is_string(v) && rules.npersonal < MAX_NAMES) {
      const char *name = json_string_value(v);
      size_t n = strlen(name);
      rules.personal[rules.npersonal++] = name;
      if (n < 64)
        rules.personal_shape[(uint8_t)name[0]] |= 1ull << n;
      else
        rules.personal_long = 1;
    }
  }
}

static unsigned rule_uint(const json_t *o, const char *k, unsigned def);
static uint8_t category_of(const json_t *trule);

static int cmp_name(const void *a, const void *b) { /* every table starts with its name */
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The tables above, from the parsed rule file. 0, or -1 when a section has too many entries. */
static int tables_load(void) {
  const char *k, *w;
  const json_t *v;
  json_object_foreach(json_object_get(rules.credit, "types"), k, v) {
    if (rules.ntypes == MAX_RULES)
      return -1;
    w = json_string_value(json_object_get(v, "window"));
    rules.types[rules.ntypes++] =
        (type_rule_t){.name = k,
                      .r = v,
                      .win = !w                       ? WIN_NONE
                             : !strcmp(w, "severity") ? WIN_SEVERITY
                             : !strcmp(w, "period")   ? WIN_PERIOD
                                                      : WIN_NONE,
                      .published = json_is_true(json_object_get(v, "published")),
                      .category = category_of(v),
                      .default_severity = json_string_value(json_object_get(v, "default_severity")),
                      .default_months = rule_uint(v, "default_months", 12),
                      .min_months = rule_uint(v, "min_months", 0)};
  }
  json_object_foreach(json_object_get(rules.credit, "severities"), k, v) {
    if (rules.nsevs == MAX_RULES)
      return -1;
    rules.sevs[rules.nsevs++] =
        (sev_rule_t){k, json_is_true(json_object_get(v, "published")),
                     rule_uint(v, "max_months", 12), rule_uint(v, "min_months", 3)};
  }
  json_object_foreach(json_object_get(rules.credit, "rating_schemes"), k, v) {
    const json_t *m = json_object_get(v, "valid_months");
    if (rules.nschemes == MAX_RULES)
      return -1;
    rules.schemes[rules.nschemes++] = (scheme_rule_t){
        k, json_is_integer(m) && json_integer_value(m) >= 0, rule_uint(v, "valid_months", 0)};
  }
  qsort(rules.types, rules.ntypes, sizeof *rules.types, cmp_name);
  qsort(rules.sevs, rules.nsevs, sizeof *rules.sevs, cmp_name);
  qsort(rules.schemes, rules.nschemes, sizeof *rules.schemes, cmp_name);
  rules.specific_repairable = json_is_true(
      json_object_get(json_object_get(rules.credit, "specific_serious"), "repairable_before_end"));
  return 0;
}

static void rules_load(void) {
  rules.credit = json_loadb((const char *)sj_credit_rules_json, sj_credit_rules_json_len,
                            JSON_REJECT_DUPLICATES, NULL);
  rules.disclosure = json_loadb((const char *)sj_disclosure_rules_json,
                                sj_disclosure_rules_json_len, JSON_REJECT_DUPLICATES, NULL);
  if (!rules.credit || !rules.disclosure)
    return;
  const char *sect[] = {"severities", "types", "actions", "rating_schemes", "specific_serious"};
  for (size_t i = 0; i < sizeof sect / sizeof *sect; i++)
    if (!json_is_object(json_object_get(rules.credit, sect[i])))
      return;
  const char *key;
  const json_t *v;
  json_object_foreach(json_object_get(rules.disclosure, "personal_members"), key, v) add_names(v);
  add_names(json_object_get(rules.disclosure, "minor_flags"));
  qsort(rules.personal, rules.npersonal, sizeof *rules.personal, cmp_str);
  rules.digest =
      (uint32_t)XXH3_64bits_withSeed(sj_disclosure_rules_json, sj_disclosure_rules_json_len,
                                     XXH3_64bits(sj_credit_rules_json, sj_credit_rules_json_len));
  rules.ok = rules.npersonal > 0 && tables_load() == 0;
}

static const type_rule_t *type_rule(const char *name) {
  return name ? bsearch(&name, rules.types, rules.ntypes, sizeof *rules.types, cmp_name) : NULL;
}

static const sev_rule_t *sev_rule(const char *name) {
  return name ? bsearch(&name, rules.sevs, rules.nsevs, sizeof *rules.sevs, cmp_name) : NULL;
}

static const scheme_rule_t *scheme_rule(const char *name) {
  return name ? bsearch(&name, rules.schemes, rules.nschemes, sizeof *rules.schemes, cmp_name)
              : NULL;
}

static const json_t *rule(const char *section) {
  pthread_once(&rules_once, rules_load);
  return rules.ok ? json_object_get(rules.credit, section) : NULL;
}

static const json_t *drule(const char *section) {
  pthread_once(&rules_once, rules_load);
  return rules.ok ? json_object_get(rules.disclosure, section) : NULL;
}

int sj_credit_rules_ok(void) {
  pthread_once(&rules_once, rules_load);
  return rules.ok ? 0 : SJ_EFORMAT;
}

const char *sj_credit_rules_text(size_t *len) {
  *len = sj_credit_rules_json_len;
  return (const char *)sj_credit_rules_json;
}

const char *sj_disclosure_rules_text(size_t *len) {
  *len = sj_disclosure_rules_json_len;
  return (const char *)sj_disclosure_rules_json;
}

static int in_list(const json_t *arr, const char *s) {
  size_t i;
  const json_t *v;
  json_array_foreach(arr, i, v) {
    if (json_is_string(v) && !strcmp(json_string_value(v), s))
      return 1;
  }
  return 0;
}

static unsigned rule_uint(const json_t *o, const char *k, unsigned def) {
  const json_t *v = json_object_get(o, k);
  return json_is_integer(v) && json_integer_value(v) >= 0 ? (unsigned)json_integer_value(v) : def;
}

/* The shape (first byte, length) rules out most strings without a search: records hold
 * thousands of strings per personal name. */
static int is_personal_name(const char *s) {
  size_t n = strnlen(s, 64);
  if (n < 64 ? !(rules.personal_shape[(uint8_t)s[0]] >> n & 1) : !rules.personal_long)
    return 0;
  return bsearch(&s, rules.personal, rules.npersonal, sizeof *rules.personal, cmp_str) != NULL;
}

/* ---- Dates (China Standard Time, UTC+8, no daylight saving) -------------------------------------
 */

#define DAY_MS 86400000ull
#define CST_MS (8ull * 3600 * 1000)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's civil algorithm). */
static int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int)(yoe + era * 400) + (*m <= 2);
}

static unsigned month_days(int y, unsigned m) {
  static const unsigned md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : md[m - 1];
}

static int digits(const char *s, size_t k, int *v) {
  int x = 0;
  for (size_t i = 0; i < k; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return 0;
}

/* Dates before 1971 are refused so that a CST midnight is never before the epoch. */
int sj_credit_date_parse(const char *s, uint64_t *ms) {
  int y, m, d;
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) || digits(s + 5, 2, &m) ||
      digits(s + 8, 2, &d))
    return SJ_EINVAL;
  if (y < 1971 || m < 1 || m > 12 || d < 1 || (unsigned)d > month_days(y, (unsigned)m))
    return SJ_EINVAL;
  *ms = (uint64_t)days_from_civil(y, (unsigned)m, (unsigned)d) * DAY_MS - CST_MS;
  return 0;
}

void sj_credit_date_format(uint64_t ms, char out[11]) {
  int y;
  unsigned m, d;
  civil_from_days((int64_t)((ms + CST_MS) / DAY_MS), &y, &m, &d);
  char tmp[32]; /* room for any int, so the compiler sees no truncation */
  snprintf(tmp, sizeof tmp, "%04d-%02u-%02u", y % 10000, m % 100, d % 100);
  memcpy(out, tmp, 10);
  out[10] = 0;
}

uint64_t sj_credit_add_months(uint64_t ms, unsigned months) {
  uint64_t local = ms + CST_MS, tod = local % DAY_MS;
  int y;
  unsigned m, d;
  civil_from_days((int64_t)(local / DAY_MS), &y, &m, &d);
  unsigned total = (m - 1) + months;
  y += (int)(total / 12);
  m = total % 12 + 1;
  if (d > month_days(y, m))
    d = month_days(y, m);
  return (uint64_t)days_from_civil(y, m, d) * DAY_MS + tod - CST_MS;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- Validation ---------------------------------------------------------------------------------
 * Field pointers are built from our own member names (no '~' or '/') and array indices. */

typedef struct {
  sj_rec_errors_t *errs;
  size_t index, line, n;
  uint64_t now_ms;
} cctx_t;

__attribute__((format(printf, 4, 5))) static void cerr(cctx_t *c, const char *field,
                                                       const char *code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (c->line)
    sj_rec_errors_add(c->errs, c->index, field, code, "line %zu: %s", c->line, msg);
  else
    sj_rec_errors_add(c->errs, c->index, field, code, "%s", msg);
  c->n++;
}

static void ptr_join(char *out, size_t cap, const char *base, const char *name) {
  snprintf(out, cap, "%s/%s", base, name);
}

/* An optional member of obj that must be an object; NULL if absent or reported. */
static json_t *opt_object(cctx_t *c, json_t *obj, const char *base, const char *name) {
  json_t *v = json_object_get(obj, name);
  char f[128];
  if (v && !json_is_object(v)) {
    ptr_join(f, sizeof f, base, name);
    cerr(c, f, "FIELD_TYPE", "\"%s\" must be an object", name);
    return NULL;
  }
  return v;
}

/* An optional (or, with required, mandatory) non-empty string member; NULL if absent/reported. */
static const char *get_str(cctx_t *c, json_t *obj, const char *base, const char *name,
                           int required) {
  json_t *v = json_object_get(obj, name);
  if (v && json_is_string(v) && json_string_value(v)[0])
    return json_string_value(v);
  char f[128]; /* the pointer is formatted only for an error: this runs for every record */
  ptr_join(f, sizeof f, base, name);
  if (!v) {
    if (required)
      cerr(c, f, "FIELD_MISSING", "required field \"%s\" is missing", name);
  } else if (!json_is_string(v)) {
    cerr(c, f, "FIELD_TYPE", "\"%s\" must be a string", name);
  } else {
    cerr(c, f, "FIELD_EMPTY", "\"%s\" must not be empty", name);
  }
  return NULL;
}

/* An optional date member "YYYY-MM-DD"; 0 in *ms when absent. Returns -1 when reported. */
static int get_date(cctx_t *c, json_t *obj, const char *base, const char *name, uint64_t *ms) {
  const char *s = get_str(c, obj, base, name, 0);
  char f[128];
  *ms = 0;
  if (!s)
    return json_object_get(obj, name) ? -1 : 0;
  if (sj_credit_date_parse(s, ms) == 0)
    return 0;
  ptr_join(f, sizeof f, base, name);
  cerr(c, f, "DATE_INVALID", "\"%s\" must be a real date written YYYY-MM-DD (1971 or later)", name);
  return -1;
}

/* A string member restricted to the names of a rule list (array) or object. */
static const char *get_enum(cctx_t *c, json_t *obj, const char *base, const char *name,
                            const json_t *allowed, const char *code, int required) {
  const char *s = get_str(c, obj, base, name, required);
  char f[128];
  if (!s)
    return NULL;
  int ok = json_is_array(allowed) ? in_list(allowed, s) : json_object_get(allowed, s) != NULL;
  if (ok)
    return s;
  ptr_join(f, sizeof f, base, name);
  cerr(c, f, code, "\"%s\" is not one of the values docs/CREDIT.md lists", name);
  return NULL;
}

static void check_severity(cctx_t *c, json_t *rec) {
  const char *sev = get_enum(c, rec, "", "severity", rule("severities"), "SEVERITY_INVALID", 0);
  const char *dom = get_enum(c, rec, "", "domain", rule("domains"), "DOMAIN_INVALID", 0);
  json_t *sp = json_object_get(rec, "specific_serious");
  if (!sp)
    return;
  if (!json_is_boolean(sp)) {
    cerr(c, "/specific_serious", "FIELD_TYPE", "\"specific_serious\" must be true or false");
    return;
  }
  if (!json_is_true(sp))
    return;
  if (!sev || strcmp(sev, "serious"))
    cerr(c, "/specific_serious", "SPECIFIC_SERIOUS_NOT_SERIOUS",
         "a specific serious case must have \"severity\":\"serious\"");
  const json_t *spec = json_object_get(rule("specific_serious"), "domains");
  if (!dom || !in_list(spec, dom))
    cerr(c, "/domain", "SPECIFIC_SERIOUS_DOMAIN",
         "a specific serious case must name its \"domain\" (food, drug, medical_device, "
         "special_equipment, work_safety, fire, environment)");
}

static void check_measures(cctx_t *c, json_t *dec) {
  json_t *m = json_object_get(dec, "measures");
  char f[64];
  if (!m)
    return;
  if (!json_is_array(m) || json_array_size(m) == 0) {
    cerr(c, "/decision/measures", json_is_array(m) ? "FIELD_EMPTY" : "FIELD_TYPE",
         "\"measures\" must be a non-empty array of measure names");
    return;
  }
  size_t i;
  json_t *v;
  json_array_foreach(m, i, v) {
    if (json_is_string(v) && in_list(rule("measures"), json_string_value(v)))
      continue;
    snprintf(f, sizeof f, "/decision/measures/%zu", i);
    cerr(c, f, "MEASURE_INVALID", "a measure must be one of the names docs/CREDIT.md lists");
  }
}

static void check_authority(cctx_t *c, json_t *dec) {
  json_t *a = opt_object(c, dec, "/decision", "authority");
  if (!a)
    return;
  get_str(c, a, "/decision/authority", "name", 1);
  const char *u = get_str(c, a, "/decision/authority", "uscc", 0);
  if (!u)
    return;
  sj_id_code_t code = sj_uscc_check(u, strlen(u));
  if (code != SJ_ID_OK)
    cerr(c, "/decision/authority/uscc", sj_id_code_name(code),
         "the deciding authority's unified social credit code is invalid (%s)",
         sj_id_code_name(code));
}

static void check_decision(cctx_t *c, json_t *rec) {
  json_t *dec = opt_object(c, rec, "", "decision");
  if (!dec)
    return;
  static const char *const text[] = {"number", "violation", "legal_basis", "content", "remedy"};
  for (size_t i = 0; i < sizeof text / sizeof *text; i++)
    get_str(c, dec, "/decision", text[i], 0);
  check_measures(c, dec);
  json_t *fine = json_object_get(dec, "fine_cny");
  if (fine &&
      (!json_is_number(fine) || !(json_number_value(fine) >= 0) || json_number_value(fine) > 1e15))
    cerr(c, "/decision/fine_cny", "AMOUNT_INVALID",
         "\"fine_cny\" must be a number of yuan, 0 to 10^15");
  check_authority(c, dec);
  uint64_t d;
  if (get_date(c, dec, "/decision", "date", &d) == 0 && d > c->now_ms + DAY_MS)
    cerr(c, "/decision/date", "DATE_IN_FUTURE", "the decision date lies in the future");
}

static void check_period(cctx_t *c, json_t *rec) {
  json_t *p = opt_object(c, rec, "", "period");
  uint64_t from, until;
  if (!p)
    return;
  int a = get_date(c, p, "/period", "from", &from), b = get_date(c, p, "/period", "until", &until);
  if (a == 0 && b == 0 && from && until && until <= from)
    cerr(c, "/period/until", "PERIOD_INVERTED", "\"until\" must be after \"from\"");
}

static void check_rating(cctx_t *c, json_t *rec, const char *type) {
  json_t *r = json_object_get(rec, "rating");
  if (!r)
    return;
  if (strcmp(type, "rating")) {
    cerr(c, "/rating", "FIELD_NOT_ALLOWED", "\"rating\" belongs to records of type rating");
    return;
  }
  if (!(r = opt_object(c, rec, "", "rating")))
    return;
  const char *scheme =
      get_enum(c, r, "/rating", "scheme", rule("rating_schemes"), "RATING_SCHEME_UNKNOWN", 1);
  const char *grade = get_str(c, r, "/rating", "grade", 1);
  if (!scheme)
    return;
  const json_t *sr = json_object_get(rule("rating_schemes"), scheme);
  if (grade && !in_list(json_object_get(sr, "grades"), grade))
    cerr(c, "/rating/grade", "RATING_GRADE_INVALID", "grade is not one of scheme %s's grades",
         scheme);
  const char *st = json_string_value(json_object_get(json_object_get(rec, "subject"), "type"));
  if (st && !in_list(json_object_get(sr, "subjects"), st))
    cerr(c, "/subject/type", "RATING_SUBJECT_MISMATCH", "scheme %s does not rate a %s", scheme, st);
}

static void check_list(cctx_t *c, json_t *rec, const char *type) {
  json_t *l = json_object_get(rec, "list");
  if (!l)
    return;
  if (strcmp(type, "blacklist") && strcmp(type, "abnormal_list")) {
    cerr(c, "/list", "FIELD_NOT_ALLOWED", "\"list\" belongs to blacklist and abnormal_list");
    return;
  }
  if ((l = opt_object(c, rec, "", "list")))
    get_str(c, l, "/list", "name", 1);
}

/* "ref":{"region":"320000","seq":5}: the entry a lifecycle action acts on. Returns 1 if present. */
static int check_ref(cctx_t *c, json_t *rec) {
  json_t *ref = opt_object(c, rec, "", "ref");
  if (!ref)
    return json_object_get(rec, "ref") != NULL;
  json_t *region = json_object_get(ref, "region"), *seq = json_object_get(ref, "seq");
  uint32_t r;
  if (!json_is_string(region) ||
      sj_region_parse(json_string_value(region), strlen(json_string_value(region)), &r))
    cerr(c, "/ref/region", "REF_REGION_INVALID",
         "\"ref.region\" must be a 6-digit region code string such as \"320000\"");
  double v = json_is_number(seq) ? json_number_value(seq) : -1;
  if (!(v >= 0 && v < 9007199254740992.0 && (double)(uint64_t)v == v)) /* no libm: not linked */
    cerr(c, "/ref/seq", "REF_SEQ_INVALID", "\"ref.seq\" must be an integer >= 0");
  return 1;
}

static void check_lifecycle(cctx_t *c, json_t *rec, const char *type) {
  const char *act = get_enum(c, rec, "", "action", rule("actions"), "ACTION_INVALID", 0);
  int has_ref = check_ref(c, rec);
  if (json_object_get(rec, "action") && !act)
    return;
  if (act && !has_ref)
    cerr(c, "/ref", "REF_MISSING", "action \"%s\" needs \"ref\":{\"region\",\"seq\"}", act);
  if (!act && has_ref && strcmp(type, "repair"))
    cerr(c, "/action", "ACTION_MISSING",
         "a record with \"ref\" must say what it does: \"action\" correction, revocation, "
         "repair or removal");
  const json_t *ar = json_object_get(rule("actions"), act ? act : "");
  if (act && !in_list(json_object_get(ar, "types"), type))
    cerr(c, "/action", "ACTION_TYPE_MISMATCH", "action \"%s\" does not apply to type %s", act,
         type);
}

size_t sj_credit_check(json_t *rec, size_t index, size_t line, sj_rec_errors_t *errs) {
  cctx_t c = {.errs = errs, .index = index, .line = line, .now_ms = now_ms()};
  if (!rule("types")) {
    cerr(&c, "", "RULES_UNAVAILABLE", "the node's credit rule set did not load");
    return c.n;
  }
  const char *type = json_string_value(json_object_get(rec, "type"));
  if (!type || !json_object_get(rule("types"), type))
    return 0; /* record.c reported the type */
  check_severity(&c, rec);
  check_decision(&c, rec);
  check_period(&c, rec);
  check_rating(&c, rec, type);
  check_list(&c, rec, type);
  check_lifecycle(&c, rec, type);
  return c.n;
}

/* ---- Folding ------------------------------------------------------------------------------------
 * Three passes over the entries in time order (header time, then region, then seq): corrections
 * build version chains, revocations cancel decisions or actions, then repairs and removals end
 * what they name if the rules allow it. Windows are computed from each live version's own
 * fields. Every step only reads the entries, so the result is the same in every region. */

typedef struct {
  const char *type;
  const json_t *trule;   /* the type's rule */
  const type_rule_t *tr; /* the same, tabled (NULL exactly when trule is) */
  uint8_t action;        /* sj_credit_action_t */
  int has_ref;
  uint32_t ref_region;
  uint64_t ref_seq;
  uint64_t date_ms;           /* decision.date, 0 if absent */
  uint64_t from_ms, until_ms; /* period, 0 if absent */
  const char *severity;       /* as given, or NULL */
  const char *scheme;         /* rating scheme, or NULL */
  int specific;
  int warning_only; /* every measure is one the rules never publish */
} facts_t;

typedef struct {
  const sj_credit_entry_t *e;
  facts_t *f;
  sj_credit_state_t *s;
  size_t *by_ref; /* indices sorted by (region, seq) */
  size_t *order;  /* indices sorted by (time, region, seq) */
  size_t n;
  uint64_t now;
} fold_t;

static uint8_t action_of(const char *s) {
  static const char *const names[] = {"", "correction", "revocation", "repair", "removal"};
  for (uint8_t i = 1; i < 5; i++)
    if (s && !strcmp(s, names[i]))
      return i;
  return SJ_CREDIT_ACT_NONE;
}

static uint64_t date_member(const json_t *o, const char *k) {
  uint64_t ms = 0;
  const char *s = json_string_value(json_object_get(o, k));
  return s && sj_credit_date_parse(s, &ms) == 0 ? ms : 0;
}

static int warning_only(const json_t *dec) {
  const json_t *m = json_object_get(dec, "measures"), *v;
  size_t i;
  if (!json_is_array(m) || json_array_size(m) == 0)
    return 0;
  json_array_foreach(m, i, v) {
    if (!json_is_string(v) || !in_list(rule("unpublished_measures"), json_string_value(v)))
      return 0;
  }
  return 1;
}

static void facts_read(const json_t *rec, facts_t *f) {
  memset(f, 0, sizeof *f);
  f->type = json_string_value(json_object_get(rec, "type"));
  f->tr = type_rule(f->type);
  f->trule = f->tr ? f->tr->r : NULL;
  f->action = action_of(json_string_value(json_object_get(rec, "action")));
  const json_t *ref = json_object_get(rec, "ref");
  const char *rr = json_string_value(json_object_get(ref, "region"));
  const json_t *rs = json_object_get(ref, "seq");
  if (rr && json_is_number(rs) && json_number_value(rs) >= 0 &&
      sj_region_parse(rr, strlen(rr), &f->ref_region) == 0) {
    f->has_ref = 1;
    f->ref_seq = (uint64_t)json_number_value(rs);
  }
  if (f->has_ref && !f->action && f->type && !strcmp(f->type, "repair"))
    f->action = SJ_CREDIT_ACT_REPAIR;
  const json_t *dec = json_object_get(rec, "decision"), *per = json_object_get(rec, "period");
  f->date_ms = date_member(dec, "date");
  f->from_ms = date_member(per, "from");
  f->until_ms = date_member(per, "until");
  f->severity = json_string_value(json_object_get(rec, "severity"));
  f->scheme = json_string_value(json_object_get(json_object_get(rec, "rating"), "scheme"));
  f->specific = json_is_true(json_object_get(rec, "specific_serious"));
  f->warning_only = warning_only(dec);
}

/* The same from facts stored at append (sj_credit_fact_t): pointers into *x. */
static void facts_from(const sj_credit_fact_t *x, facts_t *f) {
  memset(f, 0, sizeof *f);
  f->type = x->type;
  f->tr = type_rule(f->type);
  f->trule = f->tr ? f->tr->r : NULL;
  f->action = x->action;
  f->has_ref = x->has_ref;
  f->ref_region = x->ref_region;
  f->ref_seq = x->ref_seq;
  f->date_ms = x->date_ms;
  f->from_ms = x->from_ms;
  f->until_ms = x->until_ms;
  f->severity = x->severity;
  f->scheme = x->scheme;
  f->specific = x->specific;
  f->warning_only = x->warning_only;
}

/* Whether the node holds entry i's body (parsed, or summarised in its facts). */
static int held(const sj_credit_entry_t *e) {
  return e->rec || (e->fact && e->fact->has_rec);
}

static uint64_t minor_until(const sj_credit_entry_t *e);

/* qsort has no context argument: the fold being sorted is passed through a thread-local. */
static _Thread_local const fold_t *sorting;

static int cmp_ref(const void *a, const void *b) {
  const sj_credit_entry_t *x = &sorting->e[*(const size_t *)a],
                          *y = &sorting->e[*(const size_t *)b];
  if (x->region != y->region)
    return x->region < y->region ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_time(const void *a, const void *b) {
  const sj_credit_entry_t *x = &sorting->e[*(const size_t *)a],
                          *y = &sorting->e[*(const size_t *)b];
  if (x->time_ms != y->time_ms)
    return x->time_ms < y->time_ms ? -1 : 1;
  return cmp_ref(a, b);
}

static size_t find_ref(const fold_t *F, uint32_t region, uint64_t seq) {
  size_t lo = 0, hi = F->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    const sj_credit_entry_t *x = &F->e[F->by_ref[mid]];
    if (x->region == region && x->seq == seq)
      return F->by_ref[mid];
    if (x->region < region || (x->region == region && x->seq < seq))
      lo = mid + 1;
    else
      hi = mid;
  }
  return SJ_CREDIT_NONE;
}

/* The current version of the decision entry t belongs to. */
static size_t head_of(const fold_t *F, size_t t) {
  for (size_t hops = 0; F->s[t].superseded_by != SJ_CREDIT_NONE && hops < F->n; hops++)
    t = F->s[t].superseded_by;
  return t;
}

/* A pure action (repair, removal, revocation) is not a decision of its own. */
static int is_pure_action(const fold_t *F, size_t i) {
  uint8_t a = F->f[i].action;
  return a == SJ_CREDIT_ACT_REPAIR || a == SJ_CREDIT_ACT_REMOVAL || a == SJ_CREDIT_ACT_REVOCATION ||
         (F->f[i].type && !strcmp(F->f[i].type, "repair"));
}

/* Resolves action i's ref; rejects it (and returns NONE) when the target is not usable. */
static size_t resolve(fold_t *F, size_t i, int follow) {
  size_t t = find_ref(F, F->f[i].ref_region, F->f[i].ref_seq);
  if (t == SJ_CREDIT_NONE) {
    F->s[i].reject = "REF_NOT_FOUND";
    return t;
  }
  if (follow)
    t = head_of(F, t);
  if (t == i || !held(&F->e[t])) {
    F->s[i].reject = t == i ? "ACTION_TARGET_INVALID" : "REF_NOT_HELD";
    return SJ_CREDIT_NONE;
  }
  F->s[i].target = t;
  return t;
}

static void pass_corrections(fold_t *F) {
  for (size_t k = 0; k < F->n; k++) {
    size_t i = F->order[k];
    if (F->f[i].action != SJ_CREDIT_ACT_CORRECTION || !F->f[i].has_ref)
      continue;
    size_t t = resolve(F, i, 1);
    if (t == SJ_CREDIT_NONE)
      continue;
    if (is_pure_action(F, t)) {
      F->s[i].reject = "ACTION_TARGET_INVALID"; /* to change an action, revoke it */
      F->s[i].target = SJ_CREDIT_NONE;
      continue;
    }
    F->s[t].superseded_by = i;
  }
}

/* Revoking a decision revokes every version of it; revoking an action undoes the action. */
static void pass_revocations(fold_t *F) {
  for (size_t k = 0; k < F->n; k++) {
    size_t i = F->order[k];
    if (F->f[i].action != SJ_CREDIT_ACT_REVOCATION || !F->f[i].has_ref)
      continue;
    size_t t = resolve(F, i, 1);
    if (t == SJ_CREDIT_NONE)
      continue;
    if (F->f[t].action == SJ_CREDIT_ACT_REVOCATION) {
      F->s[i].reject = "ACTION_TARGET_INVALID";
      continue;
    }
    if (is_pure_action(F, t)) {
      F->s[t].reject = "ACTION_REVOKED";
      continue;
    }
    F->s[t].ended_by = i;
    F->s[t].ended_ms = F->f[i].date_ms ? F->f[i].date_ms : F->e[i].time_ms;
    F->s[t].status = SJ_CREDIT_REVOKED;
  }
}

/* Start, natural end, earliest repair and whether the rules publish it at all. */
static void window(fold_t *F, size_t i) {
  const facts_t *f = &F->f[i];
  const type_rule_t *tr = f->tr;
  sj_credit_state_t *s = &F->s[i];
  s->published = tr && tr->published && !f->warning_only;
  s->specific_serious = (uint8_t)f->specific;
  s->end_ms = s->repairable_ms = SJ_CREDIT_FOREVER;
  if (tr && tr->win == WIN_SEVERITY) {
    const sev_rule_t *sr = sev_rule(f->severity ? f->severity : tr->default_severity);
    s->start_ms = f->date_ms ? f->date_ms : f->from_ms ? f->from_ms : F->e[i].time_ms;
    s->published &= sr && sr->published;
    s->end_ms = sj_credit_add_months(s->start_ms, sr ? sr->max_months : 12);
    s->repairable_ms = sj_credit_add_months(s->start_ms, sr ? sr->min_months : 3);
  } else if (tr && tr->win == WIN_PERIOD) {
    unsigned months = tr->default_months;
    const scheme_rule_t *sc = scheme_rule(f->scheme);
    if (sc && sc->has_valid)
      months = sc->valid_months;
    s->start_ms = f->from_ms ? f->from_ms : f->date_ms ? f->date_ms : F->e[i].time_ms;
    s->end_ms = f->until_ms ? f->until_ms : sj_credit_add_months(s->start_ms, months);
    s->repairable_ms = sj_credit_add_months(s->start_ms, tr->min_months);
  } else {
    s->start_ms = f->date_ms ? f->date_ms : F->e[i].time_ms;
    s->published = 0;
  }
  if (f->specific && !rules.specific_repairable)
    s->repairable_ms = s->end_ms;
}

static int is_decision(const fold_t *F, size_t i) {
  return held(&F->e[i]) && F->f[i].trule && !is_pure_action(F, i);
}

/* Repairs and removals, in time order; the first accepted one ends the decision. */
static void pass_endings(fold_t *F) {
  for (size_t k = 0; k < F->n; k++) {
    size_t i = F->order[k];
    uint8_t a = F->f[i].action;
    if ((a != SJ_CREDIT_ACT_REPAIR && a != SJ_CREDIT_ACT_REMOVAL) || !F->f[i].has_ref ||
        F->s[i].reject)
      continue;
    size_t t = resolve(F, i, 1);
    if (t == SJ_CREDIT_NONE)
      continue;
    sj_credit_state_t *ts = &F->s[t];
    uint64_t d = F->f[i].date_ms ? F->f[i].date_ms : F->e[i].time_ms;
    if (!is_decision(F, t) || ts->status == SJ_CREDIT_REVOKED ||
        (a == SJ_CREDIT_ACT_REMOVAL && ts->category != SJ_CREDIT_CAT_LIST &&
         ts->category != SJ_CREDIT_CAT_BAN))
      F->s[i].reject = "ACTION_TARGET_INVALID";
    else if (a == SJ_CREDIT_ACT_REPAIR && d < ts->repairable_ms)
      F->s[i].reject = ts->specific_serious ? "NOT_REPAIRABLE" : "REPAIR_TOO_EARLY";
    else if (ts->ended_by == SJ_CREDIT_NONE) {
      ts->ended_by = i;
      ts->ended_ms = d;
    }
  }
}

/* Ratings of one scheme replace each other: each ends when the next one starts. */
static void pass_ratings(fold_t *F) {
  for (size_t k = 0; k < F->n; k++) {
    size_t i = F->order[k], best = SJ_CREDIT_NONE;
    sj_credit_state_t *s = &F->s[i];
    if (s->category != SJ_CREDIT_CAT_RATING || !is_decision(F, i) ||
        s->superseded_by != SJ_CREDIT_NONE || s->status == SJ_CREDIT_REVOKED)
      continue;
    const char *sch = F->f[i].scheme ? F->f[i].scheme : "";
    for (size_t m = 0; m < F->n; m++) { /* the earliest later-starting rating of the scheme */
      sj_credit_state_t *o = &F->s[m];
      const char *osch = F->f[m].scheme ? F->f[m].scheme : "";
      if (m == i || o->category != SJ_CREDIT_CAT_RATING || !is_decision(F, m) ||
          o->superseded_by != SJ_CREDIT_NONE || o->status == SJ_CREDIT_REVOKED || strcmp(sch, osch))
        continue;
      int later = o->start_ms > s->start_ms || (o->start_ms == s->start_ms && cmp_time(&i, &m) < 0);
      if (later && (best == SJ_CREDIT_NONE || o->start_ms < F->s[best].start_ms))
        best = m;
    }
    s->replaced_by = best;
  }
}

/* Whether now < t, for entry i's state; when so, t is an instant at which the state may change
 * with time alone, and lowers s->changes_ms. Every comparison of the fold with now goes through
 * here, so that changes_ms cannot miss one (sj_credit_state_t). */
static int before(fold_t *F, size_t i, uint64_t t) {
  sj_credit_state_t *s = &F->s[i];
  if (F->now >= t)
    return 0;
  if (t < s->changes_ms)
    s->changes_ms = t;
  return 1;
}

static void set_status(fold_t *F, size_t i) {
  sj_credit_state_t *s = &F->s[i];
  uint64_t end = s->end_ms;
  s->changes_ms = SJ_CREDIT_FOREVER;
  if (s->replaced_by != SJ_CREDIT_NONE && F->s[s->replaced_by].start_ms < end)
    end = F->s[s->replaced_by].start_ms;
  int ended = s->ended_by != SJ_CREDIT_NONE && s->ended_ms < end;
  if (ended)
    end = s->ended_ms;
  if (!held(&F->e[i]))
    s->status = SJ_CREDIT_UNKNOWN;
  else if (s->status == SJ_CREDIT_REVOKED)
    ;
  else if (s->superseded_by != SJ_CREDIT_NONE)
    s->status = SJ_CREDIT_SUPERSEDED;
  else if (!is_decision(F, i))
    s->status = SJ_CREDIT_ACTION;
  else if (before(F, i, s->start_ms))
    s->status = SJ_CREDIT_PENDING;
  else if (before(F, i, end))
    s->status = SJ_CREDIT_ACTIVE;
  else if (ended)
    s->status =
        F->f[s->ended_by].action == SJ_CREDIT_ACT_REMOVAL ? SJ_CREDIT_REMOVED : SJ_CREDIT_REPAIRED;
  else if (s->replaced_by != SJ_CREDIT_NONE && !before(F, i, F->s[s->replaced_by].start_ms))
    s->status = SJ_CREDIT_REPLACED;
  else
    s->status = SJ_CREDIT_EXPIRED;
  int visible = (s->status == SJ_CREDIT_ACTIVE || s->status == SJ_CREDIT_PENDING) && s->published &&
                F->e[i].disclosure == SJ_DISCLOSE_PUBLIC && !F->e[i].person &&
                !before(F, i, minor_until(&F->e[i]));
  s->public_until_ms = visible ? end : 0;
}

static uint8_t category_of(const json_t *trule) {
  static const char *const names[] = {"none", "penalty", "list", "ban", "rating", "other"};
  const char *c = json_string_value(json_object_get(trule, "category"));
  for (uint8_t i = 1; c && i < 6; i++)
    if (!strcmp(c, names[i]))
      return i;
  return SJ_CREDIT_CAT_NONE;
}

static void fold_init(fold_t *F) {
  for (size_t i = 0; i < F->n; i++) {
    sj_credit_state_t *s = &F->s[i];
    memset(s, 0, sizeof *s);
    s->target = s->ended_by = s->superseded_by = s->replaced_by = SJ_CREDIT_NONE;
    if (F->e[i].rec)
      facts_read(F->e[i].rec, &F->f[i]);
    else if (F->e[i].fact && F->e[i].fact->has_rec)
      facts_from(F->e[i].fact, &F->f[i]);
    else
      memset(&F->f[i], 0, sizeof F->f[i]);
    s->action = F->f[i].action;
    s->category = F->f[i].tr ? F->f[i].tr->category : SJ_CREDIT_CAT_NONE;
    F->by_ref[i] = F->order[i] = i;
  }
  sorting = F;
  qsort(F->by_ref, F->n, sizeof *F->by_ref, cmp_ref);
  qsort(F->order, F->n, sizeof *F->order, cmp_time);
}

int sj_credit_fold(const sj_credit_entry_t *e, size_t n, uint64_t now, sj_credit_state_t *out) {
  if (!rule("types"))
    return SJ_EFORMAT;
  fold_t F = {.e = e, .s = out, .n = n, .now = now};
  F.f = sj_zalloc(n ? n : 1, sizeof *F.f);
  F.by_ref = sj_zalloc(n ? n : 1, sizeof *F.by_ref);
  F.order = sj_zalloc(n ? n : 1, sizeof *F.order);
  int rv = F.f && F.by_ref && F.order ? 0 : -ENOMEM;
  if (rv == 0) {
    fold_init(&F);
    pass_corrections(&F);
    pass_revocations(&F);
    for (size_t i = 0; i < n; i++)
      if (held(&e[i]))
        window(&F, i);
    pass_endings(&F);
    pass_ratings(&F);
    for (size_t i = 0; i < n; i++)
      set_status(&F, i);
  }
  free(F.f);
  free(F.by_ref);
  free(F.order);
  return rv;
}

const char *sj_credit_status_name(sj_credit_status_t s) {
  static const char *const names[] = {"active",  "pending",    "expired",  "repaired", "removed",
                                      "revoked", "superseded", "replaced", "action",   "unknown"};
  return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}

const char *sj_credit_category_name(sj_credit_category_t c) {
  static const char *const names[] = {"none", "penalty", "list", "ban", "rating", "other"};
  return (unsigned)c < sizeof names / sizeof *names ? names[c] : "none";
}

const char *sj_credit_action_name(sj_credit_action_t a) {
  static const char *const names[] = {"none", "correction", "revocation", "repair", "removal"};
  return (unsigned)a < sizeof names / sizeof *names ? names[a] : "none";
}

/* ---- Public view --------------------------------------------------------------------------------
 */

int sj_credit_header_may_publish(const char *type, size_t type_len) {
  char t[SJ_ENTRY_MAX_TYPE_LEN + 1];
  if (type_len > SJ_ENTRY_MAX_TYPE_LEN || !rule("types"))
    return 0;
  memcpy(t, type, type_len);
  t[type_len] = 0;
  const json_t *tr = json_object_get(rule("types"), t);
  return json_is_true(json_object_get(tr, "published")) &&
         json_string_value(json_object_get(tr, "window"));
}

/* A mainland mobile number, optionally +86 / 86 first. */
static int is_mobile(const char *s) {
  size_t n = strlen(s);
  if (n == 14 && !strncmp(s, "+86", 3))
    s += 3, n -= 3;
  else if (n == 13 && !strncmp(s, "86", 2))
    s += 2, n -= 2;
  return n == 11 && s[0] == '1' && s[1] >= '3' && s[1] <= '9' && strspn(s, "0123456789") == 11;
}

/* When the holder of an identity number comes of age; 0 when s is not one or the holder was born
 * before 1970 (certainly of age). */
static uint64_t id_adult_ms(const char *s) {
  int y, m, d;
  if (sj_resident_id_check(s, strlen(s)) != SJ_ID_OK || digits(s + 6, 4, &y) ||
      digits(s + 10, 2, &m) || digits(s + 12, 2, &d))
    return 0;
  unsigned years = rule_uint(rules.disclosure, "minor_age_years", 18);
  int64_t birth = days_from_civil(y, (unsigned)m, (unsigned)d);
  if (birth < 1)
    return 0;
  return sj_credit_add_months((uint64_t)birth * DAY_MS - CST_MS, years * 12);
}

static int is_sensitive_string(const char *s) {
  size_t n = strlen(s);
  return (n == 18 && sj_resident_id_check(s, n) == SJ_ID_OK) || is_mobile(s);
}

/* An object is about a minor when it carries a minor flag set to true, or an identity number of
 * someone under age as one of its own string members: until the returned instant (0: never;
 * SJ_CREDIT_FOREVER: a flag). */
static uint64_t object_minor_until(const json_t *o) {
  const char *k;
  const json_t *v;
  uint64_t until = 0;
  json_object_foreach((json_t *)o, k, v) {
    if (json_is_true(v) && in_list(drule("minor_flags"), k))
      return SJ_CREDIT_FOREVER;
    if (json_is_string(v)) {
      uint64_t a = id_adult_ms(json_string_value(v));
      until = a > until ? a : until;
    }
  }
  return until;
}

static int object_about_minor(const json_t *o, uint64_t now) {
  return now < object_minor_until(o);
}

/* The record (or its subject) is about a minor while now < this. */
static uint64_t record_minor_until(const json_t *rec) {
  if (!json_is_object(rec) || !drule("minor_flags"))
    return 0;
  uint64_t a = object_minor_until(rec), b = object_minor_until(json_object_get(rec, "subject"));
  return a > b ? a : b;
}

int sj_credit_about_minor(const json_t *rec, uint64_t now) {
  return now < record_minor_until(rec);
}

/* The entry is about a minor while now < this (0: never). */
static uint64_t minor_until(const sj_credit_entry_t *e) {
  if (e->rec)
    return record_minor_until(e->rec);
  return e->fact ? e->fact->minor_until_ms : 0;
}

static int mask_value(json_t *v, uint64_t now);

/* Whether a member or element must go: returns 1 to remove it. Recurses into what stays. */
static int must_remove(const char *key, json_t *v, uint64_t now, int *count) {
  if (key && is_personal_name(key))
    return 1;
  if (json_is_string(v))
    return is_sensitive_string(json_string_value(v));
  if (json_is_object(v) && object_about_minor(v, now))
    return 1;
  *count += mask_value(v, now);
  return 0;
}

static int mask_value(json_t *v, uint64_t now) {
  int count = 0;
  if (json_is_object(v)) {
    const char *k;
    json_t *x;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, x) {
      if (must_remove(k, x, now, &count)) {
        json_object_del(v, k);
        count++;
      }
    }
  } else if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v);) {
      if (must_remove(NULL, json_array_get(v, i), now, &count)) {
        json_array_remove(v, i);
        count++;
      } else {
        i++;
      }
    }
  }
  return count;
}

int sj_credit_mask_public(json_t *rec, uint64_t now) {
  if (!drule("minor_flags") || sj_credit_about_minor(rec, now))
    return -1;
  return mask_value(rec, now);
}

/* One pass over the bytes: every string token (member name or value) is compared with the
 * personal names and the value patterns — exactly what masking removes, since masking only removes
 * members by name and string values by pattern (numbers are never removed). Any backslash
 * escape sends the body to the full check, since the token bytes are then not the string. */
int sj_credit_body_may_mask(const uint8_t *p, size_t n) {
  if (sj_credit_rules_ok())
    return 1;
  char tok[64];
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\\')
      return 1;
    if (p[i] != '"')
      continue;
    size_t j = i + 1;
    while (j < n && p[j] != '"' && p[j] != '\\')
      j++;
    if (j < n && p[j] == '\\')
      return 1;
    size_t len = j - i - 1;
    if (len < sizeof tok) { /* longer strings are neither a personal name nor a pattern */
      memcpy(tok, p + i + 1, len);
      tok[len] = 0;
      if (is_personal_name(tok) || is_sensitive_string(tok))
        return 1;
    }
    i = j;
  }
  return 0;
}

/* ---- Facts kept at append (credit.h) ------------------------------------------------------------
 * Encoding: version u8 (1) | rules digest u32 | flags u8 | disclosure u8 | action u8 |
 * ref region u32 | ref seq u64 | date u64 | from u64 | until u64 | minor_until u64 |
 * type, severity, scheme: each length u8 (0xFF: absent) and bytes. Big-endian. */

#define FACT_VERSION 1u
#define FACT_FIXED 52u
enum { FF_REC = 1, FF_REF = 2, FF_SPECIFIC = 4, FF_WARNING = 8, FF_PLAIN = 16, FF_PERSON = 32 };

static int fact_str(const char *v, char *dst, const char **out) {
  *out = NULL;
  if (!v)
    return 0;
  size_t n = strlen(v);
  if (n > SJ_CREDIT_FACT_STR)
    return SJ_EINVAL;
  memcpy(dst, v, n + 1);
  *out = dst;
  return 0;
}

int sj_credit_fact_read(const json_t *rec, sj_credit_fact_t *out) {
  sj_credit_fact_t f;
  facts_t x;
  memset(&f, 0, sizeof f);
  if (!rec) {
    *out = f;
    return 0;
  }
  if (!rule("types"))
    return SJ_EFORMAT;
  facts_read(rec, &x);
  f.has_rec = 1;
  f.action = x.action;
  f.has_ref = (uint8_t)x.has_ref;
  f.specific = (uint8_t)x.specific;
  f.warning_only = (uint8_t)x.warning_only;
  f.ref_region = x.ref_region;
  f.ref_seq = x.ref_seq;
  f.date_ms = x.date_ms;
  f.from_ms = x.from_ms;
  f.until_ms = x.until_ms;
  f.minor_until_ms = record_minor_until(rec);
  if (fact_str(x.type, f.type_s, &f.type) || fact_str(x.severity, f.severity_s, &f.severity) ||
      fact_str(x.scheme, f.scheme_s, &f.scheme))
    return SJ_EINVAL;
  *out = f;
  out->type = f.type ? out->type_s : NULL; /* point into *out, not the local copy */
  out->severity = f.severity ? out->severity_s : NULL;
  out->scheme = f.scheme ? out->scheme_s : NULL;
  return 0;
}

static size_t put_str(uint8_t *p, const char *s) {
  if (!s) {
    p[0] = 0xFF;
    return 1;
  }
  size_t n = strlen(s);
  p[0] = (uint8_t)n;
  memcpy(p + 1, s, n);
  return 1 + n;
}

size_t sj_credit_fact_encode(const sj_credit_fact_t *f, uint8_t *out) {
  pthread_once(&rules_once, rules_load);
  out[0] = FACT_VERSION;
  sj_put_be32(out + 1, rules.digest);
  out[5] = (uint8_t)((f->has_rec ? FF_REC : 0) | (f->has_ref ? FF_REF : 0) |
                     (f->specific ? FF_SPECIFIC : 0) | (f->warning_only ? FF_WARNING : 0) |
                     (f->plain ? FF_PLAIN : 0) | (f->person ? FF_PERSON : 0));
  out[6] = f->disclosure;
  out[7] = f->action;
  sj_put_be32(out + 8, f->ref_region);
  sj_put_be64(out + 12, f->ref_seq);
  sj_put_be64(out + 20, f->date_ms);
  sj_put_be64(out + 28, f->from_ms);
  sj_put_be64(out + 36, f->until_ms);
  sj_put_be64(out + 44, f->minor_until_ms);
  size_t n = FACT_FIXED;
  n += put_str(out + n, f->type);
  n += put_str(out + n, f->severity);
  n += put_str(out + n, f->scheme);
  return n;
}

static int fact_get_str(const uint8_t *p, size_t n, size_t *off, char *dst, const char **out) {
  if (*off >= n)
    return SJ_EFORMAT;
  size_t len = p[(*off)++];
  *out = NULL;
  if (len == 0xFF)
    return 0;
  if (len > SJ_CREDIT_FACT_STR || len > n - *off || memchr(p + *off, 0, len))
    return SJ_EFORMAT;
  memcpy(dst, p + *off, len);
  dst[len] = 0;
  *off += len;
  *out = dst;
  return 0;
}

int sj_credit_fact_decode(const uint8_t *p, size_t n, sj_credit_fact_t *out) {
  sj_credit_fact_t f;
  pthread_once(&rules_once, rules_load);
  if (n < FACT_FIXED || p[0] != FACT_VERSION)
    return n >= 1 && p[0] != FACT_VERSION ? SJ_EVERSION : SJ_EFORMAT;
  if (!rules.ok || sj_get_be32(p + 1) != rules.digest)
    return SJ_EVERSION;
  memset(&f, 0, sizeof f);
  f.has_rec = (p[5] & FF_REC) != 0;
  f.has_ref = (p[5] & FF_REF) != 0;
  f.specific = (p[5] & FF_SPECIFIC) != 0;
  f.warning_only = (p[5] & FF_WARNING) != 0;
  f.plain = (p[5] & FF_PLAIN) != 0;
  f.person = (p[5] & FF_PERSON) != 0;
  f.disclosure = p[6];
  f.action = p[7];
  f.ref_region = sj_get_be32(p + 8);
  f.ref_seq = sj_get_be64(p + 12);
  f.date_ms = sj_get_be64(p + 20);
  f.from_ms = sj_get_be64(p + 28);
  f.until_ms = sj_get_be64(p + 36);
  f.minor_until_ms = sj_get_be64(p + 44);
  if (f.disclosure > SJ_DISCLOSE_SUBJECT || f.action > SJ_CREDIT_ACT_REMOVAL || (p[5] & ~63u))
    return SJ_EFORMAT;
  size_t off = FACT_FIXED;
  int rv = fact_get_str(p, n, &off, f.type_s, &f.type);
  rv = rv ? rv : fact_get_str(p, n, &off, f.severity_s, &f.severity);
  rv = rv ? rv : fact_get_str(p, n, &off, f.scheme_s, &f.scheme);
  if (rv == 0 && off != n)
    rv = SJ_EFORMAT;
  if (rv)
    return rv;
  *out = f; /* the pointers are fixed to point into *out below */
  out->type = f.type ? out->type_s : NULL;
  out->severity = f.severity ? out->severity_s : NULL;
  out->scheme = f.scheme ? out->scheme_s : NULL;
  return 0;
}

size_t sj_credit_annotate(void *ctx, const sj_entry_header_t *h, const uint8_t *body, size_t bn,
                          uint8_t *out, size_t cap) {
  json_t *rec = NULL;
  (void)ctx;
  if (cap < SJ_CREDIT_FACT_MAX || sj_credit_rules_ok())
    return 0;
  if (body && h->kind == SJ_KIND_CREDIT) /* as lookups parse it (node/api_credit.c) */
    rec = sj_json_loadb((const char *)body, bn, JSON_DECODE_INT_AS_REAL, NULL);
  size_t n = sj_credit_annotate_parsed(h, rec, body, bn, out, cap);
  json_decref(rec);
  return n;
}

size_t sj_credit_annotate_parsed(const sj_entry_header_t *h, const json_t *rec, const uint8_t *body,
                                 size_t bn, uint8_t *out, size_t cap) {
  sj_credit_fact_t f;
  if (cap < SJ_CREDIT_FACT_MAX || sj_credit_rules_ok())
    return 0;
  if (sj_credit_fact_read(rec, &f))
    return 0;
  f.disclosure = h->disclosure;
  for (uint16_t i = 0; i < h->nkeys; i++)
    f.person |= h->keys[i].type == SJ_KEY_PERSON;
  /* Whether masking removes nothing does not depend on the time: whatever makes a record about a
   * minor (a flag member, an identity number) is itself removed by name or by pattern. */
  f.plain = rec && !sj_credit_body_may_mask(body, bn);
  if (rec && !f.plain) {
    json_t *copy = json_deep_copy(rec);
    f.plain = copy && sj_credit_mask_public(copy, now_ms()) == 0;
    json_decref(copy);
  }
  return sj_credit_fact_encode(&f, out);
}
