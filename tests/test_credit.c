/* tests/test_credit.c — the credit domain: the rule files, dates, validation codes of the credit
 * fields, the fold of a subject's entries (expiry, repair, supersede, revocation, removal,
 * ratings, corrections from other regions) as a pure function, the public view, the audit trail
 * store, and — through a real node process on loopback — the report, disclosure on every
 * endpoint and the audit endpoint. */
#include "node/audit.h"
#include "node/credit.h"
#include "node/record.h"
#include "storage/storage.h"
#include "tests/support.h"

#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define USCC1 "91310115MA1K00007Q"
#define USCC2 "91320500MA1X00009R"
#define AUTH_USCC "11310000MB2F13170N"
#define PERSON_ID "310115198001010016"
#define MINOR_ID "310115201506010032"
#define OTHER_ID "11010519491231002X"
#define MOBILE "13812345678"

#define ENT(id) "\"subject\":{\"type\":\"enterprise\",\"id\":\"" id "\",\"name\":\"Acme\"}"
/* A public credit record about USCC1 of a type, with more members (starting with a comma). */
#define REC(type, more)                                                                            \
  "{\"kind\":\"credit\",\"type\":\"" type "\"," ENT(USCC1) ",\"disclosure\":\"public\"" more "}"

static const uint8_t hmac_key[SJ_REC_HMAC_KEY_LEN] = {0};
static char g_dir[512];

static void tmpdir_setup(void) {
  ck_assert_int_eq(sj_crypto_init(), 0);
  sj_log_set_level(SJ_LOG_LEVEL_ERR);
  sj_test_tmpdir(g_dir, sizeof g_dir, "credit");
}

static void tmpdir_teardown(void) {
  sj_test_rmtree(g_dir);
}

static uint64_t D(const char *date) {
  uint64_t ms = 0;
  ck_assert_msg(sj_credit_date_parse(date, &ms) == 0, "bad test date %s", date);
  return ms;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "YYYY-MM-DD" of today plus days (may be negative), China Standard Time. */
static const char *day(int days) {
  static char buf[16][11];
  static int k;
  char *b = buf[k++ % 16];
  sj_credit_date_format(wall_ms() + (uint64_t)((int64_t)days * 86400000), b);
  return b;
}

/* ---- the rule files
 * -------------------------------------------------------------------------------- */

static void same_as_file(const char *name, const char *text, size_t len) {
  char path[600];
  snprintf(path, sizeof path, "%s/../../node/%s", getenv("SJ_TESTDATA"), name);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  char *buf = malloc(len + 2);
  size_t got = fread(buf, 1, len + 1, f);
  fclose(f);
  ck_assert_msg(got == len && memcmp(buf, text, len) == 0,
                "%s differs from the embedded copy: regenerate it (see its comment)", name);
  free(buf);
}

START_TEST(embedded_rules_parse_and_match_their_files) {
  size_t n;
  ck_assert_int_eq(sj_credit_rules_ok(), 0);
  const char *t = sj_credit_rules_text(&n);
  same_as_file("credit_rules.json", t, n);
  t = sj_disclosure_rules_text(&n);
  same_as_file("disclosure_rules.json", t, n);
}
END_TEST

START_TEST(dates_are_calendar_days_in_china_standard_time) {
  char out[11];
  ck_assert_uint_eq(D("2024-03-01"), 1709251200000ull - 8 * 3600000ull);
  sj_credit_date_format(D("2024-02-29"), out);
  ck_assert_str_eq(out, "2024-02-29");
  sj_credit_date_format(sj_credit_add_months(D("2024-01-31"), 1), out);
  ck_assert_str_eq(out, "2024-02-29");
  sj_credit_date_format(sj_credit_add_months(D("2023-01-31"), 1), out);
  ck_assert_str_eq(out, "2023-02-28");
  sj_credit_date_format(sj_credit_add_months(D("2023-11-15"), 36), out);
  ck_assert_str_eq(out, "2026-11-15");
  uint64_t ms;
  ck_assert_int_ne(sj_credit_date_parse("2023-02-29", &ms), 0);
  ck_assert_int_ne(sj_credit_date_parse("2023-13-01", &ms), 0);
  ck_assert_int_ne(sj_credit_date_parse("2023-1-01", &ms), 0);
  ck_assert_int_ne(sj_credit_date_parse("1969-12-31", &ms), 0);
  ck_assert_int_ne(sj_credit_date_parse("2023-01-01T00", &ms), 0);
}
END_TEST

/* ---- validation
 * ------------------------------------------------------------------------------------- */

static void parse(const char *body, int *rv, sj_rec_errors_t *e) {
  sj_record_t *recs = NULL;
  size_t n = 0;
  sj_rec_errors_init(e, 0);
  *rv = sj_record_parse_request((const uint8_t *)body, strlen(body), "application/json", hmac_key,
                                0, &recs, &n, e);
  sj_records_free(recs, n);
}

static void expect_valid(const char *body) {
  sj_rec_errors_t e;
  int rv;
  parse(body, &rv, &e);
  ck_assert_msg(rv == 0, "refused (%s %s) %s", e.n ? e.v[0].field : "", e.n ? e.v[0].code : "",
                body);
  sj_rec_errors_deinit(&e);
}

static void expect_error(const char *body, const char *field, const char *code) {
  sj_rec_errors_t e;
  int rv, found = 0;
  parse(body, &rv, &e);
  ck_assert_int_eq(rv, SJ_EINVAL);
  for (size_t i = 0; i < e.n; i++)
    found |= !strcmp(e.v[i].field, field) && !strcmp(e.v[i].code, code);
  ck_assert_msg(found, "expected %s at %s for %s; first: %s %s", code, field, body,
                e.n ? e.v[0].field : "", e.n ? e.v[0].code : "");
  sj_rec_errors_deinit(&e);
}

START_TEST(minimal_and_full_records_are_valid) {
  expect_valid(REC("penalty", ""));
  expect_valid(REC("rating", ""));
  expect_valid(REC("repair", "")); /* the minimal record stays valid, even without a ref */
  expect_valid(REC("penalty",
                   ",\"severity\":\"serious\",\"specific_serious\":true,"
                   "\"domain\":\"food\",\"decision\":{\"number\":\"沪市监处〔2024〕1号\","
                   "\"violation\":\"v\",\"legal_basis\":\"b\",\"content\":\"c\","
                   "\"measures\":[\"fine\",\"confiscation\"],\"fine_cny\":50000.5,"
                   "\"authority\":{\"name\":\"上海市市场监督管理局\",\"uscc\":\"" AUTH_USCC
                   "\"},\"date\":\"2024-03-01\",\"remedy\":\"r\"},"
                   "\"period\":{\"from\":\"2024-03-01\",\"until\":\"2025-03-01\"}"));
  expect_valid(
      REC("rating", ",\"rating\":{\"scheme\":\"environmental_credit\",\"grade\":\"black\"}"));
  expect_valid("{\"kind\":\"credit\",\"type\":\"rating\",\"subject\":{\"type\":\"person\",\"id\":"
               "\"" PERSON_ID
               "\",\"name\":\"张三\"},\"disclosure\":\"subject\",\"rating\":{\"scheme\":"
               "\"road_transport_driver\",\"grade\":\"AAA\"}}");
  expect_valid(REC("blacklist", ",\"list\":{\"name\":\"严重违法失信名单\"},\"action\":\"removal\","
                                "\"ref\":{\"region\":\"320000\",\"seq\":12}"));
  expect_valid(REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":0}"));
  expect_valid(
      REC("penalty", ",\"action\":\"correction\",\"ref\":{\"region\":\"330000\",\"seq\":3}"));
}
END_TEST

START_TEST(every_credit_code_names_its_field) {
  expect_error(REC("penalty", ",\"severity\":\"grave\""), "/severity", "SEVERITY_INVALID");
  expect_error(REC("penalty", ",\"domain\":\"space\""), "/domain", "DOMAIN_INVALID");
  expect_error(
      REC("penalty", ",\"severity\":\"general\",\"specific_serious\":true,\"domain\":\"food\""),
      "/specific_serious", "SPECIFIC_SERIOUS_NOT_SERIOUS");
  expect_error(
      REC("penalty", ",\"severity\":\"serious\",\"specific_serious\":true,\"domain\":\"tax\""),
      "/domain", "SPECIFIC_SERIOUS_DOMAIN");
  expect_error(REC("penalty", ",\"specific_serious\":\"yes\""), "/specific_serious", "FIELD_TYPE");
  expect_error(REC("penalty", ",\"decision\":[]"), "/decision", "FIELD_TYPE");
  expect_error(REC("penalty", ",\"decision\":{\"number\":\"\"}"), "/decision/number",
               "FIELD_EMPTY");
  expect_error(REC("penalty", ",\"decision\":{\"legal_basis\":7}"), "/decision/legal_basis",
               "FIELD_TYPE");
  expect_error(REC("penalty", ",\"decision\":{\"measures\":[\"fine\",\"flogging\"]}"),
               "/decision/measures/1", "MEASURE_INVALID");
  expect_error(REC("penalty", ",\"decision\":{\"measures\":[]}"), "/decision/measures",
               "FIELD_EMPTY");
  expect_error(REC("penalty", ",\"decision\":{\"fine_cny\":-1}"), "/decision/fine_cny",
               "AMOUNT_INVALID");
  expect_error(
      REC("penalty",
          ",\"decision\":{\"authority\":{\"name\":\"x\",\"uscc\":\"11310000MB2F13170F\"}}"),
      "/decision/authority/uscc", "USCC_CHECKSUM");
  expect_error(REC("penalty", ",\"decision\":{\"authority\":{\"uscc\":\"" AUTH_USCC "\"}}"),
               "/decision/authority/name", "FIELD_MISSING");
  expect_error(REC("penalty", ",\"decision\":{\"date\":\"2024-02-30\"}"), "/decision/date",
               "DATE_INVALID");
  expect_error(REC("penalty", ",\"decision\":{\"date\":\"2999-01-01\"}"), "/decision/date",
               "DATE_IN_FUTURE");
  expect_error(REC("penalty", ",\"period\":{\"from\":\"2024-03-01\",\"until\":\"2024-03-01\"}"),
               "/period/until", "PERIOD_INVERTED");
  expect_error(REC("penalty", ",\"period\":{\"from\":\"03/01/2024\"}"), "/period/from",
               "DATE_INVALID");
  expect_error(REC("penalty", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"A\"}"), "/rating",
               "FIELD_NOT_ALLOWED");
  expect_error(REC("rating", ",\"list\":{\"name\":\"x\"}"), "/list", "FIELD_NOT_ALLOWED");
  expect_error(REC("blacklist", ",\"list\":{}"), "/list/name", "FIELD_MISSING");
  expect_error(REC("rating", ",\"rating\":{\"scheme\":\"happiness\",\"grade\":\"A\"}"),
               "/rating/scheme", "RATING_SCHEME_UNKNOWN");
  expect_error(
      REC("rating", ",\"rating\":{\"scheme\":\"road_transport_driver\",\"grade\":\"AAAA\"}"),
      "/rating/grade", "RATING_GRADE_INVALID");
  expect_error(REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\"}"), "/rating/grade",
               "FIELD_MISSING");
  expect_error(REC("rating", ",\"rating\":{\"scheme\":\"road_transport_driver\",\"grade\":\"AA\"}"),
               "/subject/type", "RATING_SUBJECT_MISMATCH");
  expect_error(REC("penalty", ",\"action\":\"delete\",\"ref\":{\"region\":\"310000\",\"seq\":1}"),
               "/action", "ACTION_INVALID");
  expect_error(REC("penalty", ",\"action\":\"correction\""), "/ref", "REF_MISSING");
  expect_error(REC("penalty", ",\"ref\":{\"region\":\"310000\",\"seq\":1}"), "/action",
               "ACTION_MISSING");
  expect_error(REC("penalty", ",\"action\":\"removal\",\"ref\":{\"region\":\"310000\",\"seq\":1}"),
               "/action", "ACTION_TYPE_MISMATCH");
  expect_error(REC("penalty", ",\"action\":\"repair\",\"ref\":{\"region\":\"310000\",\"seq\":1}"),
               "/action", "ACTION_TYPE_MISMATCH");
  expect_error(REC("repair", ",\"ref\":{\"region\":310000,\"seq\":1}"), "/ref/region",
               "REF_REGION_INVALID");
  expect_error(REC("repair", ",\"ref\":{\"region\":\"31000\",\"seq\":1}"), "/ref/region",
               "REF_REGION_INVALID");
  expect_error(REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":-1}"), "/ref/seq",
               "REF_SEQ_INVALID");
  expect_error(REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":1.5}"), "/ref/seq",
               "REF_SEQ_INVALID");
  expect_error(REC("repair", ",\"ref\":{\"region\":\"310000\"}"), "/ref/seq", "REF_SEQ_INVALID");
  expect_error(REC("repair", ",\"ref\":[1]"), "/ref", "FIELD_TYPE");
}
END_TEST

START_TEST(ndjson_errors_say_the_line) {
  const char *body = REC("penalty", "") "\n\n" REC("penalty", ",\"severity\":\"x\"") "\n";
  sj_record_t *recs = NULL;
  size_t n = 0;
  sj_rec_errors_t e;
  sj_rec_errors_init(&e, 0);
  int rv = sj_record_parse_request((const uint8_t *)body, strlen(body), "application/x-ndjson",
                                   hmac_key, 0, &recs, &n, &e);
  ck_assert_int_eq(rv, SJ_EINVAL);
  ck_assert_uint_eq(e.n, 1);
  ck_assert_uint_eq(e.v[0].index, 1);
  ck_assert_str_eq(e.v[0].code, "SEVERITY_INVALID");
  ck_assert_msg(!strncmp(e.v[0].message, "line 3: ", 8), "%s", e.v[0].message);
  sj_rec_errors_deinit(&e);
}
END_TEST

/* ---- folding (pure)
 * ---------------------------------------------------------------------------------- */

#define FX_MAX 32
typedef struct {
  sj_credit_entry_t e[FX_MAX];
  json_t *j[FX_MAX];
  sj_credit_state_t s[FX_MAX];
  size_t n;
} fx_t;

/* Adds an entry appended on `when` (a date) in region/seq; NULL json = body not held. */
static size_t add(fx_t *f, uint32_t region, uint64_t seq, const char *when, const char *json) {
  size_t i = f->n++;
  ck_assert_uint_lt(i, FX_MAX);
  json_error_t err;
  f->j[i] = json ? json_loads(json, JSON_DECODE_INT_AS_REAL, &err) : NULL;
  ck_assert_msg(!json || f->j[i], "bad test JSON: %s", err.text);
  f->e[i] = (sj_credit_entry_t){.region = region,
                                .seq = seq,
                                .time_ms = D(when) + 3600000,
                                .disclosure = SJ_DISCLOSE_PUBLIC,
                                .rec = f->j[i]};
  f->e[i].leaf_hash[0] = (uint8_t)i;
  if (json) {
    const char *d = json_string_value(json_object_get(f->j[i], "disclosure"));
    f->e[i].disclosure = d && !strcmp(d, "authorities") ? SJ_DISCLOSE_AUTHORITIES
                         : d && !strcmp(d, "subject")   ? SJ_DISCLOSE_SUBJECT
                                                        : SJ_DISCLOSE_PUBLIC;
  }
  return i;
}

/* The fold from facts kept at append (encoded and decoded, as lookups read them) must give exactly
 * the fold from the parsed bodies: every fold of these tests is done both ways. */
static void ck_same_state(const sj_credit_state_t *a, const sj_credit_state_t *b, size_t i) {
  ck_assert_msg(a->status == b->status && a->category == b->category && a->action == b->action &&
                    a->published == b->published && a->specific_serious == b->specific_serious &&
                    a->reject == b->reject && a->target == b->target &&
                    a->ended_by == b->ended_by && a->superseded_by == b->superseded_by &&
                    a->replaced_by == b->replaced_by && a->start_ms == b->start_ms &&
                    a->end_ms == b->end_ms && a->repairable_ms == b->repairable_ms &&
                    a->ended_ms == b->ended_ms && a->public_until_ms == b->public_until_ms &&
                    a->changes_ms == b->changes_ms,
                "entry %zu: the fold from stored facts differs from the fold from the body (%s/%s, "
                "public until %llu/%llu)",
                i, sj_credit_status_name((sj_credit_status_t)a->status),
                sj_credit_status_name((sj_credit_status_t)b->status),
                (unsigned long long)a->public_until_ms, (unsigned long long)b->public_until_ms);
}

static void fold_via_facts(const sj_credit_entry_t *e, size_t n, uint64_t now,
                           const sj_credit_state_t *want) {
  sj_credit_entry_t *e2 = calloc(n ? n : 1, sizeof *e2);
  sj_credit_fact_t *facts = calloc(n ? n : 1, sizeof *facts);
  sj_credit_state_t *s2 = calloc(n ? n : 1, sizeof *s2);
  uint8_t buf[SJ_CREDIT_FACT_MAX];
  for (size_t i = 0; i < n; i++) {
    sj_credit_fact_t f;
    ck_assert_int_eq(sj_credit_fact_read(e[i].rec, &f), 0);
    f.disclosure = e[i].disclosure;
    f.person = e[i].person;
    size_t len = sj_credit_fact_encode(&f, buf);
    ck_assert_uint_le(len, SJ_CREDIT_FACT_MAX);
    ck_assert_int_eq(sj_credit_fact_decode(buf, len, &facts[i]), 0);
    ck_assert_int_eq(sj_credit_fact_decode(buf, len - 1, &f), SJ_EFORMAT);
    e2[i] = e[i];
    e2[i].rec = NULL;
    e2[i].fact = &facts[i];
  }
  ck_assert_int_eq(sj_credit_fold(e2, n, now, s2), 0);
  for (size_t i = 0; i < n; i++)
    ck_same_state(&s2[i], &want[i], i);
  free(e2);
  free(facts);
  free(s2);
}

/* changes_ms is exact: each entry's state is the same at every instant before it (checked at the
 * last millisecond before it, and 100 years on when it is never), and the fold at changes_ms
 * itself gives changes_ms > it. */
static void ck_changes(const fx_t *f, uint64_t now) {
  sj_credit_state_t later[FX_MAX];
  for (size_t i = 0; i < f->n; i++) {
    uint64_t c = f->s[i].changes_ms;
    ck_assert_uint_gt(c, now);
    uint64_t t = c == SJ_CREDIT_FOREVER ? now + 100ull * 366 * 86400000 : c - 1;
    ck_assert_int_eq(sj_credit_fold(f->e, f->n, t, later), 0);
    ck_assert_msg(later[i].status == f->s[i].status &&
                      later[i].public_until_ms == f->s[i].public_until_ms &&
                      (c == SJ_CREDIT_FOREVER || later[i].changes_ms == c),
                  "entry %zu changed before its changes_ms (%s then %s)", i,
                  sj_credit_status_name((sj_credit_status_t)f->s[i].status),
                  sj_credit_status_name((sj_credit_status_t)later[i].status));
    if (c != SJ_CREDIT_FOREVER) {
      ck_assert_int_eq(sj_credit_fold(f->e, f->n, c, later), 0);
      ck_assert_uint_gt(later[i].changes_ms, c);
    }
  }
}

static void fold_at(fx_t *f, const char *now) {
  ck_assert_int_eq(sj_credit_fold(f->e, f->n, D(now) + 43200000, f->s), 0);
  fold_via_facts(f->e, f->n, D(now) + 43200000, f->s);
  ck_changes(f, D(now) + 43200000);
}

static void fx_free(fx_t *f) {
  for (size_t i = 0; i < f->n; i++)
    json_decref(f->j[i]);
  f->n = 0;
}

#define ST(i) ((sj_credit_status_t)f.s[i].status)
#define ck_status(i, want)                                                                         \
  ck_assert_msg(ST(i) == (want), "entry %zu: %s, want %s", (size_t)(i),                            \
                sj_credit_status_name(ST(i)), sj_credit_status_name(want))

START_TEST(penalties_expire_with_their_severity_window) {
  fx_t f = {0};
  size_t g =
      add(&f, 310000, 0, "2024-03-01", REC("penalty", ",\"decision\":{\"date\":\"2024-03-01\"}"));
  size_t s =
      add(&f, 310000, 1, "2024-03-01",
          REC("penalty", ",\"severity\":\"serious\",\"decision\":{\"date\":\"2024-03-01\"}"));
  size_t w =
      add(&f, 310000, 2, "2024-03-01",
          REC("penalty", ",\"decision\":{\"measures\":[\"warning\"],\"date\":\"2024-03-01\"}"));
  size_t m = add(&f, 310000, 3, "2024-03-01", REC("penalty", ",\"severity\":\"minor\""));
  fold_at(&f, "2024-05-01");
  ck_status(g, SJ_CREDIT_ACTIVE);
  ck_status(s, SJ_CREDIT_ACTIVE);
  ck_assert_uint_eq(f.s[g].category, SJ_CREDIT_CAT_PENALTY);
  ck_assert_uint_eq(f.s[g].end_ms, D("2025-03-01"));        /* general: 1 year */
  ck_assert_uint_eq(f.s[g].repairable_ms, D("2024-06-01")); /* after 3 months */
  ck_assert_uint_eq(f.s[g].public_until_ms, D("2025-03-01"));
  ck_assert_uint_eq(f.s[s].end_ms, D("2027-03-01")); /* serious: 3 years */
  ck_assert_uint_eq(f.s[s].repairable_ms, D("2025-03-01"));
  ck_assert(!f.s[w].published && f.s[w].public_until_ms == 0); /* warnings: never published */
  ck_assert(!f.s[m].published && f.s[m].public_until_ms == 0);
  fold_at(&f, "2025-03-02");
  ck_status(g, SJ_CREDIT_EXPIRED);
  ck_status(s, SJ_CREDIT_ACTIVE);
  fold_at(&f, "2027-03-01");
  ck_status(s, SJ_CREDIT_EXPIRED);
  ck_assert_uint_eq(f.s[s].public_until_ms, 0);
  fx_free(&f);
}
END_TEST

START_TEST(repairs_count_only_after_the_minimum_period) {
  fx_t f = {0};
  size_t p =
      add(&f, 310000, 0, "2024-03-01", REC("penalty", ",\"decision\":{\"date\":\"2024-03-01\"}"));
  size_t early =
      add(&f, 310000, 1, "2024-04-01", REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":0}"));
  size_t ok =
      add(&f, 310000, 2, "2024-06-10",
          REC("repair",
              ",\"ref\":{\"region\":\"310000\",\"seq\":0},\"decision\":{\"date\":\"2024-06-10\"}"));
  fold_at(&f, "2024-05-01");
  ck_status(p, SJ_CREDIT_ACTIVE);
  ck_assert_str_eq(f.s[early].reject, "REPAIR_TOO_EARLY");
  ck_status(early, SJ_CREDIT_ACTION);
  ck_assert_uint_eq(f.s[p].ended_by, ok); /* accepted, takes effect on its date */
  fold_at(&f, "2024-07-01");
  ck_status(p, SJ_CREDIT_REPAIRED);
  ck_assert_uint_eq(f.s[p].ended_ms, D("2024-06-10"));
  ck_assert_uint_eq(f.s[p].public_until_ms, 0);
  ck_assert_ptr_null(f.s[ok].reject);
  ck_assert_uint_eq(f.s[ok].target, p);
  fx_free(&f);

  /* a specific serious case is not repairable before its window ends */
  size_t sp =
      add(&f, 310000, 0, "2024-03-01",
          REC("penalty", ",\"severity\":\"serious\",\"specific_serious\":true,\"domain\":\"drug\","
                         "\"decision\":{\"date\":\"2024-03-01\"}"));
  size_t r =
      add(&f, 310000, 1, "2026-01-01", REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":0}"));
  fold_at(&f, "2026-02-01");
  ck_status(sp, SJ_CREDIT_ACTIVE);
  ck_assert_str_eq(f.s[r].reject, "NOT_REPAIRABLE");
  ck_assert_uint_eq(f.s[sp].repairable_ms, f.s[sp].end_ms);
  fx_free(&f);
}
END_TEST

START_TEST(corrections_supersede_and_actions_follow_them) {
  fx_t f = {0};
  size_t a = add(&f, 310000, 0, "2024-03-01",
                 REC("penalty", ",\"decision\":{\"number\":\"A-1\",\"date\":\"2024-03-01\"}"));
  size_t b =
      add(&f, 310000, 1, "2024-03-05",
          REC("penalty", ",\"action\":\"correction\",\"ref\":{\"region\":\"310000\",\"seq\":0},"
                         "\"severity\":\"serious\",\"decision\":{\"number\":\"A-1 (corrected)\","
                         "\"date\":\"2024-03-01\"}"));
  size_t c =
      add(&f, 310000, 2, "2024-03-06",
          REC("penalty", ",\"action\":\"correction\",\"ref\":{\"region\":\"310000\",\"seq\":0},"
                         "\"decision\":{\"number\":\"A-1 (again)\",\"date\":\"2024-03-02\"}"));
  size_t r =
      add(&f, 310000, 3, "2025-09-01", REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":1}"));
  fold_at(&f, "2024-04-01");
  ck_status(a, SJ_CREDIT_SUPERSEDED);
  ck_status(b, SJ_CREDIT_SUPERSEDED); /* the later correction of the same decision wins */
  ck_status(c, SJ_CREDIT_ACTIVE);
  ck_assert_uint_eq(f.s[a].superseded_by, b);
  ck_assert_uint_eq(f.s[b].superseded_by, c);
  ck_assert_uint_eq(f.s[c].start_ms, D("2024-03-02")); /* its own fields count */
  ck_assert_uint_eq(f.s[r].target, c); /* a repair of an old version acts on the head */
  ck_assert_uint_eq(f.s[a].public_until_ms, 0);
  fx_free(&f);
}
END_TEST

START_TEST(corrections_and_repairs_from_other_regions) {
  fx_t f = {0};
  /* Jiangsu corrects a Shanghai decision, Zhejiang repairs it, Anhui revokes that repair. */
  size_t sh =
      add(&f, 310000, 7, "2024-03-01",
          REC("penalty", ",\"severity\":\"serious\",\"decision\":{\"date\":\"2024-03-01\"}"));
  size_t js =
      add(&f, 320000, 2, "2024-03-10",
          REC("penalty", ",\"action\":\"correction\",\"ref\":{\"region\":\"310000\",\"seq\":7},"
                         "\"decision\":{\"date\":\"2024-03-01\"}"));
  size_t zj =
      add(&f, 330000, 9, "2024-07-01", REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":7}"));
  fold_at(&f, "2024-08-01");
  ck_status(sh, SJ_CREDIT_SUPERSEDED);
  ck_status(js, SJ_CREDIT_REPAIRED); /* general after correction: repairable from 2024-06-01 */
  ck_assert_uint_eq(f.s[js].ended_by, zj);
  size_t ah =
      add(&f, 340000, 1, "2024-07-15",
          REC("repair", ",\"action\":\"revocation\",\"ref\":{\"region\":\"330000\",\"seq\":9}"));
  fold_at(&f, "2024-08-01");
  ck_status(js, SJ_CREDIT_ACTIVE);
  ck_assert_str_eq(f.s[zj].reject, "ACTION_REVOKED");
  ck_assert_uint_eq(f.s[ah].target, zj);
  /* the same entries in another order fold the same way */
  fx_t g = {0};
  for (size_t i = f.n; i-- > 0;) {
    g.e[g.n] = f.e[i];
    g.n++;
  }
  ck_assert_int_eq(sj_credit_fold(g.e, g.n, D("2024-08-01") + 43200000, g.s), 0);
  for (size_t i = 0; i < f.n; i++)
    ck_assert_uint_eq(g.s[f.n - 1 - i].status, f.s[i].status);
  fx_free(&f);
}
END_TEST

START_TEST(revocations_removals_and_unresolved_refs) {
  fx_t f = {0};
  size_t p = add(&f, 310000, 0, "2024-03-01", REC("penalty", ""));
  size_t rv =
      add(&f, 310000, 1, "2024-04-01",
          REC("penalty", ",\"action\":\"revocation\",\"ref\":{\"region\":\"310000\",\"seq\":0}"));
  size_t l = add(&f, 310000, 2, "2024-03-01",
                 REC("abnormal_list", ",\"period\":{\"from\":\"2024-03-01\"}"));
  size_t rm =
      add(&f, 310000, 3, "2024-05-01",
          REC("abnormal_list", ",\"action\":\"removal\",\"ref\":{\"region\":\"310000\",\"seq\":2},"
                               "\"decision\":{\"date\":\"2024-05-01\"}"));
  size_t bad =
      add(&f, 310000, 4, "2024-05-01",
          REC("blacklist", ",\"action\":\"removal\",\"ref\":{\"region\":\"310000\",\"seq\":0}"));
  size_t lost = add(&f, 310000, 5, "2024-05-01",
                    REC("repair", ",\"ref\":{\"region\":\"320000\",\"seq\":99}"));
  size_t unheld = add(&f, 320000, 3, "2024-05-01", NULL);
  size_t toward =
      add(&f, 310000, 6, "2024-05-01", REC("repair", ",\"ref\":{\"region\":\"320000\",\"seq\":3}"));
  fold_at(&f, "2024-06-01");
  ck_status(p, SJ_CREDIT_REVOKED);
  ck_assert_uint_eq(f.s[p].ended_by, rv);
  ck_assert_uint_eq(f.s[p].public_until_ms, 0);
  ck_status(l, SJ_CREDIT_REMOVED);
  ck_assert_uint_eq(f.s[l].ended_by, rm);
  ck_assert_str_eq(f.s[bad].reject, "ACTION_TARGET_INVALID"); /* a penalty is on no list */
  ck_assert_str_eq(f.s[lost].reject, "REF_NOT_FOUND");
  ck_status(unheld, SJ_CREDIT_UNKNOWN);
  ck_assert_str_eq(f.s[toward].reject, "REF_NOT_HELD");
  fx_free(&f);
}
END_TEST

START_TEST(the_latest_rating_of_each_scheme_is_current) {
  fx_t f = {0};
  size_t a = add(&f, 310000, 0, "2023-04-01",
                 REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"A\"},\"period\":"
                               "{\"from\":\"2023-04-01\",\"until\":\"2025-04-01\"}"));
  size_t b = add(&f, 320000, 0, "2024-04-01",
                 REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"C\"},\"period\":"
                               "{\"from\":\"2024-04-01\"}"));
  size_t e =
      add(&f, 310000, 1, "2024-01-01",
          REC("rating", ",\"rating\":{\"scheme\":\"environmental_credit\",\"grade\":\"green\"}"));
  fold_at(&f, "2024-06-01");
  ck_status(a, SJ_CREDIT_REPLACED);
  ck_assert_uint_eq(f.s[a].replaced_by, b);
  ck_status(b, SJ_CREDIT_ACTIVE);
  ck_assert_uint_eq(f.s[b].end_ms, D("2025-04-01")); /* valid_months 12 */
  ck_status(e, SJ_CREDIT_ACTIVE);
  ck_assert_uint_eq(f.s[e].category, SJ_CREDIT_CAT_RATING);
  fold_at(&f, "2023-06-01");
  ck_status(a, SJ_CREDIT_ACTIVE);
  ck_status(b, SJ_CREDIT_PENDING);
  fx_free(&f);
}
END_TEST

START_TEST(public_windows_respect_disclosure_persons_and_minors) {
  fx_t f = {0};
  size_t auth = add(
      &f, 310000, 0, "2024-03-01",
      "{\"kind\":\"credit\",\"type\":\"penalty\"," ENT(USCC1) ",\"disclosure\":\"authorities\"}");
  size_t person = add(&f, 310000, 1, "2024-03-01",
                      "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\","
                      "\"id\":\"" PERSON_ID "\",\"name\":\"x\"},\"disclosure\":\"public\"}");
  f.e[person].person = 1;
  size_t minor = add(&f, 310000, 2, "2024-03-01", REC("penalty", ",\"is_minor\":true"));
  size_t plain = add(&f, 310000, 3, "2024-03-01", REC("penalty", ""));
  fold_at(&f, "2024-04-01");
  for (size_t i = 0; i < 3; i++)
    ck_status(i, SJ_CREDIT_ACTIVE);
  ck_assert_uint_eq(f.s[auth].public_until_ms, 0);
  ck_assert_uint_eq(f.s[person].public_until_ms, 0);
  ck_assert_uint_eq(f.s[minor].public_until_ms, 0);
  ck_assert_uint_gt(f.s[plain].public_until_ms, D("2024-04-01"));
  fx_free(&f);
}
END_TEST

/* Each entry's changes_ms: the next instant its status or public window can change with time. */
START_TEST(changes_ms_is_the_next_instant_an_entry_can_change) {
  fx_t f = {0};
  size_t p =
      add(&f, 310000, 0, "2024-03-01", REC("penalty", ",\"decision\":{\"date\":\"2024-03-01\"}"));
  size_t r = add(&f, 310000, 1, "2024-06-10",
                 REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":0},\"decision\":{"
                               "\"date\":\"2024-06-10\"}"));
  size_t l = add(&f, 310000, 2, "2024-03-01",
                 REC("abnormal_list", ",\"period\":{\"from\":\"2024-03-01\"}"));
  size_t rm =
      add(&f, 310000, 3, "2024-05-01",
          REC("abnormal_list", ",\"action\":\"removal\",\"ref\":{\"region\":\"310000\",\"seq\":2},"
                               "\"decision\":{\"date\":\"2024-05-01\"}"));
  size_t v = add(&f, 310000, 4, "2024-03-01", REC("penalty", ""));
  size_t rv =
      add(&f, 310000, 5, "2024-04-01",
          REC("penalty", ",\"action\":\"revocation\",\"ref\":{\"region\":\"310000\",\"seq\":4}"));
  size_t w = add(&f, 310000, 6, "2024-03-01",
                 REC("penalty", ",\"severity\":\"serious\",\"decision\":{\"date\":\"2024-03-"
                                "01\"}"));
  /* a serious penalty naming someone born 2008-05-01: hidden until they turn 18 */
  size_t mi = add(&f, 310000, 7, "2024-03-01",
                  REC("penalty", ",\"severity\":\"serious\",\"holder\":\"110105200805011233\","
                                 "\"decision\":{\"date\":\"2024-03-01\"}"));
  fold_at(&f, "2024-04-01");
  ck_assert_uint_eq(f.s[p].changes_ms, D("2024-06-10")); /* the accepted repair takes effect */
  ck_assert_uint_eq(f.s[p].public_until_ms, D("2024-06-10"));
  ck_assert_uint_eq(f.s[l].changes_ms, D("2024-05-01")); /* the removal takes effect */
  ck_status(v, SJ_CREDIT_REVOKED);
  ck_assert_uint_eq(f.s[v].changes_ms, SJ_CREDIT_FOREVER); /* revoked at once, for good */
  ck_assert_uint_eq(f.s[w].changes_ms, D("2027-03-01"));   /* its window's end */
  ck_assert_uint_eq(f.s[mi].public_until_ms, 0);
  ck_assert_uint_eq(f.s[mi].changes_ms, D("2026-05-01")); /* the 18th birthday */
  for (size_t a = r; a <= rv; a++)                        /* actions do not change */
    if (a == r || a == rm || a == rv)
      ck_assert_uint_eq(f.s[a].changes_ms, SJ_CREDIT_FOREVER);
  fold_at(&f, "2024-07-01");
  ck_status(p, SJ_CREDIT_REPAIRED);
  ck_assert_uint_eq(f.s[p].changes_ms, SJ_CREDIT_FOREVER); /* ended: never shown again */
  ck_status(l, SJ_CREDIT_REMOVED);
  ck_assert_uint_eq(f.s[l].changes_ms, SJ_CREDIT_FOREVER);
  fold_at(&f, "2026-06-01");
  ck_assert_uint_eq(f.s[mi].public_until_ms, D("2027-03-01")); /* an adult now: shown */
  ck_assert_uint_eq(f.s[mi].changes_ms, D("2027-03-01"));
  fold_at(&f, "2027-03-02");
  ck_status(w, SJ_CREDIT_EXPIRED);
  ck_assert_uint_eq(f.s[w].changes_ms, SJ_CREDIT_FOREVER);
  fx_free(&f);

  /* ratings: the older one ends when the newer starts; the newer is pending until then */
  size_t a = add(&f, 310000, 0, "2023-04-01",
                 REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"A\"},\"period\":"
                               "{\"from\":\"2023-04-01\",\"until\":\"2025-04-01\"}"));
  size_t b = add(&f, 320000, 0, "2024-04-01",
                 REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"C\"},\"period\":"
                               "{\"from\":\"2024-04-01\"}"));
  fold_at(&f, "2023-06-01");
  ck_assert_uint_eq(f.s[a].changes_ms, D("2024-04-01"));
  ck_assert_uint_eq(f.s[a].public_until_ms, D("2024-04-01"));
  ck_status(b, SJ_CREDIT_PENDING);
  ck_assert_uint_eq(f.s[b].changes_ms, D("2024-04-01"));
  fold_at(&f, "2024-06-01");
  ck_status(a, SJ_CREDIT_REPLACED);
  ck_assert_uint_eq(f.s[a].changes_ms, SJ_CREDIT_FOREVER);
  ck_assert_uint_eq(f.s[b].changes_ms, D("2025-04-01"));
  fx_free(&f);
}
END_TEST

/* The header's test (its type alone) never hides a raw body the fold shows, however far a body's
 * period puts its window (an append-time bound once did: a blacklist until 2034, a commitment
 * from 2029). */
START_TEST(the_header_bound_never_ends_before_the_window) {
  fx_t f = {0};
  add(&f, 310000, 0, "2024-03-01",
      REC("penalty", ",\"severity\":\"serious\",\"decision\":{\"date\":\"2024-03-02\"}"));
  add(&f, 310000, 1, "2024-03-01",
      REC("blacklist", ",\"period\":{\"from\":\"2024-03-01\",\"until\":\"2034-03-01\"}"));
  add(&f, 310000, 2, "2024-03-01", REC("commitment", ",\"period\":{\"from\":\"2029-01-01\"}"));
  add(&f, 310000, 3, "2024-03-01",
      REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"A\"}"));
  add(&f, 310000, 4, "2024-03-01", REC("abnormal_list", ""));
  const char *when[] = {"2024-03-01", "2025-03-01", "2027-02-28", "2029-06-01", "2033-12-31"};
  for (size_t k = 0; k < sizeof when / sizeof *when; k++) {
    uint64_t now = D(when[k]) + 43200000;
    ck_assert_int_eq(sj_credit_fold(f.e, f.n, now, f.s), 0);
    for (size_t i = 0; i < f.n; i++) {
      if (now >= f.s[i].public_until_ms)
        continue;
      const char *type = json_string_value(json_object_get(f.j[i], "type"));
      uint64_t last = f.s[i].public_until_ms - 1;
      ck_assert_msg(sj_credit_header_may_publish(type, strlen(type)),
                    "entry %zu (%s) shown at %s (until %llu) but hidden by its header", i, type,
                    when[k], (unsigned long long)last);
    }
  }
  fx_free(&f);
}
END_TEST

START_TEST(facts_kept_at_append_fold_like_the_bodies_at_any_time) {
  fx_t f = {0};
  /* A mix of everything the fold reads, across regions, folded at many instants. */
  add(&f, 310000, 0, "2020-01-10", REC("penalty", ",\"decision\":{\"date\":\"2020-01-10\"}"));
  add(&f, 320000, 4, "2020-02-01",
      REC("penalty", ",\"action\":\"correction\",\"ref\":{\"region\":\"310000\",\"seq\":0},"
                     "\"severity\":\"serious\",\"decision\":{\"date\":\"2020-01-10\"}"));
  add(&f, 330000, 1, "2021-03-01", REC("repair", ",\"ref\":{\"region\":\"320000\",\"seq\":4}"));
  add(&f, 340000, 2, "2021-04-01",
      REC("repair", ",\"action\":\"revocation\",\"ref\":{\"region\":\"330000\",\"seq\":1}"));
  add(&f, 310000, 5, "2020-06-01",
      REC("blacklist", ",\"period\":{\"from\":\"2020-06-01\",\"until\":\"2023-06-01\"},"
                       "\"list\":{\"name\":\"x\"}"));
  add(&f, 310000, 6, "2021-06-01",
      REC("blacklist", ",\"action\":\"removal\",\"ref\":{\"region\":\"310000\",\"seq\":5},"
                       "\"decision\":{\"date\":\"2021-06-02\"}"));
  add(&f, 310000, 7, "2020-01-01",
      REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"A\"}"));
  add(&f, 320000, 8, "2021-01-01",
      REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"B\"}"));
  add(&f, 310000, 9, "2020-01-01",
      REC("penalty", ",\"decision\":{\"measures\":[\"warning\"],\"date\":\"2020-01-01\"}"));
  add(&f, 310000, 10, "2020-01-01", REC("penalty", ",\"severity\":\"minor\""));
  add(&f, 310000, 11, "2020-01-01", REC("penalty", ",\"severity\":\"\""));
  add(&f, 310000, 12, "2020-01-01",
      REC("penalty", ",\"severity\":\"serious\",\"specific_serious\":true,\"domain\":\"food\""));
  add(&f, 310000, 13, "2020-01-01",
      REC("penalty", ",\"legal_representative\":{\"id_number\":\"" MINOR_ID "\"}"));
  add(&f, 310000, 14, "2020-01-01", REC("penalty", ",\"subject_note\":{\"is_minor\":true}"));
  add(&f, 310000, 15, "2020-01-01",
      "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\",\"id\":"
      "\"" MINOR_ID "\"},\"disclosure\":\"public\"}");
  add(&f, 310000, 16, "2020-01-01", REC("penalty", ",\"is_minor\":true"));
  add(&f, 310000, 17, "2020-01-01",
      "{\"kind\":\"credit\",\"type\":\"penalty\"," ENT(USCC1) ",\"disclosure\":\"subject\"}");
  add(&f, 320000, 9, "2020-01-01", NULL);
  add(&f, 310000, 18, "2020-03-01", REC("repair", ",\"ref\":{\"region\":\"320000\",\"seq\":9}"));
  add(&f, 310000, 19, "2020-03-01", REC("commitment", ""));
  add(&f, 310000, 20, "2020-03-01", "[1,2]");
  f.e[15].person = 1;
  static const char *const when[] = {"2019-12-31", "2020-01-10", "2020-05-01", "2021-03-15",
                                     "2021-06-01", "2021-06-03", "2022-01-01", "2023-06-02",
                                     "2033-06-01", "2034-01-01"};
  for (size_t k = 0; k < sizeof when / sizeof *when; k++)
    fold_at(&f, when[k]); /* both ways, compared entry by entry */
  fx_free(&f);
}
END_TEST

/* A header for sj_credit_annotate. */
static sj_entry_header_t header_of(sj_kind_t kind, sj_disclosure_t d) {
  sj_entry_header_t h;
  memset(&h, 0, sizeof h);
  h.kind = (uint8_t)kind;
  h.disclosure = (uint8_t)d;
  return h;
}

START_TEST(facts_say_whether_the_raw_body_is_its_public_view) {
  const char *plain = REC("penalty", ",\"decision\":{\"date\":\"2024-03-01\"}");
  const char *phone = REC("penalty", ",\"legal_representative\":{\"phone\":\"" MOBILE "\"}");
  const char *quoted = REC("penalty", ",\"note\":\"\\u0070hone\"");
  const char *tests[] = {plain, phone, quoted};
  const int want_plain[] = {1, 0, 1};
  uint8_t buf[SJ_STORE_FACTS_MAX];
  for (size_t i = 0; i < 3; i++) {
    sj_entry_header_t h = header_of(SJ_KIND_CREDIT, SJ_DISCLOSE_PUBLIC);
    size_t n =
        sj_credit_annotate(NULL, &h, (const uint8_t *)tests[i], strlen(tests[i]), buf, sizeof buf);
    sj_credit_fact_t f;
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(sj_credit_fact_decode(buf, n, &f), 0);
    ck_assert_int_eq(f.has_rec, 1);
    ck_assert_int_eq(f.plain, want_plain[i]);
    ck_assert_str_eq(f.type, "penalty");
    ck_assert_ptr_null(f.severity);
  }
  /* a trace event, a withheld body, a body that is no JSON: facts saying "no record" */
  sj_entry_header_t t = header_of(SJ_KIND_TRACE, SJ_DISCLOSE_PUBLIC);
  sj_entry_header_t c = header_of(SJ_KIND_CREDIT, SJ_DISCLOSE_AUTHORITIES);
  sj_credit_fact_t f;
  size_t n = sj_credit_annotate(NULL, &t, (const uint8_t *)plain, strlen(plain), buf, sizeof buf);
  ck_assert_int_eq(sj_credit_fact_decode(buf, n, &f), 0);
  ck_assert_int_eq(f.has_rec, 0);
  n = sj_credit_annotate(NULL, &c, NULL, 0, buf, sizeof buf);
  ck_assert_int_eq(sj_credit_fact_decode(buf, n, &f), 0);
  ck_assert(!f.has_rec && f.disclosure == SJ_DISCLOSE_AUTHORITIES);
  n = sj_credit_annotate(NULL, &c, (const uint8_t *)"{", 1, buf, sizeof buf);
  ck_assert_int_eq(sj_credit_fact_decode(buf, n, &f), 0);
  ck_assert_int_eq(f.has_rec, 0);
  /* too little room, or a type too long to keep: no facts (lookups parse the body) */
  ck_assert_uint_eq(sj_credit_annotate(NULL, &c, (const uint8_t *)plain, strlen(plain), buf, 16),
                    0);
  const char *longtype = "{\"kind\":\"credit\",\"type\":\"a_type_name_that_is_much_longer_than_"
                         "any_real_one\"," ENT(USCC1) ",\"disclosure\":\"public\"}";
  ck_assert_uint_eq(
      sj_credit_annotate(NULL, &c, (const uint8_t *)longtype, strlen(longtype), buf, sizeof buf),
      0);
  /* facts made under other rules are refused, so the body is read again */
  n = sj_credit_annotate(NULL, &c, (const uint8_t *)plain, strlen(plain), buf, sizeof buf);
  buf[2] ^= 1;
  ck_assert_int_eq(sj_credit_fact_decode(buf, n, &f), SJ_EVERSION);
}
END_TEST

/* ---- the public view
 * ------------------------------------------------------------------------------- */

START_TEST(masking_removes_personal_members_at_any_depth) {
  const char *text = REC(
      "penalty", ",\"legal_representative\":{\"name\":\"张三\",\"id_number\":\"" PERSON_ID "\","
                 "\"phone\":\"" MOBILE "\",\"address\":\"x路1号\"},\"witnesses\":[{\"name\":\"w\","
                 "\"contact\":\"+86" MOBILE "\"},{\"name\":\"kid\",\"is_minor\":true},"
                 "{\"name\":\"kid2\",\"id\":\"" MINOR_ID "\"}],\"note\":\"" OTHER_ID "\","
                 "\"bank_account\":{\"no\":1},\"fine\":\""
                 "23812345678901"
                 "\"");
  json_t *j = json_loads(text, 0, NULL);
  ck_assert_ptr_nonnull(j);
  uint64_t now = D("2024-06-01");
  int k = sj_credit_mask_public(j, now);
  char *out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
  ck_assert_int_eq(k, 8);
  ck_assert_ptr_null(strstr(out, PERSON_ID));
  ck_assert_ptr_null(strstr(out, MOBILE));
  ck_assert_ptr_null(strstr(out, OTHER_ID));
  ck_assert_ptr_null(strstr(out, "kid"));
  ck_assert_ptr_null(strstr(out, "address"));
  ck_assert_ptr_null(strstr(out, "bank_account"));
  ck_assert_ptr_nonnull(strstr(out, "\"legal_representative\":{\"name\":\"张三\"}"));
  ck_assert_ptr_nonnull(strstr(out, "23812345678901")); /* 14 digits: not a phone number */
  ck_assert_ptr_nonnull(strstr(out, USCC1));
  free(out);
  json_decref(j);
  /* a record about a minor is not shown at all */
  j = json_loads("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\","
                 "\"id\":\"" MINOR_ID "\",\"name\":\"x\"},\"disclosure\":\"public\"}",
                 0, NULL);
  ck_assert_int_eq(sj_credit_mask_public(j, now), -1);
  ck_assert(sj_credit_about_minor(j, now));
  ck_assert(!sj_credit_about_minor(j, D("2033-06-01"))); /* 18 on 2033-06-01 */
  json_decref(j);
}
END_TEST

START_TEST(the_quick_scan_never_misses_what_masking_removes) {
  const char *plain = REC("penalty", ",\"decision\":{\"number\":\"A-1\",\"fine_cny\":5000}");
  ck_assert_int_eq(sj_credit_body_may_mask((const uint8_t *)plain, strlen(plain)), 0);
  /* numbers are never masked, nor are codes that merely contain long digit runs */
  const char *digits = REC("penalty", ",\"x\":13812345678,\"org\":\"91310000132200821H\"");
  ck_assert_int_eq(sj_credit_body_may_mask((const uint8_t *)digits, strlen(digits)), 0);
  const char *cases[] = {
      REC("penalty", ",\"phone\":\"x\""), REC("penalty", ",\"ph\\u006fne\":\"x\""),
      REC("penalty", ",\"x\":\"" PERSON_ID "\""), REC("penalty", ",\"x\":[\"+86" MOBILE "\"]"),
      REC("penalty", ",\"is_minor\":true")};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ck_assert_msg(sj_credit_body_may_mask((const uint8_t *)cases[i], strlen(cases[i])), "%s",
                  cases[i]);
    json_t *j = json_loads(cases[i], 0, NULL);
    ck_assert_int_ne(sj_credit_mask_public(j, D("2024-06-01")), 0);
    json_decref(j);
  }
}
END_TEST

/* ---- the audit trail store
 * ------------------------------------------------------------------------- */

typedef struct {
  sj_audit_row_t v[64];
  size_t n;
} got_t;

static int got_row(void *ctx, const sj_audit_row_t *r) {
  got_t *g = ctx;
  g->v[g->n++] = *r;
  return 0;
}

static sj_audit_row_t row(const char *uscc, uint64_t seq, const char *purpose) {
  sj_audit_row_t r = {.time_ms = 1700000000000ull + seq,
                      .role = 2,
                      .key_type = SJ_KEY_USCC,
                      .key_len = 18,
                      .region = 310000,
                      .seq = seq};
  memcpy(r.key, uscc, 18);
  snprintf(r.who, sizeof r.who, "officer-%llu", (unsigned long long)seq);
  snprintf(r.purpose, sizeof r.purpose, "%s", purpose);
  return r;
}

static void query(sj_audit_t *a, const char *uscc, uint64_t before, size_t limit, got_t *g,
                  uint64_t *next) {
  g->n = 0;
  ck_assert_int_eq(
      sj_audit_query(a, SJ_KEY_USCC, (const uint8_t *)uscc, 18, before, limit, got_row, g, next),
      0);
}

START_TEST(audit_rows_are_found_per_subject_before_and_after_a_flush) {
  char path[600];
  snprintf(path, sizeof path, "%s/audit.log", g_dir);
  sj_audit_t *a = NULL;
  ck_assert_int_eq(sj_audit_open(path, 60000, &a), 0);
  for (uint64_t i = 0; i < 5; i++) {
    sj_audit_row_t r = row(i % 2 ? USCC2 : USCC1, i, "贷款审批 loan");
    ck_assert_int_eq(sj_audit_add(a, &r), 0);
  }
  got_t g;
  uint64_t next;
  query(a, USCC1, UINT64_MAX, 10, &g, &next); /* still in memory (flush_ms is a minute) */
  ck_assert_uint_eq(g.n, 3);
  ck_assert_uint_eq(g.v[0].seq, 4); /* newest first */
  ck_assert_uint_eq(next, 0);
  ck_assert_int_eq(sj_audit_flush(a), 0);
  sj_audit_stats_t st;
  sj_audit_stats(a, &st);
  ck_assert_uint_eq(st.written, 5);
  ck_assert_uint_eq(st.pending, 0);
  sj_audit_row_t r = row(USCC1, 6, "");
  sj_audit_add(a, &r); /* one in memory, three in the file */
  query(a, USCC1, UINT64_MAX, 2, &g, &next);
  ck_assert_uint_eq(g.n, 2);
  ck_assert_uint_eq(g.v[0].seq, 6);
  ck_assert_uint_eq(g.v[1].seq, 4);
  ck_assert_uint_eq(next, 2);
  query(a, USCC1, next, 2, &g, &next);
  ck_assert_uint_eq(g.n, 2);
  ck_assert_uint_eq(g.v[0].seq, 2);
  ck_assert_uint_eq(g.v[1].seq, 0);
  ck_assert_str_eq(g.v[1].purpose, "贷款审批 loan");
  ck_assert_str_eq(g.v[1].who, "officer-0");
  sj_audit_close(a); /* flushes */

  /* reopen: the index is rebuilt; a torn last line (a crash mid-write) is cut off */
  int fd = open(path, O_WRONLY | O_APPEND);
  ck_assert_int_eq(write(fd, "{\"t\":1,\"ro", 10), 10);
  close(fd);
  ck_assert_int_eq(sj_audit_open(path, 0, &a), 0);
  query(a, USCC1, UINT64_MAX, 10, &g, &next);
  ck_assert_uint_eq(g.n, 4);
  query(a, USCC2, UINT64_MAX, 10, &g, &next);
  ck_assert_uint_eq(g.n, 2);
  ck_assert_uint_eq(g.v[1].seq, 1);
  r = row(USCC2, 7, "x");
  sj_audit_add(a, &r);
  sj_audit_close(a);
  ck_assert_int_eq(sj_audit_open(path, 0, &a), 0);
  query(a, USCC2, UINT64_MAX, 10, &g, &next);
  ck_assert_uint_eq(g.n, 3);
  ck_assert_uint_eq(g.v[0].seq, 7); /* the line after the cut is whole */
  sj_audit_close(a);
}
END_TEST

/* ---- through a node process
 * ------------------------------------------------------------------------ */

#define SUBMIT_TOKEN "sjt_credit_submit"
#define AUTH_TOKEN "sjt_credit_authority"
#define ACME_TOKEN "sjt_credit_acme_self"
#define ZHANG_TOKEN "sjt_credit_zhang_self"

static sj_test_node_t g_node;

static int fetch(const char *method, const char *path, const char *token, const char *purpose,
                 const char *body, sj_buf_t *out) {
  sj_test_req_t r = {.method = method,
                     .path = path,
                     .token = token,
                     .purpose = purpose,
                     .ctype = body ? "application/json" : NULL,
                     .body = body};
  return sj_test_fetch(g_node.url, &r, out);
}

static int get(const char *path, const char *token, sj_buf_t *out) {
  return fetch("GET", path, token, NULL, NULL, out);
}

static void node_setup(void) {
  tmpdir_setup();
  sj_test_node_init(&g_node, g_dir, "310000", "test.sanjiao/310000");
  sj_test_node_add_token(&g_node, "submit", SUBMIT_TOKEN, NULL, "bureau-upload");
  sj_test_node_add_token(&g_node, "authority", AUTH_TOKEN, NULL, "officer-li");
  sj_test_node_add_token(&g_node, "subject", ACME_TOKEN, USCC1, "acme-self");
  sj_test_node_add_token(&g_node, "subject", ZHANG_TOKEN, PERSON_ID, "zhang-self");
  sj_test_node_start(&g_node, NULL);
}

static void node_teardown(void) {
  sj_test_node_stop(&g_node, SIGTERM);
  tmpdir_teardown();
}

static json_t *jparse(const sj_buf_t *b) {
  return sj_test_json(b->p, b->n);
}

/* Submits records (a JSON array); returns the accepted leaf hashes in order. */
static json_t *submit(const char *array) {
  sj_buf_t b = {0};
  int st = fetch("POST", "/v1/records", SUBMIT_TOKEN, NULL, array, &b);
  ck_assert_msg(st == 201, "submit: %d %.*s", st, (int)b.n, (const char *)b.p);
  json_t *j = jparse(&b);
  sj_buf_deinit(&b);
  return j;
}

static const char *leaf(json_t *accepted, size_t i) {
  return json_string_value(
      json_object_get(json_array_get(json_object_get(accepted, "accepted"), i), "leaf_hash"));
}

/* The items of one report section, as "seq" numbers. */
static void seqs(json_t *report, const char *section, char *out, size_t cap) {
  size_t i, o = 0;
  json_t *it;
  out[0] = 0;
  json_array_foreach(json_object_get(report, section), i, it) {
    o += (size_t)snprintf(out + o, cap - o, "%s%lld", i ? "," : "",
                          (long long)json_integer_value(json_object_get(it, "seq")));
  }
}

static json_t *item(json_t *report, const char *section, long long seq) {
  size_t i;
  json_t *it;
  json_array_foreach(json_object_get(report, section), i, it) {
    if (json_integer_value(json_object_get(it, "seq")) == seq)
      return it;
  }
  ck_abort_msg("no seq %lld in %s", seq, section);
  return NULL;
}

START_TEST(report_folds_the_subjects_entries) {
  char body[8192], s[256];
  snprintf(
      body, sizeof body,
      "[" REC("penalty", ",\"decision\":{\"number\":\"P-0\",\"date\":\"%s\"}") "," /* 0 */
      REC("repair",
          ",\"ref\":{\"region\":\"310000\",\"seq\":0},\"decision\":{\"date\":\"%s\"}") "," /* 1 */
      REC("penalty",
          ",\"severity\":\"serious\",\"decision\":{\"number\":\"P-2\",\"date\":\"%s\"}") "," /* 2 */
      REC("penalty", ",\"action\":\"correction\",\"ref\":{\"region\":\"310000\",\"seq\":2},"
                     "\"severity\":\"serious\",\"decision\":{\"number\":\"P-2 "
                     "corrected\",\"date\":\"%s\"}") "," /* 3 */
      REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"A\"},\"period\":{\"from\":"
                    "\"%s\"}") "," /* 4 */
      REC("rating", ",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"B\"},\"period\":{\"from\":"
                    "\"%s\"}") "," /* 5 */
      REC("abnormal_list",
          ",\"list\":{\"name\":\"经营异常名录\"},\"period\":{\"from\":\"%s\"}") "," /* 6 */
      REC("abnormal_list",
          ",\"action\":\"removal\",\"ref\":{\"region\":\"310000\",\"seq\":6}") "," /* 7 */
      REC("procurement_ban", ",\"period\":{\"from\":\"%s\",\"until\":\"%s\"}") "," /* 8 */
      REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":8}") "]", /* 9: too early */
      day(-200), day(0), day(-30), day(-30), day(-400), day(-10), day(-20), day(-5), day(700));
  json_t *acc = submit(body);
  sj_buf_t b = {0};
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "/report", AUTH_TOKEN, &b), 200);
  json_t *r = jparse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(r, "view")), "authority");
  ck_assert_int_eq(json_integer_value(json_object_get(r, "entries")), 10);
  seqs(r, "penalties", s, sizeof s);
  ck_assert_str_eq(s, "3");
  seqs(r, "repaired", s, sizeof s);
  ck_assert_str_eq(s, "0");
  seqs(r, "ratings", s, sizeof s);
  ck_assert_str_eq(s, "5");
  seqs(r, "expired", s, sizeof s);
  ck_assert_str_eq(s, "6,4"); /* removed from the list; the older rating replaced */
  seqs(r, "bans", s, sizeof s);
  ck_assert_str_eq(s, "8");
  seqs(r, "lists", s, sizeof s);
  ck_assert_str_eq(s, "");
  json_t *p3 = item(r, "penalties", 3), *p0 = item(r, "repaired", 0);
  ck_assert_str_eq(json_string_value(json_object_get(p3, "leaf_hash")), leaf(acc, 3));
  ck_assert_str_eq(json_string_value(json_object_get(p3, "region")), "310000");
  ck_assert_str_eq(json_string_value(json_object_get(p3, "decision_number")), "P-2 corrected");
  json_t *corr = json_array_get(json_object_get(p3, "corrects"), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(corr, "seq")), 2);
  ck_assert_str_eq(json_string_value(json_object_get(corr, "leaf_hash")), leaf(acc, 2));
  json_t *end = json_object_get(p0, "ended_by");
  ck_assert_int_eq(json_integer_value(json_object_get(end, "seq")), 1);
  ck_assert_str_eq(json_string_value(json_object_get(end, "leaf_hash")), leaf(acc, 1));
  json_t *a9 = item(r, "actions", 9);
  ck_assert_str_eq(json_string_value(json_object_get(a9, "not_applied")), "REPAIR_TOO_EARLY");
  json_decref(r);

  /* the public sees what is in force and published, and nothing of the history */
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "/report", NULL, &b), 200);
  r = jparse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(r, "view")), "public");
  seqs(r, "penalties", s, sizeof s);
  ck_assert_str_eq(s, "3");
  ck_assert_ptr_null(json_object_get(r, "repaired"));
  ck_assert_ptr_null(json_object_get(r, "expired"));
  ck_assert_ptr_null(json_object_get(item(r, "penalties", 3), "public_until"));
  json_decref(r);
  /* the subject itself sees its history too */
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "/report", ACME_TOKEN, &b), 200);
  r = jparse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(r, "view")), "subject");
  seqs(r, "repaired", s, sizeof s);
  ck_assert_str_eq(s, "0");
  json_decref(r);
  ck_assert_int_eq(get("/v1/subjects/" USCC2 "/report", ACME_TOKEN, &b), 200);
  r = jparse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(r, "view")), "public");
  json_decref(r);
  ck_assert_int_eq(get("/v1/subjects/91310115MA1K00007X/report", NULL, &b), 400);
  json_decref(acc);
  sj_buf_deinit(&b);
}
END_TEST

/* memmem is a GNU extension; the build is POSIX. */
static const void *find_bytes(const uint8_t *p, size_t n, const char *s, size_t k) {
  for (size_t i = 0; k && i + k <= n; i++)
    if (p[i] == (uint8_t)s[0] && !memcmp(p + i, s, k))
      return p + i;
  return NULL;
}
#define memmem(p, n, s, k) find_bytes((const uint8_t *)(p), (n), (s), (k))

static void no_secrets(const sj_buf_t *b, const char *where) {
  static const char *const secret[] = {PERSON_ID, MOBILE, "Huaihai Road", "kid-name",
                                       "6222020200112233"};
  for (size_t i = 0; i < sizeof secret / sizeof *secret; i++)
    ck_assert_msg(!memmem(b->p, b->n, secret[i], strlen(secret[i])), "%s shows %s: %.*s", where,
                  secret[i], (int)(b->n > 600 ? 600 : b->n), (const char *)b->p);
}

#define PERSONAL                                                                                   \
  ",\"legal_representative\":{\"name\":\"Zhang\",\"id_number\":\"" PERSON_ID                       \
  "\",\"phone\":\"" MOBILE                                                                         \
  "\",\"address\":\"Huaihai Road 1\"},\"victims\":[{\"name\":\"kid-name\",\"is_minor\":true}],"    \
  "\"bank_account\":\"6222020200112233\""
#define PERSON_REC                                                                                 \
  "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\",\"id\":\"" PERSON_ID \
  "\",\"name\":\"Zhang\"},\"disclosure\":\"public\",\"phone\":\"" MOBILE "\"}"

START_TEST(the_public_never_sees_a_restricted_field_on_any_endpoint) {
  json_t *acc = submit(
      "[" REC("penalty", PERSONAL) "," PERSON_REC "," /* 0, 1 */
                                   "{\"kind\":\"credit\",\"type\":\"penalty\"," ENT(
                                       USCC1) ",\"disclosure\":\"authorities\","
                                              "\"decision\":{\"number\":\"SECRET-2\"}},"     /* 2 */
      REC("penalty", ",\"decision\":{\"number\":\"WARN-3\",\"measures\":[\"warning\"]}") "," /* 3 */
      REC("penalty", ",\"decision\":{\"number\":\"PLAIN-4\"}") "]");                         /* 4 */
  json_decref(acc);
  sj_buf_t b = {0};
  const char *paths[] = {"/v1/records/310000/0",          "/v1/records/310000/1",
                         "/v1/records/310000/2",          "/v1/subjects/" USCC1,
                         "/v1/subjects/" USCC1 "/report", "/v1/logs/310000/entries?start=0"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    ck_assert_int_eq(get(paths[i], NULL, &b), 200);
    no_secrets(&b, paths[i]);
    ck_assert_msg(!memmem(b.p, b.n, "SECRET-2", 8), "%s shows an authorities-only record",
                  paths[i]);
    if (i >= 3)
      ck_assert_msg(!memmem(b.p, b.n, "WARN-3", 6), "%s shows a warning", paths[i]);
    /* a submit token is no key to more */
    ck_assert_int_eq(get(paths[i], SUBMIT_TOKEN, &b), 200);
    no_secrets(&b, paths[i]);
  }
  /* what may be public still is: the masked record, and a plain record's exact body */
  ck_assert_int_eq(get("/v1/records/310000/0", NULL, &b), 200);
  json_t *j = jparse(&b);
  ck_assert_ptr_null(json_object_get(j, "body"));
  json_t *rep = json_object_get(json_object_get(j, "record"), "legal_representative");
  ck_assert_str_eq(json_string_value(json_object_get(rep, "name")), "Zhang");
  ck_assert_ptr_null(json_object_get(rep, "id_number"));
  ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(j, "record"), "victims")), 0);
  json_decref(j);
  ck_assert_int_eq(get("/v1/records/310000/4", NULL, &b), 200);
  j = jparse(&b);
  ck_assert_ptr_nonnull(json_object_get(j, "body"));
  json_decref(j);
  ck_assert_int_eq(get("/v1/records/310000/1", NULL, &b), 200);
  j = jparse(&b);
  ck_assert_ptr_null(json_object_get(j, "record"));
  ck_assert_str_eq(json_string_value(json_object_get(j, "withheld")), "disclosure");
  json_decref(j);
  ck_assert_int_eq(get("/v1/subjects/" PERSON_ID, NULL, &b), 403);
  ck_assert_int_eq(get("/v1/subjects/" PERSON_ID "/report", NULL, &b), 403);
  ck_assert_int_eq(get("/v1/subjects/" PERSON_ID "/report", ACME_TOKEN, &b), 403);

  /* a subject token sees its own record in full, and only its own */
  ck_assert_int_eq(get("/v1/records/310000/0", ACME_TOKEN, &b), 200);
  ck_assert_ptr_nonnull(memmem(b.p, b.n, PERSON_ID, strlen(PERSON_ID)));
  ck_assert_int_eq(get("/v1/records/310000/1", ACME_TOKEN, &b), 200);
  no_secrets(&b, "another subject's record");
  ck_assert_int_eq(get("/v1/records/310000/1", ZHANG_TOKEN, &b), 200);
  ck_assert_ptr_nonnull(memmem(b.p, b.n, MOBILE, strlen(MOBILE)));
  ck_assert_int_eq(get("/v1/subjects/" PERSON_ID "/report", ZHANG_TOKEN, &b), 200);
  ck_assert_ptr_nonnull(memmem(b.p, b.n, MOBILE, strlen(MOBILE)));
  ck_assert_int_eq(get("/v1/records/310000/0", ZHANG_TOKEN, &b), 200);
  no_secrets(&b, "the person's token on an enterprise record");
  ck_assert_int_eq(get("/v1/subjects/" OTHER_ID, ZHANG_TOKEN, &b), 403);
  /* an authority sees everything */
  ck_assert_int_eq(get("/v1/logs/310000/entries?start=0", AUTH_TOKEN, &b), 200);
  ck_assert_ptr_nonnull(memmem(b.p, b.n, PERSON_ID, strlen(PERSON_ID)));
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "/report", AUTH_TOKEN, &b), 200);
  ck_assert_ptr_nonnull(memmem(b.p, b.n, "SECRET-2", 8));
  ck_assert_ptr_nonnull(memmem(b.p, b.n, "WARN-3", 6));
  sj_buf_deinit(&b);
}
END_TEST

static json_t *audit_of(const char *id, const char *token, int want) {
  sj_buf_t b = {0};
  char path[128];
  snprintf(path, sizeof path, "/v1/subjects/%s/audit", id);
  ck_assert_int_eq(get(path, token, &b), want);
  json_t *j = want == 200 ? jparse(&b) : NULL;
  sj_buf_deinit(&b);
  return j;
}

START_TEST(non_public_reads_are_audited_for_the_subject) {
  json_decref(submit("[" REC("penalty", PERSONAL) "," REC("penalty", "") "," PERSON_REC "]"));
  sj_buf_t b = {0};
  ck_assert_int_eq(get("/v1/records/310000/0", NULL, &b), 200);       /* public: not audited */
  ck_assert_int_eq(get("/v1/records/310000/1", AUTH_TOKEN, &b), 200); /* public data: not audited */
  ck_assert_int_eq(get("/v1/records/310000/0", AUTH_TOKEN, &b), 200);
  ck_assert_int_eq(
      fetch("GET", "/v1/subjects/" USCC1 "/report", AUTH_TOKEN, "贷款审批 loan approval", NULL, &b),
      200);
  ck_assert_int_eq(get("/v1/subjects/" PERSON_ID, AUTH_TOKEN, &b), 200);
  json_t *a = audit_of(USCC1, ACME_TOKEN, 200);
  json_t *rows = json_object_get(a, "entries");
  ck_assert_uint_eq(json_array_size(rows), 2);
  json_t *newest = json_array_get(rows, 0), *oldest = json_array_get(rows, 1);
  ck_assert_str_eq(json_string_value(json_object_get(newest, "who")), "officer-li");
  ck_assert_str_eq(json_string_value(json_object_get(newest, "role")), "authority");
  ck_assert_str_eq(json_string_value(json_object_get(newest, "purpose")), "贷款审批 loan approval");
  ck_assert_int_eq(json_integer_value(json_object_get(newest, "seq")), 0);
  ck_assert_str_eq(json_string_value(json_object_get(oldest, "purpose")), "");
  ck_assert_ptr_nonnull(json_object_get(newest, "time"));
  json_decref(a);
  ck_assert_int_eq(get("/v1/records/310000/2", ZHANG_TOKEN, &b), 200); /* own reads: not audited */
  a = audit_of(PERSON_ID, ZHANG_TOKEN, 200);
  ck_assert_uint_eq(json_array_size(json_object_get(a, "entries")), 1);
  ck_assert_str_eq(
      json_string_value(json_object_get(json_array_get(json_object_get(a, "entries"), 0), "who")),
      "officer-li");
  json_decref(a);
  audit_of(USCC1, NULL, 401);
  audit_of(USCC1, ZHANG_TOKEN, 403);
  audit_of(PERSON_ID, ACME_TOKEN, 403);
  a = audit_of(USCC1, AUTH_TOKEN, 200);
  ck_assert_uint_eq(json_array_size(json_object_get(a, "entries")), 2);
  json_decref(a);
  /* paging, and rows survive a restart */
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "/audit?limit=1", ACME_TOKEN, &b), 200);
  a = jparse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(a, "next_cursor")), "1");
  json_decref(a);
  sj_test_node_stop(&g_node, SIGTERM);
  sj_test_node_start(&g_node, NULL);
  a = audit_of(USCC1, ACME_TOKEN, 200);
  ck_assert_uint_eq(json_array_size(json_object_get(a, "entries")), 2);
  json_decref(a);
  sj_buf_deinit(&b);
}
END_TEST

/* The seqs of GET /v1/subjects/USCC1 as token sees it ("0,3": records shown, newest first by
 * append time, then seq), and in *withheld those listed but withheld. */
static void lookup_seqs(const char *token, char *out, size_t cap, char *withheld, size_t wcap) {
  sj_buf_t b = {0};
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "?limit=1000", token, &b), 200);
  json_t *r = jparse(&b), *it;
  size_t i, o = 0, w = 0;
  out[0] = withheld[0] = 0;
  json_array_foreach(json_object_get(r, "records"), i, it) {
    long long seq = json_integer_value(json_object_get(it, "seq"));
    if (json_object_get(it, "record"))
      o += (size_t)snprintf(out + o, cap - o, "%s%lld", o ? "," : "", seq);
    else
      w += (size_t)snprintf(withheld + w, wcap - w, "%s%lld", w ? "," : "", seq);
  }
  json_decref(r);
  sj_buf_deinit(&b);
}

static void ck_lookup(const char *token, const char *want, const char *want_withheld) {
  char got[256], wh[256];
  lookup_seqs(token, got, sizeof got, wh, sizeof wh);
  ck_assert_msg(!strcmp(got, want) && !strcmp(wh, want_withheld),
                "%s sees records %s (withheld %s), want %s (withheld %s)",
                token ? token : "the public", got, wh, want, want_withheld);
}

/* Whether GET /v1/records/310000/seq gives the public the raw body, and its record. */
static void ck_record(uint64_t seq, int want_body, int want_record) {
  char path[64];
  sj_buf_t b = {0};
  snprintf(path, sizeof path, "/v1/records/310000/%llu", (unsigned long long)seq);
  ck_assert_int_eq(get(path, NULL, &b), 200);
  json_t *r = jparse(&b);
  ck_assert_msg((json_object_get(r, "body") != NULL) == want_body, "seq %llu: body %s",
                (unsigned long long)seq, want_body ? "missing" : "shown");
  ck_assert_msg((json_object_get(r, "record") != NULL) == want_record, "seq %llu: record %s",
                (unsigned long long)seq, want_record ? "missing" : "shown");
  json_decref(r);
  sj_buf_deinit(&b);
}

/* Lookups fold a subject's entries from the facts the node keeps per entry at append: corrected,
 * revoked and repaired records leave the public view exactly as the rules say, before and after
 * a restart, and as soon as the entry that ends them is committed. */
START_TEST(lookups_fold_corrections_revocations_and_repairs_from_stored_facts) {
  char body[8192];
  snprintf(
      body, sizeof body,
      "[" REC("penalty", ",\"decision\":{\"number\":\"P-0\",\"date\":\"%s\"}") "," /* 0 */
      REC("penalty", ",\"action\":\"correction\",\"ref\":{\"region\":\"310000\",\"seq\":0},"
                     "\"decision\":{\"number\":\"P-0 corrected\",\"date\":\"%s\"}") ","      /* 1 */
      REC("penalty", ",\"decision\":{\"number\":\"P-2\",\"date\":\"%s\"}") ","               /* 2 */
      REC("penalty", ",\"action\":\"revocation\",\"ref\":{\"region\":\"310000\",\"seq\":2}") /* 3 */
      "," REC("penalty", ",\"decision\":{\"number\":\"P-4\",\"date\":\"%s\"}") ","           /* 4 */
      REC("repair",
          ",\"ref\":{\"region\":\"310000\",\"seq\":4},\"decision\":{\"date\":\"%s\"}") "," /* 5 */
      REC("penalty",
          ",\"contact\":{\"phone\":\"" MOBILE "\"},\"decision\":{\"date\":\"%s\"}") /* 6 */
      "," REC("penalty", ",\"decision\":{\"number\":\"P-7\",\"date\":\"%s\"}") ","  /* 7 */
      REC("penalty", ",\"decision\":{\"measures\":[\"warning\"],\"date\":\"%s\"}")  /* 8 */
      "," REC("penalty", ",\"decision\":{\"number\":\"P-9\",\"date\":\"%s\"}") "]", /* 9 */
      day(-200), day(-200), day(-30), day(-200), day(-1), day(-10), day(-5), day(-5), day(-400));
  json_decref(submit(body));
  for (int pass = 0; pass < 2; pass++) { /* before and after a restart */
    /* the public: the correction (not what it replaced), the masked record, P-7; no action, no
     * warning, nothing revoked, repaired or expired */
    ck_lookup(NULL, "7,6,1", "9,8,5,4,3,2,0");
    ck_lookup(AUTH_TOKEN, "9,8,7,6,5,4,3,2,1,0", "");
    ck_record(1, 1, 1);
    ck_record(6, 0, 1); /* its public view is not its body */
    ck_record(0, 0, 0);
    ck_record(4, 0, 0);
    ck_record(2, 0, 0);
    sj_test_node_stop(&g_node, SIGTERM);
    sj_test_node_start(&g_node, NULL);
  }
  /* a revocation of the correction takes every version out at once; a repair of P-7 is too early */
  snprintf(body, sizeof body,
           "[" REC("penalty",
                   ",\"action\":\"revocation\",\"ref\":{\"region\":\"310000\",\"seq\":"
                   "0}") "," REC("repair", ",\"ref\":{\"region\":\"310000\",\"seq\":7}") "]");
  json_decref(submit(body));
  ck_lookup(NULL, "7,6", "11,10,9,8,5,4,3,2,1,0");
  ck_record(1, 0, 0);
}
END_TEST

/* ---- four regions: replicas fold from the facts they build when they commit --------------------
 */

static char c_dir[512];
static json_t *c_cluster;

static const char *cnode(int i, const char *k) {
  return json_string_value(
      json_object_get(json_array_get(json_object_get(c_cluster, "nodes"), (size_t)i), k));
}

static void cluster_setup(void) {
  char p[600];
  json_error_t e;
  ck_assert_int_eq(sj_crypto_init(), 0);
  sj_log_set_level(SJ_LOG_LEVEL_ERR);
  sj_test_tmpdir(c_dir, sizeof c_dir, "credit-cluster");
  srand((unsigned)getpid() ^ (unsigned)wall_ms());
  int base = 24000 + (rand() % 990) * 8; /* its own range: test_cluster.c's setup says why */
  int rv = sj_test_sh("%s/sanjiao cluster up --dir %s --base-port %d >>%s/up.log 2>&1",
                      getenv("SJ_BIN"), c_dir, base, c_dir);
  if (rv)
    sj_test_sh("cat %s/up.log %s/*/node.log >&2", c_dir, c_dir);
  ck_assert_int_eq(rv, 0);
  snprintf(p, sizeof p, "%s/cluster.json", c_dir);
  c_cluster = json_load_file(p, 0, &e);
  ck_assert_ptr_nonnull(c_cluster);
}

static void cluster_teardown(void) {
  sj_test_sh("%s/sanjiao cluster down --dir %s >/dev/null 2>&1", getenv("SJ_BIN"), c_dir);
  sj_test_rmtree(c_dir);
  json_decref(c_cluster);
  c_cluster = NULL;
}

static int cfetch(int i, const char *method, const char *path, const char *token, const char *body,
                  sj_buf_t *out) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", cnode(i, "url"), path);
  sj_test_req_t r = {.method = method,
                     .token = token,
                     .ctype = body ? "application/json" : NULL,
                     .body = body,
                     .timeout_ms = 60000};
  return sj_test_fetch(url, &r, out);
}

static void csubmit(int i, const char *array) {
  sj_buf_t b = {0};
  int st = cfetch(i, "POST", "/v1/records", cnode(i, "submit_token"), array, &b);
  ck_assert_msg(st == 201, "submit to node %d: %d %.*s", i, st, (int)b.n, (const char *)b.p);
  sj_buf_deinit(&b);
}

/* Waits (at most 60 s) until node i holds size entries of region. */
static void cwait(int i, const char *region, uint64_t size) {
  for (int t = 0; t < 3000; t++) {
    sj_buf_t b = {0};
    uint64_t have = 0;
    if (cfetch(i, "GET", "/v1/status", NULL, NULL, &b) == 200) {
      json_t *j = jparse(&b), *it;
      size_t k;
      json_array_foreach(json_object_get(j, "regions"), k, it) {
        if (!strcmp(json_string_value(json_object_get(it, "region")), region))
          have = (uint64_t)json_integer_value(json_object_get(it, "local_size"));
      }
      json_decref(j);
    }
    sj_buf_deinit(&b);
    if (have >= size)
      return;
    sj_test_sleep_ms(20);
  }
  ck_abort_msg("node %d never held %llu entries of %s", i, (unsigned long long)size, region);
}

/* "region/seq" of the records node i shows (and, in withheld, those it lists but withholds). */
static void clookup(int i, const char *token, char *out, size_t cap, char *withheld, size_t wcap) {
  sj_buf_t b = {0};
  ck_assert_int_eq(cfetch(i, "GET", "/v1/subjects/" USCC1, token, NULL, &b), 200);
  json_t *r = jparse(&b), *it;
  size_t k, o = 0, w = 0;
  out[0] = withheld[0] = 0;
  json_array_foreach(json_object_get(r, "records"), k, it) {
    const char *reg = json_string_value(json_object_get(it, "region"));
    long long seq = json_integer_value(json_object_get(it, "seq"));
    if (json_object_get(it, "record"))
      o += (size_t)snprintf(out + o, cap - o, "%s%s/%lld", o ? "," : "", reg, seq);
    else
      w += (size_t)snprintf(withheld + w, wcap - w, "%s%s/%lld", w ? "," : "", reg, seq);
  }
  json_decref(r);
  sj_buf_deinit(&b);
}

START_TEST(replicas_fold_cross_region_corrections_revocations_and_repairs_alike) {
  char body[4096];
  /* Shanghai decides three penalties; Jiangsu corrects the first and revokes the second; Zhejiang
   * repairs the third; Anhui only holds replicas. */
  snprintf(
      body, sizeof body,
      "[" REC("penalty", ",\"decision\":{\"number\":\"S-0\",\"date\":\"%s\"}") "," REC(
          "penalty", ",\"decision\":{\"number\":\"S-1\",\"date\":\"%s\"}") "," REC("penalty",
                                                                                   ",\"decision\":{"
                                                                                   "\"number\":\"S-"
                                                                                   "2\",\"date\":"
                                                                                   "\"%s\"}") "]",
      day(-200), day(-200), day(-200));
  csubmit(0, body);
  for (int i = 1; i < 4; i++)
    cwait(i, "310000", 3);
  snprintf(
      body, sizeof body,
      "[" REC(
          "penalty",
          ",\"action\":\"correction\",\"ref\":{\"region\":\"310000\",\"seq\":0},"
          "\"decision\":{\"number\":\"S-0 corrected\",\"date\":\"%s\"}") "," REC("penalty",
                                                                                 ",\"action\":"
                                                                                 "\"revocation\","
                                                                                 "\"ref\":{"
                                                                                 "\"region\":"
                                                                                 "\"310000\","
                                                                                 "\"seq\":1}") "]",
      day(-200));
  csubmit(1, body);
  snprintf(body, sizeof body,
           "[" REC("repair",
                   ",\"ref\":{\"region\":\"310000\",\"seq\":2},\"decision\":{\"date\":\"%s\"}") "]",
           day(-1));
  csubmit(2, body);
  for (int i = 0; i < 4; i++) {
    cwait(i, "310000", 3);
    cwait(i, "320000", 2);
    cwait(i, "330000", 1);
  }
  for (int i = 0; i < 4; i++) {
    char got[512], wh[512];
    clookup(i, NULL, got, sizeof got, wh, sizeof wh);
    ck_assert_msg(!strcmp(got, "320000/0"), "node %d shows the public %s", i, got);
    clookup(i, cnode(i, "authority_token"), got, sizeof got, wh, sizeof wh);
    ck_assert_msg(!strcmp(wh, ""), "node %d withholds %s from an authority", i, wh);
    ck_assert_uint_eq(strlen(got), strlen("330000/0,320000/1,320000/0,310000/2,310000/1,310000/0"));
  }
}
END_TEST

static Suite *credit_suite(void) {
  Suite *s = suite_create("credit");
  TCase *t = tcase_create("rules");
  tcase_add_test(t, embedded_rules_parse_and_match_their_files);
  tcase_add_test(t, dates_are_calendar_days_in_china_standard_time);
  suite_add_tcase(s, t);
  t = tcase_create("validation");
  tcase_add_test(t, minimal_and_full_records_are_valid);
  tcase_add_test(t, every_credit_code_names_its_field);
  tcase_add_test(t, ndjson_errors_say_the_line);
  suite_add_tcase(s, t);
  t = tcase_create("fold");
  tcase_add_test(t, penalties_expire_with_their_severity_window);
  tcase_add_test(t, repairs_count_only_after_the_minimum_period);
  tcase_add_test(t, corrections_supersede_and_actions_follow_them);
  tcase_add_test(t, corrections_and_repairs_from_other_regions);
  tcase_add_test(t, revocations_removals_and_unresolved_refs);
  tcase_add_test(t, the_latest_rating_of_each_scheme_is_current);
  tcase_add_test(t, public_windows_respect_disclosure_persons_and_minors);
  tcase_add_test(t, changes_ms_is_the_next_instant_an_entry_can_change);
  tcase_add_test(t, the_header_bound_never_ends_before_the_window);
  tcase_add_test(t, facts_kept_at_append_fold_like_the_bodies_at_any_time);
  tcase_add_test(t, facts_say_whether_the_raw_body_is_its_public_view);
  suite_add_tcase(s, t);
  t = tcase_create("public_view");
  tcase_add_test(t, masking_removes_personal_members_at_any_depth);
  tcase_add_test(t, the_quick_scan_never_misses_what_masking_removes);
  suite_add_tcase(s, t);
  t = tcase_create("audit_store");
  tcase_add_checked_fixture(t, tmpdir_setup, tmpdir_teardown);
  tcase_add_test(t, audit_rows_are_found_per_subject_before_and_after_a_flush);
  suite_add_tcase(s, t);
  t = tcase_create("node");
  tcase_add_checked_fixture(t, node_setup, node_teardown);
  tcase_set_timeout(t, 60);
  tcase_add_test(t, report_folds_the_subjects_entries);
  tcase_add_test(t, the_public_never_sees_a_restricted_field_on_any_endpoint);
  tcase_add_test(t, non_public_reads_are_audited_for_the_subject);
  tcase_add_test(t, lookups_fold_corrections_revocations_and_repairs_from_stored_facts);
  suite_add_tcase(s, t);
  t = tcase_create("cluster");
  tcase_add_checked_fixture(t, cluster_setup, cluster_teardown);
  tcase_set_timeout(t, 180);
  tcase_add_test(t, replicas_fold_cross_region_corrections_revocations_and_repairs_alike);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return sj_test_run_suite(credit_suite());
}
