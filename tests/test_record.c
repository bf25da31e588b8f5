/* tests/test_record.c — the record layer of the node (node/record.h, node/epc.h): the minimal
 * records of the contract, every validation error code with its field pointer and index, arrays and
 * NDJSON, bodies kept byte-exact, Digital Link and EPC URN spellings meeting on one key, and
 * robustness against truncated and mutated input. */
#include "node/epc.h"
#include "node/record.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON "application/json"
#define NDJSON "application/x-ndjson"

static uint8_t hkey[SJ_REC_HMAC_KEY_LEN];
static sj_rec_errors_t errs;
static sj_record_t *recs;
static size_t nrecs;

static void setup(void) {
  memset(hkey, 0x42, sizeof hkey);
  sj_rec_errors_init(&errs, 0);
  recs = NULL;
  nrecs = 0;
}

static void teardown(void) {
  sj_records_free(recs, nrecs);
  recs = NULL;
  nrecs = 0;
  sj_rec_errors_deinit(&errs);
}

/* Parses body with a fresh error list (previous records and errors dropped). */
static int parse_ct(const char *body, const char *ct) {
  teardown();
  setup();
  return sj_record_parse_request((const uint8_t *)body, strlen(body), ct, hkey, 0, &recs, &nrecs,
                                 &errs);
}

static int parse(const char *body) {
  return parse_ct(body, JSON);
}

static void dump_errors(void) {
  for (size_t i = 0; i < errs.n; i++)
    fprintf(stderr, "  [%zu] %s %s: %s\n", errs.v[i].index, errs.v[i].field, errs.v[i].code,
            errs.v[i].message);
}

/* The body must fail with exactly one error: code at field of record index. */
static void expect_only(int want_rv, const char *body, const char *ct, size_t index,
                        const char *field, const char *code) {
  int rv = parse_ct(body, ct);
  if (rv != want_rv || errs.n != 1)
    dump_errors();
  ck_assert_msg(rv == want_rv, "rv %d want %d for %s", rv, want_rv, body);
  ck_assert_msg(errs.n == 1, "%zu errors for %s", errs.n, body);
  ck_assert_str_eq(errs.v[0].code, code);
  ck_assert_str_eq(errs.v[0].field, field);
  ck_assert_uint_eq(errs.v[0].index, index);
  ck_assert_ptr_null(recs);
}

/* A single JSON record that breaks one rule. */
static void expect_rec(const char *body, const char *field, const char *code) {
  expect_only(SJ_EINVAL, body, JSON, 0, field, code);
}

/* The body fails and one of its errors is code at field of record index. */
static void expect_has(const char *body, const char *ct, size_t index, const char *field,
                       const char *code) {
  ck_assert_int_ne(parse_ct(body, ct), 0);
  for (size_t i = 0; i < errs.n; i++)
    if (errs.v[i].index == index && strcmp(errs.v[i].field, field) == 0 &&
        strcmp(errs.v[i].code, code) == 0)
      return;
  dump_errors();
  ck_abort_msg("no %s at [%zu]%s", code, index, field);
}

/* ---- Record builders ---------------------------------------------------------------------------
 */

#define USCC "91310115MA1K00007Q"
#define PID "11010519491231002X"

static char cbuf[1024]; /* credit() result */
static char tbuf[8192]; /* trace_ev() result */

static const char *credit(const char *type, const char *stype, const char *id) {
  snprintf(cbuf, sizeof cbuf,
           "{\"kind\":\"credit\",\"type\":\"%s\",\"subject\":{\"type\":\"%s\",\"id\":\"%s\","
           "\"name\":\"上海某某食品有限公司\"},\"disclosure\":\"public\"}",
           type, stype, id);
  return cbuf;
}

/* A trace record whose event members are the given JSON text (without braces). */
static const char *trace_ev(const char *members) {
  snprintf(tbuf, sizeof tbuf, "{\"kind\":\"trace\",\"event\":{%s}}", members);
  return tbuf;
}

#define EV_HEAD                                                                                    \
  "\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-01T08:30:00.000+08:00\","                      \
  "\"eventTimeZoneOffset\":\"+08:00\",\"action\":\"OBSERVE\""
#define SGTIN "urn:epc:id:sgtin:9506000.013435.1001"

/* An ObjectEvent with one epcList entry (JSON text, quoted if a string). */
static const char *trace_epc(const char *epc_json) {
  static char members[4096];
  snprintf(members, sizeof members, EV_HEAD ",\"epcList\":[%s]", epc_json);
  return trace_ev(members);
}

/* ---- Minimal records of the contract ------------------------------------------------------------
 */

START_TEST(test_minimal_credit_enterprise_is_valid) {
  const char *body = credit("penalty", "enterprise", USCC);
  ck_assert_int_eq(parse(body), 0);
  ck_assert_uint_eq(nrecs, 1);
  sj_record_t *r = &recs[0];
  ck_assert_uint_eq(r->kind, SJ_KIND_CREDIT);
  ck_assert_str_eq(r->type, "penalty");
  ck_assert_uint_eq(r->type_len, 7);
  ck_assert_uint_eq(r->disclosure, SJ_DISCLOSE_PUBLIC);
  ck_assert_uint_eq(r->subject_type, SJ_SUBJECT_ENTERPRISE);
  ck_assert_str_eq(r->subject_id, USCC);
  ck_assert_uint_eq(r->nkeys, 1);
  ck_assert_uint_eq(r->keys[0].type, SJ_KEY_USCC);
  ck_assert_uint_eq(r->keys[0].len, 18);
  ck_assert_int_eq(memcmp(r->keys[0].p, USCC, 18), 0);
  ck_assert_uint_eq(r->body_len, strlen(body));
  ck_assert_int_eq(memcmp(r->body, body, r->body_len), 0);
  uint8_t h[SJ_HASH_LEN];
  sj_sha256(body, strlen(body), h);
  ck_assert_int_eq(memcmp(h, r->body_hash, SJ_HASH_LEN), 0);
  ck_assert_uint_eq(errs.n, 0);
}
END_TEST

START_TEST(test_every_credit_and_subject_type_is_valid) {
  static const char *types[] = {"penalty",         "blacklist",  "abnormal_list", "rating",
                                "procurement_ban", "commitment", "commendation",  "repair"};
  static const char *stypes[] = {"enterprise", "organisation", "individual_business"};
  static const char *disc[] = {"public", "authorities", "subject"};
  for (size_t i = 0; i < 8; i++) {
    ck_assert_int_eq(parse(credit(types[i], stypes[i % 3], USCC)), 0);
    ck_assert_str_eq(recs[0].type, types[i]);
    ck_assert_uint_eq(recs[0].subject_type, SJ_SUBJECT_ENTERPRISE + i % 3);
  }
  for (int d = 0; d < 3; d++) {
    char b[512];
    snprintf(b, sizeof b,
             "{\"kind\":\"credit\",\"type\":\"rating\",\"subject\":{\"type\":\"organisation\","
             "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"%s\",\"extra\":{\"a\":[1,2]}}",
             disc[d]);
    ck_assert_int_eq(parse(b), 0);
    ck_assert_uint_eq(recs[0].disclosure, (unsigned)d);
  }
}
END_TEST

START_TEST(test_person_key_is_hmac_never_the_number) {
  ck_assert_int_eq(parse(credit("blacklist", "person", PID)), 0);
  sj_record_t *r = &recs[0];
  ck_assert_uint_eq(r->subject_type, SJ_SUBJECT_PERSON);
  ck_assert_uint_eq(r->nkeys, 1);
  ck_assert_uint_eq(r->keys[0].type, SJ_KEY_PERSON);
  ck_assert_uint_eq(r->keys[0].len, 32);
  /* HMAC-SHA256(0x42 * 32, PID), computed independently (Python hmac). */
  uint8_t want[32];
  ck_assert_int_eq(sj_hex_decode("2e4a11e47c3d64591e0abf7ca801db3ba14849c9d1873d660433ed0ce3107246",
                                 64, want, 32),
                   0);
  ck_assert_int_eq(memcmp(r->keys[0].p, want, 32), 0);
  uint8_t k[32];
  ck_assert_int_eq(sj_record_person_key(hkey, PID, 18, k), 0);
  ck_assert_int_eq(memcmp(k, want, 32), 0);
  ck_assert_int_eq(sj_record_person_key(hkey, "110105194912310021", 18, k), SJ_EINVAL);
  sj_entry_header_t h;
  memset(&h, 0, sizeof h);
  sj_record_header_fill(r, &h);
  ck_assert_uint_eq(h.kind, SJ_KIND_CREDIT);
  ck_assert_uint_eq(h.type_len, 9);
  ck_assert_int_eq(memcmp(h.type, "blacklist", 9), 0);
  ck_assert_uint_eq(h.nkeys, 1);
  ck_assert_ptr_eq(h.keys, r->keys);
  ck_assert_uint_eq(h.body_len, r->body_len);
  ck_assert_int_eq(memcmp(h.body_hash, r->body_hash, 32), 0);
}
END_TEST

START_TEST(test_minimal_trace_is_valid) {
  const char *body = trace_ev(EV_HEAD ",\"epcList\":[\"" SGTIN "\"],\"bizStep\":\"shipping\","
                                      "\"readPoint\":{\"id\":\"urn:epc:id:sgln:9506000.13435.0\"}");
  ck_assert_int_eq(parse(body), 0);
  sj_record_t *r = &recs[0];
  ck_assert_uint_eq(r->kind, SJ_KIND_TRACE);
  ck_assert_str_eq(r->type, "ObjectEvent");
  ck_assert_uint_eq(r->disclosure, SJ_DISCLOSE_PUBLIC);
  ck_assert_uint_eq(r->subject_type, SJ_SUBJECT_NONE);
  ck_assert_int_eq(r->event_time_ms, 1714523400000LL); /* 2024-05-01T00:30:00Z */
  ck_assert_uint_eq(r->nkeys, 2);
  ck_assert_uint_eq(r->keys[0].type, SJ_KEY_EPC);
  ck_assert_int_eq(memcmp(r->keys[0].p, SGTIN, strlen(SGTIN)), 0);
  ck_assert_uint_eq(r->keys[0].len, strlen(SGTIN));
  ck_assert_int_eq(memcmp(r->keys[1].p, "urn:epc:id:sgln:9506000.13435.0", r->keys[1].len), 0);
  /* disclosure given explicitly */
  ck_assert_int_eq(parse("{\"kind\":\"trace\",\"disclosure\":\"authorities\",\"event\":{" EV_HEAD
                         ",\"epcList\":[\"" SGTIN "\"]}}"),
                   0);
  ck_assert_uint_eq(recs[0].disclosure, SJ_DISCLOSE_AUTHORITIES);
}
END_TEST

START_TEST(test_every_event_type_and_identifier_field_is_indexed) {
  const char *agg = trace_ev(
      "\"type\":\"AggregationEvent\",\"eventTime\":\"2024-05-01T00:00:00Z\","
      "\"eventTimeZoneOffset\":\"+00:00\",\"action\":\"ADD\","
      "\"parentID\":\"urn:epc:id:sscc:0614141.1123456789\","
      "\"childEPCs\":[\"urn:epc:id:sgtin:9506000.013435.1\",\"urn:epc:id:sgtin:9506000.013435.2\"],"
      "\"childQuantityList\":[{\"epcClass\":\"urn:epc:class:lgtin:9506000.013435.L1\",\"quantity\":"
      "5}],"
      "\"bizLocation\":{\"id\":\"https://id.gs1.org/414/9506000134352/254/7\"}");
  ck_assert_int_eq(parse(agg), 0);
  ck_assert_str_eq(recs[0].type, "AggregationEvent");
  ck_assert_uint_eq(recs[0].nkeys, 5);
  ck_assert_int_eq(memcmp(recs[0].keys[0].p, "urn:epc:id:sscc:0614141.1123456789", 34), 0);
  ck_assert_int_eq(memcmp(recs[0].keys[4].p, "urn:epc:id:sgln:9506000.13435.7", 31), 0);
  const char *tf = trace_ev(
      "\"type\":\"TransformationEvent\",\"eventTime\":\"2024-05-01T00:00:00.5-05:30\","
      "\"eventTimeZoneOffset\":\"-05:30\","
      "\"inputEPCList\":[\"urn:epc:id:grai:9506000.13435.C1\"],"
      "\"outputEPCList\":[\"https://id.gs1.org/01/09506000134352/21/X9\"],"
      "\"inputQuantityList\":[{\"epcClass\":\"https://id.gs1.org/01/09506000134352/10/L2\","
      "\"quantity\":2.5,\"uom\":\"KGM\"}],"
      "\"outputQuantityList\":[{\"epcClass\":\"urn:epc:idpat:sgtin:9506000.013435.*\"}],"
      "\"quantityList\":[]");
  ck_assert_int_eq(parse(tf), 0);
  ck_assert_str_eq(recs[0].type, "TransformationEvent");
  ck_assert_uint_eq(recs[0].nkeys, 4);
  ck_assert_int_eq(recs[0].event_time_ms, 1714521600000LL + 5 * 3600000LL + 30 * 60000LL + 500);
  static const char *others[] = {"TransactionEvent", "AssociationEvent"};
  for (int i = 0; i < 2; i++) {
    char m[512];
    snprintf(m, sizeof m,
             "\"type\":\"%s\",\"eventTime\":\"2024-02-29T23:59:59+14:00\","
             "\"eventTimeZoneOffset\":\"-14:00\",\"action\":\"DELETE\",\"epcList\":[\"" SGTIN "\"]",
             others[i]);
    ck_assert_int_eq(parse(trace_ev(m)), 0);
    ck_assert_str_eq(recs[0].type, others[i]);
  }
}
END_TEST

START_TEST(test_spellings_of_one_item_make_one_key) {
  const char *body = trace_ev(EV_HEAD ",\"epcList\":[\"" SGTIN "\","
                                      "\"https://id.gs1.org/01/09506000134352/21/1001\","
                                      "\"urn:epc:id:sgtin:950600.0013435.1001\","
                                      "\"https://example.com/p/01/9506000134352/10/L/21/1001\"]");
  ck_assert_int_eq(parse(body), 0);
  ck_assert_uint_eq(recs[0].nkeys, 1);
  ck_assert_int_eq(memcmp(recs[0].keys[0].p, SGTIN, strlen(SGTIN)), 0);
}
END_TEST

/* ---- Error codes
 * ---------------------------------------------------------------------------------- */

START_TEST(test_missing_and_mistyped_fields) {
  expect_rec("{\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\",\"id\":\"" USCC
             "\",\"name\":\"x\"},\"disclosure\":\"public\"}",
             "/kind", "FIELD_MISSING");
  expect_rec("{\"kind\":1}", "/kind", "FIELD_TYPE");
  expect_rec("{\"kind\":\"credit\",\"subject\":{\"type\":\"enterprise\",\"id\":\"" USCC
             "\",\"name\":\"x\"},\"disclosure\":\"public\"}",
             "/type", "FIELD_MISSING");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"disclosure\":\"public\"}", "/subject",
             "FIELD_MISSING");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":\"" USCC
             "\",\"disclosure\":\"public\"}",
             "/subject", "FIELD_TYPE");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"id\":\"" USCC
             "\",\"name\":\"x\"},\"disclosure\":\"public\"}",
             "/subject/type", "FIELD_MISSING");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"name\":\"x\"},\"disclosure\":\"public\"}",
             "/subject/id", "FIELD_MISSING");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":91310115,\"name\":\"x\"},\"disclosure\":\"public\"}",
             "/subject/id", "FIELD_TYPE");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\"},\"disclosure\":\"public\"}",
             "/subject/name", "FIELD_MISSING");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"\"},\"disclosure\":\"public\"}",
             "/subject/name", "FIELD_EMPTY");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"x\"}}",
             "/disclosure", "FIELD_MISSING");
  expect_rec("{\"kind\":\"trace\"}", "/event", "FIELD_MISSING");
  expect_rec("{\"kind\":\"trace\",\"event\":[]}", "/event", "FIELD_TYPE");
  expect_rec(trace_ev("\"eventTime\":\"2024-05-01T00:00:00Z\",\"eventTimeZoneOffset\":\"+00:00\","
                      "\"epcList\":[\"" SGTIN "\"]"),
             "/event/type", "FIELD_MISSING");
  expect_rec(trace_ev("\"type\":\"ObjectEvent\",\"eventTimeZoneOffset\":\"+00:00\","
                      "\"action\":\"ADD\",\"epcList\":[\"" SGTIN "\"]"),
             "/event/eventTime", "FIELD_MISSING");
  expect_rec(trace_ev("\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-01T00:00:00Z\","
                      "\"action\":\"ADD\",\"epcList\":[\"" SGTIN "\"]"),
             "/event/eventTimeZoneOffset", "FIELD_MISSING");
  expect_rec(trace_ev("\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-01T00:00:00Z\","
                      "\"eventTimeZoneOffset\":\"+00:00\",\"epcList\":[\"" SGTIN "\"]"),
             "/event/action", "FIELD_MISSING");
  expect_rec(trace_ev(EV_HEAD ",\"epcList\":\"" SGTIN "\""), "/event/epcList", "FIELD_TYPE");
  expect_rec(trace_epc("42"), "/event/epcList/0", "FIELD_TYPE");
  expect_rec(trace_ev(EV_HEAD ",\"parentID\":[\"" SGTIN "\"]"), "/event/parentID", "FIELD_TYPE");
  expect_rec(trace_ev(EV_HEAD ",\"quantityList\":[{\"quantity\":1}]"),
             "/event/quantityList/0/epcClass", "FIELD_MISSING");
  expect_rec(trace_ev(EV_HEAD ",\"quantityList\":[\"x\"]"), "/event/quantityList/0", "FIELD_TYPE");
  expect_rec(trace_ev(EV_HEAD ",\"quantityList\":{}"), "/event/quantityList", "FIELD_TYPE");
  expect_rec(trace_ev(EV_HEAD ",\"quantityList\":[{\"epcClass\":\"urn:epc:class:lgtin:9506000."
                              "013435.L\",\"quantity\":\"5\"}]"),
             "/event/quantityList/0/quantity", "FIELD_TYPE");
  expect_rec(trace_ev(EV_HEAD ",\"epcList\":[\"" SGTIN "\"],\"readPoint\":\"x\""),
             "/event/readPoint", "FIELD_TYPE");
  expect_rec(trace_ev(EV_HEAD ",\"epcList\":[\"" SGTIN "\"],\"bizLocation\":{}"),
             "/event/bizLocation/id", "FIELD_MISSING");
}
END_TEST

START_TEST(test_enums) {
  expect_rec("{\"kind\":\"credits\"}", "/kind", "KIND_INVALID");
  expect_rec(credit("fine", "enterprise", USCC), "/type", "CREDIT_TYPE_INVALID");
  expect_rec(credit("Penalty", "enterprise", USCC), "/type", "CREDIT_TYPE_INVALID");
  expect_rec(credit("penalty", "company", USCC), "/subject/type", "SUBJECT_TYPE_INVALID");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"everyone\"}",
             "/disclosure", "DISCLOSURE_INVALID");
  expect_rec("{\"kind\":\"trace\",\"disclosure\":\"secret\",\"event\":{" EV_HEAD
             ",\"epcList\":[\"" SGTIN "\"]}}",
             "/disclosure", "DISCLOSURE_INVALID");
  expect_rec(trace_ev("\"type\":\"objectEvent\",\"eventTime\":\"2024-05-01T00:00:00Z\","
                      "\"eventTimeZoneOffset\":\"+00:00\",\"epcList\":[\"" SGTIN "\"]"),
             "/event/type", "EVENT_TYPE_INVALID");
  expect_rec(trace_ev("\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-01T00:00:00Z\","
                      "\"eventTimeZoneOffset\":\"+00:00\",\"action\":\"add\","
                      "\"epcList\":[\"" SGTIN "\"]"),
             "/event/action", "EVENT_ACTION_INVALID");
}
END_TEST

START_TEST(test_subject_identifiers) {
  expect_rec(credit("penalty", "enterprise", "91310115MA1K00007"), "/subject/id", "USCC_LENGTH");
  expect_rec(credit("penalty", "enterprise", "91310115ma1k00007q"), "/subject/id", "USCC_CHARSET");
  expect_rec(credit("penalty", "enterprise", "0131011500000000A1"), "/subject/id",
             "USCC_STRUCTURE");
  expect_rec(credit("penalty", "organisation", "91310115MA1K00007R"), "/subject/id",
             "USCC_CHECKSUM");
  expect_rec(credit("penalty", "individual_business", PID), "/subject/id", "USCC_CHECKSUM");
  expect_rec(credit("penalty", "person", "1101051949123100"), "/subject/id", "ID_LENGTH");
  expect_rec(credit("penalty", "person", "11010519491231002x"), "/subject/id", "ID_CHARSET");
  expect_rec(credit("penalty", "person", "110105194913310021"), "/subject/id",
             "ID_BIRTHDATE_INVALID");
  expect_rec(credit("penalty", "person", "110105194912310021"), "/subject/id", "ID_CHECKSUM");
  /* Error messages never echo a person's number. */
  ck_assert_ptr_null(strstr(errs.v[0].message, "110105194912310021"));
  expect_rec(credit("penalty", "person", USCC), "/subject/id", "ID_CHARSET");
}
END_TEST

START_TEST(test_gtin_fields_anywhere) {
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"public\","
             "\"product\":{\"gtin\":\"10614141073465\"}}",
             "/product/gtin", "GTIN_CHECKSUM");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"public\","
             "\"items\":[{\"gtin\":\"10614141073464\"},{\"gtin\":\"1061414107346\"}]}",
             "/items/1/gtin", "GTIN_CHECKSUM");
  /* a multi-digit array index in the pointer */
  char big[1024];
  size_t n = (size_t)snprintf(big, sizeof big,
                              "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":"
                              "\"enterprise\",\"id\":\"" USCC "\",\"name\":\"x\"},"
                              "\"disclosure\":\"public\",\"items\":[");
  for (int i = 0; i < 120; i++)
    n += (size_t)snprintf(big + n, sizeof big - n, "%s{}", i ? "," : "");
  snprintf(big + n, sizeof big - n, ",{\"gtin\":\"1061414107346\"}]}");
  expect_rec(big, "/items/120/gtin", "GTIN_CHECKSUM");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"public\",\"a/b\":{\"gtin\":"
             "\"123\"}}",
             "/a~1b/gtin", "GTIN_LENGTH");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"public\",\"gtin\":"
             "\"0950600013435A\"}",
             "/gtin", "GTIN_CHARSET");
  expect_rec("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
             "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"public\",\"gtin\":"
             "9506000134352}",
             "/gtin", "FIELD_TYPE");
  /* GTIN-8, -12, -13 and -14 are all accepted. */
  ck_assert_int_eq(parse("{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":"
                         "\"enterprise\",\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":"
                         "\"public\",\"p\":[{\"gtin\":\"96385074\"},{\"gtin\":\"036000291452\"},"
                         "{\"gtin\":\"4006381333931\"},{\"gtin\":\"09506000134352\"}]}"),
                   0);
}
END_TEST

START_TEST(test_event_time_rules) {
  static const char *bad[] = {
      "2024-05-01T08:30:00",
      "2024-05-01 08:30:00+08:00",
      "2024-13-01T08:30:00Z",
      "2023-02-29T08:30:00Z",
      "2024-05-01T24:00:00Z",
      "2024-05-01T08:60:00Z",
      "2024-05-01T08:30:00.Z",
      "2024-05-01T08:30:00+0800",
      "2024-05-01T08:30:00+24:00",
      "2024-5-01T08:30:00Z",
      "2024-05-01T08:30:00ZZ",
      "2024-05-01T08:30:00.1234567890Z",
      "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char m[512];
    snprintf(m, sizeof m,
             "\"type\":\"ObjectEvent\",\"eventTime\":\"%s\",\"eventTimeZoneOffset\":\"+08:00\","
             "\"action\":\"ADD\",\"epcList\":[\"" SGTIN "\"]",
             bad[i]);
    expect_rec(trace_ev(m), "/event/eventTime", "EVENT_TIME_INVALID");
  }
  static const char *badz[] = {"+8:00", "+15:00", "+14:30", "08:00", "Z", "+08:00 ", "+08:60"};
  for (size_t i = 0; i < sizeof badz / sizeof badz[0]; i++) {
    char m[512];
    snprintf(m, sizeof m,
             "\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-01T08:30:00Z\","
             "\"eventTimeZoneOffset\":\"%s\",\"action\":\"ADD\",\"epcList\":[\"" SGTIN "\"]",
             badz[i]);
    expect_rec(trace_ev(m), "/event/eventTimeZoneOffset", "EVENT_TIME_ZONE_OFFSET_INVALID");
  }
  /* Fractions and lower-case separators are RFC 3339; times before 1970 work. */
  ck_assert_int_eq(parse(trace_ev("\"type\":\"ObjectEvent\",\"eventTime\":"
                                  "\"1969-12-31t23:59:59.999999z\",\"eventTimeZoneOffset\":"
                                  "\"+14:00\",\"action\":\"ADD\",\"epcList\":[\"" SGTIN "\"]")),
                   0);
  ck_assert_int_eq(recs[0].event_time_ms, -1);
}
END_TEST

START_TEST(test_epc_error_codes_in_events) {
  expect_rec(trace_epc("\"urn:uuid:1234\""), "/event/epcList/0", "EPC_FORMAT");
  expect_rec(trace_epc("\"https://example.com/products/123\""), "/event/epcList/0", "EPC_FORMAT");
  expect_rec(trace_epc("\"urn:epc:id:giai:9506000.123\""), "/event/epcList/0",
             "EPC_SCHEME_UNSUPPORTED");
  expect_rec(trace_epc("\"urn:epc:id:sgtin:9506000.01343.1\""), "/event/epcList/0", "EPC_DIGITS");
  expect_rec(trace_epc("\"urn:epc:id:sgtin:9506000.01343A.1\""), "/event/epcList/0", "EPC_DIGITS");
  expect_rec(trace_epc("\"urn:epc:id:sgtin:95060.00134352.1\""), "/event/epcList/0",
             "EPC_COMPANY_PREFIX_LENGTH");
  expect_rec(trace_epc("\"urn:epc:id:sgtin:9506000.013435.a/b\""), "/event/epcList/0",
             "EPC_SERIAL_INVALID");
  expect_rec(trace_epc("\"urn:epc:id:sgtin:9506000.013435.\""), "/event/epcList/0",
             "EPC_SERIAL_INVALID");
  expect_rec(trace_epc("\"https://id.gs1.org/01/09506000134352/99/x\""), "/event/epcList/0",
             "DL_PATH_INVALID");
  expect_rec(trace_epc("\"https://id.gs1.org/01/09506000134353/21/1\""), "/event/epcList/0",
             "GTIN_CHECKSUM");
  expect_rec(trace_epc("\"https://id.gs1.org/01/0950600013435/21/1\""), "/event/epcList/0",
             "GTIN_CHECKSUM");
  expect_rec(trace_epc("\"https://id.gs1.org/01/950600013435212/21/1\""), "/event/epcList/0",
             "GTIN_LENGTH");
  expect_rec(trace_epc("\"https://id.gs1.org/00/106141411234567898\""), "/event/epcList/0",
             "GS1_CHECK_DIGIT");
  expect_rec(trace_epc("\"urn:epc:class:lgtin:9506000.013435.L1\""), "/event/epcList/0",
             "EPC_WRONG_KIND");
  expect_rec(trace_ev(EV_HEAD ",\"quantityList\":[{\"epcClass\":\"" SGTIN "\"}]"),
             "/event/quantityList/0/epcClass", "EPC_WRONG_KIND");
  expect_rec(trace_ev(EV_HEAD ",\"epcList\":[\"" SGTIN "\"],\"readPoint\":{\"id\":\"" SGTIN "\"}"),
             "/event/readPoint/id", "EPC_WRONG_KIND");
  expect_rec(trace_ev(EV_HEAD ",\"epcList\":[],\"bizStep\":\"shipping\""), "/event",
             "EVENT_WHAT_MISSING");
}
END_TEST

START_TEST(test_too_many_identifiers) {
  sj_buf_t b;
  sj_buf_init(&b);
  ck_assert_int_eq(
      sj_buf_append_str(&b, "{\"kind\":\"trace\",\"event\":{" EV_HEAD ",\"epcList\":["), 0);
  for (int i = 0; i <= SJ_ENTRY_MAX_KEYS; i++)
    ck_assert_int_eq(sj_buf_printf(&b, "%s\"urn:epc:id:sgtin:9506000.013435.%d\"", i ? "," : "", i),
                     0);
  ck_assert_int_eq(sj_buf_append_str(&b, "]}}"), 0);
  expect_rec((const char *)b.p, "/event", "EVENT_TOO_MANY_EPCS");
  sj_buf_deinit(&b);
}
END_TEST

/* ---- Request level ------------------------------------------------------------------------------
 */

START_TEST(test_request_level_errors) {
  const char *ok = credit("penalty", "enterprise", USCC);
  expect_only(SJ_EPROTO, ok, "text/plain", 0, "", "CONTENT_TYPE_UNSUPPORTED");
  expect_only(SJ_EPROTO, ok, NULL, 0, "", "CONTENT_TYPE_UNSUPPORTED");
  expect_only(SJ_EPROTO, ok, "application/json; charset=iso-8859-1", 0, "",
              "CONTENT_TYPE_UNSUPPORTED");
  expect_only(SJ_EPROTO, ok, "application/jsonx", 0, "", "CONTENT_TYPE_UNSUPPORTED");
  ck_assert_int_eq(parse_ct(ok, "Application/JSON; charset=\"UTF-8\""), 0);
  ck_assert_int_eq(parse_ct(ok, "application/ndjson"), 0);
  expect_only(SJ_EFORMAT, "", JSON, 0, "", "BODY_EMPTY");
  expect_only(SJ_EFORMAT, " \r\n ", JSON, 0, "", "BODY_EMPTY");
  expect_only(SJ_EFORMAT, "[ ]", JSON, 0, "", "BODY_EMPTY");
  expect_only(SJ_EFORMAT, "\n \r\n\n", NDJSON, 0, "", "BODY_EMPTY");
  expect_only(SJ_EFORMAT, "42", JSON, 0, "", "BODY_NOT_RECORDS");
  expect_only(SJ_EFORMAT, "\"x\"", JSON, 0, "", "BODY_NOT_RECORDS");
  expect_only(SJ_EINVAL, "\"x\"\n", NDJSON, 0, "", "RECORD_NOT_OBJECT");
  expect_only(SJ_EFORMAT, "{\"kind\":\"credit\"", JSON, 0, "", "JSON_SYNTAX");
  expect_only(SJ_EFORMAT, "{\"kind\":\"credit\"} x", JSON, 0, "", "JSON_SYNTAX");
  expect_only(SJ_EFORMAT, "{\"kind\":\"credit\",\"kind\":\"trace\"}", JSON, 0, "",
              "JSON_DUPLICATE_KEY");
  expect_only(SJ_EFORMAT, "[{\"a\":{\"b\":1,\"b\":2}}]", JSON, 0, "", "JSON_DUPLICATE_KEY");
  /* In NDJSON a bad line is that record's error; the others are still validated. */
  char nd[4096];
  snprintf(nd, sizeof nd, "%s\n{\"subject\":{\"id\":1,\"id\":2}}\n%s\n", ok, ok);
  expect_only(SJ_EINVAL, nd, NDJSON, 1, "", "JSON_DUPLICATE_KEY");
  ck_assert_ptr_nonnull(strstr(errs.v[0].message, "line 2"));
  /* More records than allowed. */
  char arr[4096];
  snprintf(arr, sizeof arr, "[%s,%s,%s]", ok, ok, ok);
  teardown();
  setup();
  ck_assert_int_eq(sj_record_parse_request((const uint8_t *)arr, strlen(arr), JSON, hkey, 2, &recs,
                                           &nrecs, &errs),
                   SJ_ETOOBIG);
  ck_assert_str_eq(errs.v[0].code, "TOO_MANY_RECORDS");
  ck_assert_int_eq(sj_record_parse_request((const uint8_t *)arr, strlen(arr), JSON, hkey, 3, &recs,
                                           &nrecs, &errs),
                   0);
  ck_assert_uint_eq(nrecs, 3);
}
END_TEST

START_TEST(test_one_record_reports_all_its_errors) {
  const char *body = "{\"kind\":\"credit\",\"type\":\"fine\",\"subject\":{\"type\":"
                     "\"enterprise\",\"id\":\"91310115MA1K00007R\"},\"disclosure\":7,"
                     "\"gtin\":\"1\"}";
  expect_has(body, JSON, 0, "/type", "CREDIT_TYPE_INVALID");
  expect_has(body, JSON, 0, "/subject/id", "USCC_CHECKSUM");
  expect_has(body, JSON, 0, "/subject/name", "FIELD_MISSING");
  expect_has(body, JSON, 0, "/disclosure", "FIELD_TYPE");
  expect_has(body, JSON, 0, "/gtin", "GTIN_LENGTH");
  ck_assert_uint_eq(errs.n, 5);
}
END_TEST

START_TEST(test_arrays_report_every_bad_index) {
  char ok[sizeof cbuf], bad_uscc[sizeof cbuf];
  snprintf(ok, sizeof ok, "%s", credit("penalty", "enterprise", USCC));
  snprintf(bad_uscc, sizeof bad_uscc, "%s", credit("penalty", "enterprise", "91310115MA1K00007R"));
  char body[8192];
  snprintf(body, sizeof body, "[%s,\n %s, 42,%s,{\"kind\":\"credit\",\"type\":\"x\"}]", ok,
           bad_uscc, ok);
  ck_assert_int_eq(parse(body), SJ_EINVAL);
  ck_assert_ptr_null(recs);
  /* [1] one USCC error, [2] not an object, [4] bad type + subject + disclosure missing */
  ck_assert_uint_eq(errs.n, 5);
  ck_assert_uint_eq(errs.total, 5);
  ck_assert_uint_eq(errs.v[0].index, 1);
  ck_assert_str_eq(errs.v[0].code, "USCC_CHECKSUM");
  ck_assert_uint_eq(errs.v[1].index, 2);
  ck_assert_str_eq(errs.v[1].code, "RECORD_NOT_OBJECT");
  ck_assert_str_eq(errs.v[1].field, "");
  for (int i = 2; i < 5; i++)
    ck_assert_uint_eq(errs.v[i].index, 4);
  ck_assert_str_eq(errs.v[2].field, "/type");
  ck_assert_str_eq(errs.v[3].field, "/subject");
  ck_assert_str_eq(errs.v[4].field, "/disclosure");
}
END_TEST

START_TEST(test_ndjson_reports_index_and_line) {
  char ok[sizeof cbuf];
  snprintf(ok, sizeof ok, "%s", credit("penalty", "enterprise", USCC));
  char body[8192];
  /* lines: 1 ok, 2 empty, 3 ok, 4 bad JSON (record 2), 5 blank, 6 bad disclosure (record 3), 7 ok
   */
  snprintf(body, sizeof body,
           "%s\n\n%s\r\n{\"kind\":\n   \r\n{\"kind\":\"credit\",\"type\":\"rating\",\"subject\":"
           "{\"type\":\"enterprise\",\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"nobody\"}"
           "\n%s",
           ok, ok, ok);
  ck_assert_int_eq(parse_ct(body, NDJSON), SJ_EINVAL);
  ck_assert_uint_eq(errs.n, 2);
  ck_assert_uint_eq(errs.v[0].index, 2);
  ck_assert_str_eq(errs.v[0].code, "JSON_SYNTAX");
  ck_assert_ptr_nonnull(strstr(errs.v[0].message, "line 4"));
  ck_assert_uint_eq(errs.v[1].index, 3);
  ck_assert_str_eq(errs.v[1].code, "DISCLOSURE_INVALID");
  ck_assert_str_eq(errs.v[1].field, "/disclosure");
  ck_assert_ptr_nonnull(strstr(errs.v[1].message, "line 6"));
  /* Without the bad lines: five records, in order, last line without newline. */
  snprintf(body, sizeof body, "%s\n\n%s\r\n%s\n%s\n%s", ok, ok, ok, ok, ok);
  ck_assert_int_eq(parse_ct(body, NDJSON), 0);
  ck_assert_uint_eq(nrecs, 5);
  for (size_t i = 0; i < 5; i++)
    ck_assert_uint_eq(recs[i].index, i);
}
END_TEST

START_TEST(test_error_cap_counts_the_rest) {
  sj_buf_t b;
  sj_buf_init(&b);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(sj_buf_printf(&b, "{\"kind\":\"x%d\"}\n", i), 0);
  teardown();
  sj_rec_errors_init(&errs, 4);
  ck_assert_int_eq(sj_record_parse_request(b.p, b.n, NDJSON, hkey, 0, &recs, &nrecs, &errs),
                   SJ_EINVAL);
  ck_assert_uint_eq(errs.n, 4);
  ck_assert_uint_eq(errs.total, 10);
  ck_assert_uint_eq(errs.v[3].index, 3);
  sj_buf_t out;
  sj_buf_init(&out);
  ck_assert_int_eq(sj_rec_errors_to_json(&errs, &out), 0);
  json_error_t je;
  json_t *arr = json_loadb((const char *)out.p, out.n, 0, &je);
  ck_assert_ptr_nonnull(arr);
  ck_assert_uint_eq(json_array_size(arr), 4);
  json_t *e3 = json_array_get(arr, 3);
  ck_assert_int_eq(json_integer_value(json_object_get(e3, "index")), 3);
  ck_assert_str_eq(json_string_value(json_object_get(e3, "field")), "/kind");
  ck_assert_str_eq(json_string_value(json_object_get(e3, "code")), "KIND_INVALID");
  ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e3, "message")), "line 4"));
  json_decref(arr);
  sj_buf_deinit(&out);
  sj_buf_deinit(&b);
}
END_TEST

/* ---- Bodies
 * --------------------------------------------------------------------------------------- */

#define ODD_RECORD                                                                                 \
  "{ \"kind\" : \"credit\",\n  \"type\":\"penalty\", \"amount\": 1.10, \"big\": "                  \
  "123456789012345678901234567890,\n  \"note\":\"a  b\\u4e0a\\\"\\\\\", \"subject\":{\"type\":"    \
  "\"enterprise\",\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"public\"}"

START_TEST(test_single_object_body_is_exact) {
  const char *body = " \r\n\t" ODD_RECORD " \r\n";
  ck_assert_int_eq(parse(body), 0);
  ck_assert_uint_eq(recs[0].body_len, strlen(ODD_RECORD));
  ck_assert_int_eq(memcmp(recs[0].body, ODD_RECORD, recs[0].body_len), 0);
}
END_TEST

START_TEST(test_ndjson_lines_are_exact) {
  const char *line2 =
      "{\"kind\":\"credit\", \"type\":\"repair\",\"subject\":{\"type\":\"enterprise\","
      "\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"subject\"}";
  char body[4096];
  snprintf(body, sizeof body, "%s\r\n  %s  \r\n", ODD_RECORD, line2);
  /* ODD_RECORD has a newline inside: as NDJSON it is two broken lines. */
  ck_assert_int_eq(parse_ct(body, NDJSON), SJ_EINVAL);
  char one[2048];
  snprintf(one, sizeof one, "%s", ODD_RECORD);
  for (char *p = one; *p; p++)
    if (*p == '\n')
      *p = ' ';
  snprintf(body, sizeof body, "%s\r\n  %s  \r\n", one, line2);
  ck_assert_int_eq(parse_ct(body, NDJSON), 0);
  ck_assert_uint_eq(nrecs, 2);
  ck_assert_uint_eq(recs[0].body_len, strlen(one));
  ck_assert_int_eq(memcmp(recs[0].body, one, strlen(one)), 0);
  ck_assert_uint_eq(recs[1].body_len, strlen(line2));
  ck_assert_int_eq(memcmp(recs[1].body, line2, strlen(line2)), 0);
}
END_TEST

START_TEST(test_array_elements_are_compacted_not_reformatted) {
  const char *compact =
      "{\"kind\":\"credit\",\"type\":\"penalty\",\"amount\":1.10,\"big\":"
      "123456789012345678901234567890,\"note\":\"a  b\\u4e0a\\\"\\\\\",\"subject\":{\"type\":"
      "\"enterprise\",\"id\":\"" USCC "\",\"name\":\"x\"},\"disclosure\":\"public\"}";
  const char *second = credit("rating", "enterprise", USCC);
  char body[sizeof cbuf + 1024];
  snprintf(body, sizeof body, "[\n  " ODD_RECORD " ,\n\t%s\n]\n", second);
  ck_assert_int_eq(parse(body), 0);
  ck_assert_uint_eq(nrecs, 2);
  ck_assert_uint_eq(recs[0].body_len, strlen(compact));
  ck_assert_int_eq(memcmp(recs[0].body, compact, strlen(compact)), 0);
  ck_assert_uint_eq(recs[1].body_len, strlen(second));
  ck_assert_int_eq(memcmp(recs[1].body, second, strlen(second)), 0);
  uint8_t h[SJ_HASH_LEN];
  sj_sha256(compact, strlen(compact), h);
  ck_assert_int_eq(memcmp(h, recs[0].body_hash, SJ_HASH_LEN), 0);
}
END_TEST

/* ---- Canonical EPC URNs
 * ---------------------------------------------------------------------------- */

static void expect_canon(const char *in, const char *want) {
  sj_epc_t e;
  sj_epc_code_t c = sj_epc_canonical(in, strlen(in), &e);
  ck_assert_msg(c == SJ_EPC_OK, "%s: %s", in, sj_epc_code_name(c));
  ck_assert_str_eq(e.urn, want);
  ck_assert_uint_eq(e.len, strlen(want));
}

static void expect_epc_error(const char *in, sj_epc_code_t want) {
  sj_epc_t e;
  sj_epc_code_t c = sj_epc_canonical(in, strlen(in), &e);
  ck_assert_msg(c == want, "%s: got %s want %s", in, sj_epc_code_name(c), sj_epc_code_name(want));
}

START_TEST(test_sgtin_spellings) {
  const char *want = "urn:epc:id:sgtin:9506000.013435.ABC";
  expect_canon("urn:epc:id:sgtin:9506000.013435.ABC", want);
  expect_canon("urn:epc:id:sgtin:950600.0013435.ABC", want);
  expect_canon("urn:epc:id:sgtin:95060001343.05.ABC", want);
  expect_canon("URN:EPC:ID:SGTIN:9506000.013435.ABC", want);
  expect_canon("https://id.gs1.org/01/09506000134352/21/ABC", want);
  expect_canon("https://id.gs1.org/01/9506000134352/21/ABC", want);
  expect_canon("http://example.com/shop/01/09506000134352/10/LOT1/21/ABC?linkType=all#top", want);
  expect_canon("HTTPS://id.gs1.org/01/09506000134352/22/V1/21/ABC", want);
  expect_canon("https://id.gs1.org/01/09506000134352/21/%41BC", want);
  /* indicator digit moves to the front of the item reference */
  expect_canon("https://id.gs1.org/01/10614141073464/21/5", "urn:epc:id:sgtin:0614141.107346.5");
  expect_canon("urn:epc:id:sgtin:0614141.107346.5", "urn:epc:id:sgtin:0614141.107346.5");
  expect_canon("urn:epc:id:sgtin:061414107346.1.5", "urn:epc:id:sgtin:0614141.107346.5");
  /* GTIN-8 and GTIN-12 in a Digital Link are GTIN-14 with leading zeros */
  expect_canon("https://id.gs1.org/01/96385074/21/1", "urn:epc:id:sgtin:0000096.038507.1");
  expect_canon("https://id.gs1.org/01/036000291452/21/1", "urn:epc:id:sgtin:0036000.029145.1");
}
END_TEST

START_TEST(test_class_container_location_asset_spellings) {
  const char *lot = "urn:epc:class:lgtin:9506000.013435.LOT%2F1";
  expect_canon("https://id.gs1.org/01/09506000134352/10/LOT%2F1", lot);
  expect_canon("https://id.gs1.org/01/09506000134352/10/LOT%2f1", lot);
  expect_canon("urn:epc:class:lgtin:950600.0013435.LOT%2f1", lot);
  expect_canon("https://id.gs1.org/01/09506000134352", "urn:epc:idpat:sgtin:9506000.013435.*");
  expect_canon("urn:epc:idpat:sgtin:950600.0013435.*", "urn:epc:idpat:sgtin:9506000.013435.*");
  expect_canon("https://id.gs1.org/00/106141411234567897", "urn:epc:id:sscc:0614141.1123456789");
  expect_canon("urn:epc:id:sscc:0614141123.1456789", "urn:epc:id:sscc:0614141.1123456789");
  expect_canon("https://id.gs1.org/414/9506000134352", "urn:epc:id:sgln:9506000.13435.0");
  expect_canon("https://id.gs1.org/414/9506000134352/254/0", "urn:epc:id:sgln:9506000.13435.0");
  expect_canon("urn:epc:id:sgln:950600013435..0", "urn:epc:id:sgln:9506000.13435.0");
  expect_canon("https://id.gs1.org/414/9506000134352/254/a%26b",
               "urn:epc:id:sgln:9506000.13435.a%26b");
  expect_canon("https://id.gs1.org/8003/09506000134352C1", "urn:epc:id:grai:9506000.13435.C1");
  expect_canon("urn:epc:id:grai:950600.013435.C1", "urn:epc:id:grai:9506000.13435.C1");
  /* every TDS escape is written upper-case; other AI 82 characters stay literal */
  expect_canon("https://id.gs1.org/01/09506000134352/21/%22%25%26%2F%3C%3E%3F!'()*+,-.:;=_",
               "urn:epc:id:sgtin:9506000.013435.%22%25%26%2F%3C%3E%3F!'()*+,-.:;=_");
  /* a dot inside a serial is part of the serial */
  expect_canon("urn:epc:id:sgtin:9506000.013435.1.2", "urn:epc:id:sgtin:9506000.013435.1.2");
}
END_TEST

START_TEST(test_epc_errors) {
  expect_epc_error("", SJ_EPC_FORMAT);
  expect_epc_error("09506000134352", SJ_EPC_FORMAT);
  expect_epc_error("urn:epc:id:sgtin:9506000013435", SJ_EPC_FORMAT);
  expect_epc_error("urn:epc:idpat:sgtin:9506000.013435.1", SJ_EPC_FORMAT);
  expect_epc_error("https:///01/09506000134352", SJ_EPC_FORMAT);
  expect_epc_error("urn:epc:id:gdti:9506000.13435.1", SJ_EPC_SCHEME);
  expect_epc_error("urn:epc:id:sscc:0614141.112345678", SJ_EPC_DIGITS);
  expect_epc_error("urn:epc:id:sgln:9506000.1343.0", SJ_EPC_DIGITS);
  expect_epc_error("urn:epc:id:sgtin:9506000000000..1", SJ_EPC_PREFIX_LENGTH);
  expect_epc_error("urn:epc:id:sgtin:9506000.013435.123456789012345678901", SJ_EPC_SERIAL);
  expect_epc_error("urn:epc:id:sgtin:9506000.013435.%2", SJ_EPC_SERIAL);
  expect_epc_error("urn:epc:id:sgtin:9506000.013435.%7E", SJ_EPC_SERIAL); /* ~ is not AI 82 */
  expect_epc_error("urn:epc:id:sgtin:9506000.013435.a b", SJ_EPC_SERIAL);
  expect_epc_error("urn:epc:id:grai:9506000.13435.12345678901234567", SJ_EPC_SERIAL);
  expect_epc_error("https://id.gs1.org/8003/09506000134352", SJ_EPC_SERIAL);
  expect_epc_error("https://id.gs1.org/01/09506000134352/21/", SJ_EPC_DL_PATH);
  expect_epc_error("https://id.gs1.org/01/09506000134352/21/1/10/L", SJ_EPC_DL_PATH);
  expect_epc_error("https://id.gs1.org/00/106141411234567897/21/1", SJ_EPC_DL_PATH);
  expect_epc_error("https://id.gs1.org/01", SJ_EPC_DL_PATH);
  expect_epc_error("https://id.gs1.org/01/0950600013435x", SJ_EPC_GTIN_CHARSET);
  expect_epc_error("https://id.gs1.org/01/123456789", SJ_EPC_GTIN_LENGTH);
  expect_epc_error("https://id.gs1.org/414/9506000134353", SJ_EPC_CHECK_DIGIT);
  expect_epc_error("https://id.gs1.org/8003/09506000134353C1", SJ_EPC_CHECK_DIGIT);
  expect_epc_error("https://id.gs1.org/00/10614141123456789", SJ_EPC_DIGITS);
  ck_assert_str_eq(sj_epc_code_name(SJ_EPC_SCHEME), "EPC_SCHEME_UNSUPPORTED");
  ck_assert_str_eq(sj_epc_code_name(SJ_EPC_CHECK_DIGIT), "GS1_CHECK_DIGIT");
}
END_TEST

/* ---- Robustness
 * ------------------------------------------------------------------------------------ */

static uint32_t rng_state;
static uint32_t rng(void) { /* xorshift32: deterministic across runs */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* Parses one candidate body; checks the contract of the result whatever the input. */
static void parse_any(const uint8_t *p, size_t n, const char *ct) {
  teardown();
  setup();
  int rv = sj_record_parse_request(p, n, ct, hkey, 0, &recs, &nrecs, &errs);
  if (rv == 0) {
    ck_assert_uint_ge(nrecs, 1);
    ck_assert_uint_eq(errs.n, 0);
    for (size_t i = 0; i < nrecs; i++)
      ck_assert_uint_ge(recs[i].nkeys, 1);
  } else {
    ck_assert_msg(rv == SJ_EINVAL || rv == SJ_EFORMAT, "rv %d", rv);
    ck_assert_uint_ge(errs.n, 1);
    ck_assert_ptr_null(recs);
  }
}

START_TEST(test_truncations_and_mutations_never_crash) {
  const char *seed = "[{\"kind\":\"trace\",\"event\":{" EV_HEAD ",\"epcList\":[\"" SGTIN "\","
                     "\"https://id.gs1.org/01/09506000134352/21/7\"],\"parentID\":"
                     "\"urn:epc:id:sscc:0614141.1123456789\",\"quantityList\":[{\"epcClass\":"
                     "\"https://id.gs1.org/01/09506000134352/10/L%2F1\",\"quantity\":1.5}]}},"
                     "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\","
                     "\"id\":\"" PID "\",\"name\":\"张三\"},\"disclosure\":\"subject\","
                     "\"gtin\":\"09506000134352\"}]";
  size_t n = strlen(seed);
  parse_any((const uint8_t *)seed, n, JSON);
  ck_assert_int_eq((int)nrecs, 2); /* the seed itself is valid */
  for (size_t len = 0; len < n; len++) {
    parse_any((const uint8_t *)seed, len, JSON); /* every truncation */
    parse_any((const uint8_t *)seed + 1, len, NDJSON);
  }
  static const char alphabet[] = "{}[]\",:\\ \n0123456789.-+eE/%~tfnu\x80\xff\x00zZT";
  uint8_t m[2048];
  rng_state = 0x9e3779b9u;
  for (int iter = 0; iter < 4000; iter++) {
    memcpy(m, seed, n);
    size_t len = n;
    int edits = 1 + (int)(rng() % 4);
    for (int k = 0; k < edits; k++) {
      size_t at = rng() % len;
      uint8_t c = (uint8_t)alphabet[rng() % (sizeof alphabet - 1)];
      switch (rng() % 4) {
      case 0:
        m[at] = c;
        break; /* replace */
      case 1:
        m[at] = (uint8_t)rng();
        break; /* random byte */
      case 2:
        memmove(m + at, m + at + 1, len - at - 1), len--;
        break; /* delete */
      default: /* insert */
        memmove(m + at + 1, m + at, len - at);
        m[at] = c;
        len++;
      }
    }
    parse_any(m, len, (iter & 1) ? JSON : NDJSON);
  }
  /* Random garbage and deep nesting. */
  for (size_t i = 0; i < sizeof m; i++)
    m[i] = (uint8_t)rng();
  parse_any(m, sizeof m, JSON);
  parse_any(m, sizeof m, NDJSON);
  memset(m, '[', sizeof m);
  parse_any(m, sizeof m, JSON);
}
END_TEST

START_TEST(test_epc_mutations_never_crash) {
  static const char *seeds[] = {
      "urn:epc:id:sgtin:9506000.013435.A%2Fb", "https://id.gs1.org/01/09506000134352/10/L1/21/S%25",
      "https://x/414/9506000134352/254/1", "urn:epc:id:grai:950600.013435.C1"};
  static const char alphabet[] = "./%0123456789:aZ*~ ?#\x00\xff";
  rng_state = 12345;
  char m[256];
  for (int iter = 0; iter < 4000; iter++) {
    const char *s = seeds[iter % 4];
    size_t len = strlen(s);
    memcpy(m, s, len);
    for (int k = 0; k < 3; k++) {
      size_t at = rng() % len;
      if (rng() % 3 == 0 && len > 1)
        len = at + 1; /* truncate */
      else
        m[at] = alphabet[rng() % (sizeof alphabet - 1)];
    }
    sj_epc_t e;
    if (sj_epc_canonical(m, len, &e) == SJ_EPC_OK) {
      /* a canonical URN is a fixed point */
      sj_epc_t again;
      ck_assert_int_eq(sj_epc_canonical(e.urn, e.len, &again), SJ_EPC_OK);
      ck_assert_str_eq(again.urn, e.urn);
    }
  }
}
END_TEST

/* Found by fuzz_record: a syntax error whose message quotes half a UTF-8 sequence must still
 * serialise (the node answers it as JSON). Invalid bytes become '?'. */
START_TEST(test_errors_with_broken_utf8_still_serialise) {
  static const uint8_t body[] = {'{', '"', 'k', 'i', 'n', 'd', '"', ':', 0xE4, 0xB8};
  ck_assert_int_ne(sj_record_parse_request(body, sizeof body, "application/json", hkey, 0, &recs,
                                           &nrecs, &errs), 0);
  sj_rec_errors_add(&errs, 1, "/a\xE4\xB8", "CODE", "quoted \xE4\xB8 \xC0\xAF \xED\xA0\x80 end");
  sj_buf_t out = {0};
  ck_assert_int_eq(sj_rec_errors_to_json(&errs, &out), 0);
  json_error_t e;
  json_t *j = json_loadb((const char *)out.p, out.n, 0, &e);
  ck_assert_ptr_nonnull(j);
  ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 1), "message")),
                   "quoted ?? ?? ??? end");
  json_decref(j);
  sj_buf_deinit(&out);
}
END_TEST

static Suite *record_suite(void) {
  Suite *s = suite_create("record");
  struct {
    const char *name;
    const TTest *tests[8];
  } cases[] = {
      {"minimal_records",
       {test_minimal_credit_enterprise_is_valid, test_every_credit_and_subject_type_is_valid,
        test_person_key_is_hmac_never_the_number, test_minimal_trace_is_valid,
        test_every_event_type_and_identifier_field_is_indexed,
        test_spellings_of_one_item_make_one_key}},
      {"error_codes",
       {test_missing_and_mistyped_fields, test_enums, test_subject_identifiers,
        test_gtin_fields_anywhere, test_event_time_rules, test_epc_error_codes_in_events,
        test_too_many_identifiers}},
      {"requests",
       {test_request_level_errors, test_one_record_reports_all_its_errors,
        test_arrays_report_every_bad_index, test_ndjson_reports_index_and_line,
        test_error_cap_counts_the_rest}},
      {"bodies",
       {test_single_object_body_is_exact, test_ndjson_lines_are_exact,
        test_array_elements_are_compacted_not_reformatted}},
      {"epc_canonical",
       {test_sgtin_spellings, test_class_container_location_asset_spellings, test_epc_errors}},
      {"robustness",
       {test_truncations_and_mutations_never_crash, test_epc_mutations_never_crash,
        test_errors_with_broken_utf8_still_serialise}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    for (size_t k = 0; k < 8 && cases[i].tests[k]; k++)
      tcase_add_test(tc, cases[i].tests[k]);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(record_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
