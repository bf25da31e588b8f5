/* tests/test_trace.c — food traceability: EPCIS 2.0 / CBV 2.0 validation and its error codes,
 * EPCISDocument splitting, journeys over four regions' logs (aggregation and transformation in
 * both directions, cycles, depth and size bounds, disclosure), and, against a real node process
 * spoken to over HTTP/2: capture, the capture job, journeys in URN and Digital Link form, the
 * EPCIS query subset, the sample generator (determinism, validity) and bulk import (resume
 * without duplicates, CSV line numbers).
 *
 * Journeys across regions are tested on a store holding four regions' logs (written here the way
 * the writer and replication write them); the node tests submit a whole chain to one node. */
#include "node/epcis.h"
#include "node/journey.h"
#include "node/record.h"
#include "storage/storage.h"
#include "tests/support.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBMIT_TOKEN "sjt_trace_submit_token"
#define AUTH_TOKEN "sjt_trace_authority_token"

static const uint8_t hmac_key[32] = {1, 2, 3};
static char g_dir[512];

/* ---- The pork chain: Anhui farm -> Jiangsu slaughterhouse -> Zhejiang -> Shanghai ----------- */

#define OP_AH "91340100MA2T000013"
#define OP_JS "91320100MA1X00002F"
#define OP_ZJ "91330100MA2B00003E"
#define OP_SH "91310100MA1K00004P"
#define PIG "urn:epc:class:lgtin:6901234.000001.PIG2024A"
#define CAR_URN "urn:epc:class:lgtin:6901234.000002.CAR01"
#define CAR_DL "https://id.gs1.org/01/06901234000023/10/CAR01"
#define P1 "urn:epc:id:sgtin:6901234.000003.P1"
#define P2 "urn:epc:id:sgtin:6901234.000003.P2"
#define CASE "urn:epc:id:sscc:6901234.0000000001"
#define TRUCK "urn:epc:id:sscc:6901234.0000000002"

typedef struct {
  uint32_t region;
  const char *members; /* the event's members after type, time and offset */
  const char *type;
  int day;
} chain_ev_t;

#define LOC(x) ",\"bizLocation\":{\"id\":\"urn:epc:id:sgln:6901234." x ".0\"}"

static const chain_ev_t chain[] = {
    {340000,
     "\"action\":\"ADD\",\"bizStep\":\"commissioning\",\"quantityList\":[{\"epcClass\":\"" PIG
     "\",\"quantity\":20,\"uom\":\"H87\"}],\"ilmd\":{\"cn:originAreaCode\":\"340100\","
     "\"cn:quarantineCertNo\":\"3400123456\"},\"cn:operatorUSCC\":\"" OP_AH "\"" LOC("00100"),
     "ObjectEvent", 1},
    {340000,
     "\"action\":\"ADD\",\"bizStep\":\"loading\",\"parentID\":\"" TRUCK
     "\",\"childQuantityList\":[{\"epcClass\":\"" PIG "\",\"quantity\":20}],"
     "\"cn:operatorUSCC\":\"" OP_AH "\"" LOC("00100"),
     "AggregationEvent", 2},
    {340000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"urn:epcglobal:cbv:bizstep:shipping\",\"epcList\":["
     "\"" TRUCK "\"],\"cn:operatorUSCC\":\"" OP_AH "\"" LOC("00100"),
     "ObjectEvent", 3},
    {320000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"https://ref.gs1.org/cbv/BizStep-receiving\","
     "\"epcList\":[\"" TRUCK "\"],\"cn:operatorUSCC\":\"" OP_JS "\"" LOC("00200"),
     "ObjectEvent", 4},
    {320000,
     "\"action\":\"DELETE\",\"bizStep\":\"unloading\",\"parentID\":\"" TRUCK
     "\",\"childQuantityList\":[{\"epcClass\":\"" PIG "\",\"quantity\":20}],"
     "\"cn:operatorUSCC\":\"" OP_JS "\"" LOC("00200"),
     "AggregationEvent", 5},
    {320000,
     "\"bizStep\":\"killing\",\"inputQuantityList\":[{\"epcClass\":\"" PIG
     "\",\"quantity\":20}],\"outputQuantityList\":[{\"epcClass\":\"" CAR_DL
     "\",\"quantity\":1500,\"uom\":\"KGM\"}],\"cn:meatInspectionCertNo\":\"JS-2024-0001\","
     "\"cn:operatorUSCC\":\"" OP_JS "\"" LOC("00200"),
     "TransformationEvent", 6},
    {320000,
     "\"bizStep\":\"repackaging\",\"inputQuantityList\":[{\"epcClass\":\"" CAR_URN
     "\",\"quantity\":1.5,\"uom\":\"KGM\"}],\"outputEPCList\":[\"" P1 "\",\"" P2
     "\"],\"cn:operatorUSCC\":\"" OP_JS "\"" LOC("00200"),
     "TransformationEvent", 7},
    {320000,
     "\"action\":\"ADD\",\"bizStep\":\"packing\",\"parentID\":\"" CASE "\",\"childEPCs\":[\"" P1
     "\",\"" P2 "\"],\"cn:operatorUSCC\":\"" OP_JS "\"" LOC("00200"),
     "AggregationEvent", 8},
    {320000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"shipping\",\"epcList\":[\"" CASE
     "\"],\"cn:operatorUSCC\":\"" OP_JS "\"" LOC("00200"),
     "ObjectEvent", 9},
    {330000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"receiving\",\"epcList\":[\"" CASE
     "\"],\"cn:operatorUSCC\":\"" OP_ZJ "\"" LOC("00300"),
     "ObjectEvent", 10},
    {330000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"shipping\",\"epcList\":[\"" CASE
     "\"],\"cn:operatorUSCC\":\"" OP_ZJ "\"" LOC("00300"),
     "ObjectEvent", 11},
    {310000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"receiving\",\"epcList\":[\"" CASE
     "\"],\"cn:operatorUSCC\":\"" OP_SH "\"" LOC("00400"),
     "ObjectEvent", 12},
    {310000,
     "\"action\":\"DELETE\",\"bizStep\":\"unpacking\",\"parentID\":\"" CASE
     "\",\"childEPCs\":[\"" P1 "\",\"" P2 "\"],\"cn:operatorUSCC\":\"" OP_SH "\"" LOC("00400"),
     "AggregationEvent", 13},
    {310000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"retail_selling\",\"disposition\":\"retail_sold\","
     "\"epcList\":[\"https://id.gs1.org/01/06901234000030/21/P1\"],"
     "\"cn:operatorUSCC\":\"" OP_SH "\"" LOC("00400"),
     "ObjectEvent", 14},
    {310000,
     "\"action\":\"OBSERVE\",\"bizStep\":\"retail_selling\",\"epcList\":[\"" P2
     "\"],\"cn:operatorUSCC\":\"" OP_SH "\"" LOC("00400"),
     "ObjectEvent", 15},
};
#define NCHAIN (sizeof chain / sizeof chain[0])

/* The event text of chain[i]; disclosure (may be NULL) wraps it in a record with that level. */
static void chain_event(size_t i, sj_buf_t *out) {
  sj_buf_printf(out,
                "{\"type\":\"%s\",\"eventTime\":\"2024-05-%02dT08:00:00+08:00\","
                "\"eventTimeZoneOffset\":\"+08:00\",%s}",
                chain[i].type, chain[i].day, chain[i].members);
}

static void chain_record(size_t i, const char *disclosure, sj_buf_t *out) {
  sj_buf_append_str(out, "{\"kind\":\"trace\",");
  if (disclosure)
    sj_buf_printf(out, "\"disclosure\":\"%s\",", disclosure);
  sj_buf_append_str(out, "\"event\":");
  chain_event(i, out);
  sj_buf_append_str(out, "}");
}

/* ---- Helpers ------------------------------------------------------------------------------------
 */

static void rm_tmp(void) {
  sj_test_rmtree(g_dir);
}

static void unit_setup(void) {
  ck_assert_int_eq(sj_crypto_init(), 0);
  sj_test_tmpdir(g_dir, sizeof g_dir, "trace");
}

static json_t *parse_json(const void *p, size_t n) {
  return sj_test_json(p, n);
}

/* Validates one record; returns 0 or the parse error, with errs filled. */
static int validate(const char *rec, sj_rec_errors_t *errs) {
  sj_record_t *recs = NULL;
  size_t n = 0;
  sj_rec_errors_init(errs, 0);
  int rv = sj_record_parse_request((const uint8_t *)rec, strlen(rec), "application/json", hmac_key,
                                   0, &recs, &n, errs);
  sj_records_free(recs, n);
  return rv;
}

static int has_error(const sj_rec_errors_t *e, const char *field, const char *code) {
  for (size_t i = 0; i < e->n; i++)
    if (!strcmp(e->v[i].field, field) && !strcmp(e->v[i].code, code))
      return 1;
  return 0;
}

/* An ObjectEvent record with extra members. */
static const char *obj_ev(const char *extra) {
  static char buf[4096];
  snprintf(
      buf, sizeof buf,
      "{\"kind\":\"trace\",\"event\":{\"type\":\"ObjectEvent\",\"eventTime\":"
      "\"2024-05-01T08:00:00+08:00\",\"eventTimeZoneOffset\":\"+08:00\",\"action\":\"OBSERVE\","
      "\"epcList\":[\"" P1 "\"]%s}}",
      extra);
  return buf;
}

static void expect_code(const char *rec, const char *field, const char *code) {
  sj_rec_errors_t e;
  ck_assert_int_eq(validate(rec, &e), SJ_EINVAL);
  ck_assert_msg(has_error(&e, field, code), "expected %s at %s; first: %s at %s", code, field,
                e.n ? e.v[0].code : "-", e.n ? e.v[0].field : "-");
  sj_rec_errors_deinit(&e);
}

static void expect_valid(const char *rec) {
  sj_rec_errors_t e;
  int rv = validate(rec, &e);
  ck_assert_msg(rv == 0, "refused: %s at %s", e.n ? e.v[0].code : "-", e.n ? e.v[0].field : "-");
  sj_rec_errors_deinit(&e);
}

/* ---- EPCIS 2.0 / CBV 2.0 validation -----------------------------------------------------------
 */

START_TEST(cbv_values_in_every_spelling) {
  const char *w = NULL;
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BIZSTEP, "shipping", 8, &w), 1);
  ck_assert_str_eq(w, "shipping");
  const char *forms[] = {"urn:epcglobal:cbv:bizstep:shipping",
                         "https://ref.gs1.org/cbv/BizStep-shipping", "cbv:BizStep-shipping"};
  for (size_t i = 0; i < 3; i++) {
    w = NULL;
    ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BIZSTEP, forms[i], strlen(forms[i]), &w), 1);
    ck_assert_str_eq(w, "shipping");
  }
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BIZSTEP, "shiping", 7, NULL), -1);
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BIZSTEP, "urn:epcglobal:cbv:bizstep:nope", 30, NULL), -1);
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BIZSTEP, "urn:epcglobal:cbv:disp:active", 29, NULL), -1);
  const char *ext = "https://example.com/steps/smoking";
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BIZSTEP, ext, strlen(ext), NULL), 0);
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BIZSTEP, "has space:x y", 13, NULL), -1);
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_DISPOSITION, "in_transit", 10, NULL), 1);
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_DISPOSITION, "shipping", 8, NULL), -1);
  const char *d = "https://ref.gs1.org/cbv/Disp-retail_sold";
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_DISPOSITION, d, strlen(d), &w), 1);
  ck_assert_str_eq(w, "retail_sold");
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_SDT, "owning_party", 12, NULL), 1);
  ck_assert_int_eq(sj_cbv_classify(SJ_CBV_BTT, "urn:epcglobal:cbv:btt:po", 24, NULL), 1);
  ck_assert(sj_epcis_uom_known("KGM") && sj_epcis_uom_known("LTR") && sj_epcis_uom_known("H87"));
  ck_assert(sj_epcis_uom_known("EA") && !sj_epcis_uom_known("kg") && !sj_epcis_uom_known("XYZ"));
}
END_TEST

START_TEST(every_chain_event_is_valid) {
  for (size_t i = 0; i < NCHAIN; i++) {
    sj_buf_t b = {0};
    chain_record(i, NULL, &b);
    expect_valid((const char *)b.p);
    sj_buf_deinit(&b);
  }
  ck_assert_int_eq(sj_uscc_check(OP_AH, 18), SJ_ID_OK);
  ck_assert_int_eq(sj_uscc_check(OP_SH, 18), SJ_ID_OK);
}
END_TEST

START_TEST(epcis_error_codes) {
  expect_code(obj_ev(",\"bizStep\":\"shippin\""), "/event/bizStep", "BIZ_STEP_INVALID");
  expect_code(obj_ev(",\"bizStep\":7"), "/event/bizStep", "FIELD_TYPE");
  expect_code(obj_ev(",\"disposition\":\"urn:epcglobal:cbv:disp:bogus\""), "/event/disposition",
              "DISPOSITION_INVALID");
  expect_code(obj_ev(",\"persistentDisposition\":{\"set\":[\"fresh\"]}"),
              "/event/persistentDisposition/set/0", "DISPOSITION_INVALID");
#define QL(x) ",\"quantityList\":[{\"epcClass\":\"" PIG "\"," x "}]"
  expect_code(obj_ev(QL("\"quantity\":2,\"uom\":\"KG\"")), "/event/quantityList/0/uom",
              "UOM_INVALID");
  expect_code(obj_ev(QL("\"uom\":\"KGM\"")), "/event/quantityList/0/uom", "UOM_WITHOUT_QUANTITY");
  expect_code(obj_ev(QL("\"quantity\":-1")), "/event/quantityList/0/quantity", "QUANTITY_INVALID");
#undef QL
  expect_code(obj_ev(",\"sourceList\":[{\"type\":\"owner\",\"source\":\"urn:epc:id:pgln:1.2\"}]"),
              "/event/sourceList/0/type", "SOURCE_DEST_TYPE_INVALID");
  expect_code(obj_ev(",\"destinationList\":[{\"type\":\"location\"}]"),
              "/event/destinationList/0/destination", "FIELD_MISSING");
  expect_code(obj_ev(",\"bizTransactionList\":[{\"type\":\"po\",\"bizTransaction\":\"no uri\"}]"),
              "/event/bizTransactionList/0/bizTransaction", "URI_INVALID");
  expect_code(
      obj_ev(",\"bizTransactionList\":[{\"type\":\"order\",\"bizTransaction\":\"urn:x:1\"}]"),
      "/event/bizTransactionList/0/type", "BIZ_TRANSACTION_TYPE_INVALID");
  expect_code(obj_ev(",\"eventID\":\"not a uri\""), "/event/eventID", "URI_INVALID");
  expect_code(obj_ev(",\"errorDeclaration\":{\"declarationTime\":\"2024-05-02T00:00:00Z\","
                     "\"reason\":\"oops\"}"),
              "/event/errorDeclaration/reason", "ERROR_REASON_INVALID");
  expect_code(obj_ev(",\"cn:operatorUSCC\":\"91340100MA2T000014\""), "/event/cn:operatorUSCC",
              "USCC_CHECKSUM");
  expect_code(obj_ev(",\"ilmd\":{\"operator_uscc\":\"91340100\"}"), "/event/ilmd/operator_uscc",
              "USCC_LENGTH");
  expect_code(obj_ev(",\"ilmd\":{\"cn:originAreaCode\":\"990000\"}"),
              "/event/ilmd/cn:originAreaCode", "AREA_CODE_INVALID");
  expect_code(obj_ev(",\"cn:quarantineCertNo\":\"#1\""), "/event/cn:quarantineCertNo",
              "CERTIFICATE_NUMBER_INVALID");
  expect_code(obj_ev(",\"meatInspectionCertificateNumber\":12345"),
              "/event/meatInspectionCertificateNumber", "FIELD_TYPE");
  expect_code(obj_ev(",\"ilmd\":[]"), "/event/ilmd", "FIELD_TYPE");
  expect_code("{\"kind\":\"trace\",\"event\":{\"type\":\"AggregationEvent\",\"eventTime\":"
              "\"2024-05-01T08:00:00Z\",\"eventTimeZoneOffset\":\"+00:00\",\"action\":\"ADD\","
              "\"childEPCs\":[\"" P1 "\"]}}",
              "/event", "PARENT_ID_MISSING");
  expect_code("{\"kind\":\"trace\",\"event\":{\"type\":\"TransformationEvent\",\"eventTime\":"
              "\"2024-05-01T08:00:00Z\",\"eventTimeZoneOffset\":\"+00:00\",\"inputEPCList\":[],"
              "\"epcList\":[\"" P1 "\"]}}",
              "/event", "TRANSFORMATION_IO_MISSING");
  /* valid: every spelling, extension URIs, an aggregation OBSERVE without parent, NDJSON lines */
  expect_valid(obj_ev(",\"bizStep\":\"https://example.com/steps/smoking\",\"disposition\":"
                      "\"cbv:Disp-in_transit\",\"eventID\":\"ni:///sha-256;abc?ver=CBV2.0\","
                      "\"sourceList\":[{\"type\":\"urn:epcglobal:cbv:sdt:location\",\"source\":"
                      "\"urn:epc:id:sgln:6901234.00100.0\"}],\"ilmd\":{\"cn:originAreaCode\":"
                      "\"340100\",\"quarantineCertificateNumber\":\"AH-0001\"}"));
}
END_TEST

START_TEST(event_times_parse_and_format) {
  int64_t ms = 0;
  char t[64];
  ck_assert_int_eq(sj_epcis_parse_time("2024-05-01T08:00:00.250+08:00", 29, &ms), 0);
  ck_assert_int_eq(ms, 1714521600250LL);
  sj_epcis_format_time(ms, t);
  ck_assert_str_eq(t, "2024-05-01T00:00:00.250Z");
  sj_epcis_format_time(-1, t);
  ck_assert_str_eq(t, "1969-12-31T23:59:59.999Z");
  ck_assert_int_ne(sj_epcis_parse_time("2024-02-30T00:00:00Z", 20, &ms), 0);
  ck_assert_int_ne(sj_epcis_parse_time("2024-05-01T08:00:00", 19, &ms), 0);
  int off;
  ck_assert_int_eq(sj_epcis_parse_offset("-14:00", 6, &off), 0);
  ck_assert_int_eq(off, -840);
  ck_assert_int_ne(sj_epcis_parse_offset("+14:30", 6, &off), 0);
}
END_TEST

/* The document's events keep their own bytes ("1.10" stays "1.10"); errors name the document. */
START_TEST(epcis_documents_split_into_records) {
  const char *doc =
      "{ \"@context\": [\"https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld\"],\n"
      "  \"type\": \"EPCISDocument\", \"schemaVersion\": \"2.0\",\n"
      "  \"epcisBody\": { \"eventList\": [ {\"type\": \"ObjectEvent\", \"q\": 1.10},\n"
      "    {\"type\":\"ObjectEvent\",\"s\":\"a b\\\" ,]\"} ] } }";
  sj_epcis_doc_t d;
  sj_rec_errors_t e;
  sj_rec_errors_init(&e, 0);
  ck_assert_int_eq(sj_epcis_split((const uint8_t *)doc, strlen(doc), 0, &d, &e), 0);
  ck_assert_int_eq(d.is_document, 1);
  ck_assert_uint_eq(d.nevents, 2);
  ck_assert_int_eq(
      strncmp(doc + d.events[0].off, "{\"type\": \"ObjectEvent\", \"q\": 1.10}", d.events[0].len),
      0);
  sj_buf_t nd = {0};
  ck_assert_int_eq(sj_epcis_to_ndjson((const uint8_t *)doc, &d, &nd), 0);
  ck_assert_str_eq(
      (char *)nd.p,
      "{\"kind\":\"trace\",\"@context\":[\"https://ref.gs1.org/standards/epcis/2.0.0/"
      "epcis-context.jsonld\"],\"event\":{\"type\":\"ObjectEvent\",\"q\":1.10}}\n"
      "{\"kind\":\"trace\",\"@context\":[\"https://ref.gs1.org/standards/epcis/2.0.0/"
      "epcis-context.jsonld\"],\"event\":{\"type\":\"ObjectEvent\",\"s\":\"a b\\\" ,]\"}}\n");
  sj_buf_deinit(&nd);
  sj_epcis_doc_free(&d);
  const char *ev = " {\"type\":\"AggregationEvent\"} ";
  ck_assert_int_eq(sj_epcis_split((const uint8_t *)ev, strlen(ev), 0, &d, &e), 0);
  ck_assert_int_eq(d.is_document, 0);
  ck_assert_uint_eq(d.events[0].off, 1);
  sj_epcis_doc_free(&d);
  struct {
    const char *body, *code;
  } bad[] = {
      {"{\"type\":\"EPCISQueryDocument\"}", "EPCIS_BODY_INVALID"},
      {"[1]", "EPCIS_BODY_INVALID"},
      {"{\"type\":\"EPCISDocument\"}", "EPCIS_EVENT_LIST_MISSING"},
      {"{\"type\":\"EPCISDocument\",\"epcisBody\":{\"eventList\":[]}}", "EPCIS_EVENT_LIST_EMPTY"},
      {"{\"type\":\"EPCISDocument\",\"schemaVersion\":\"1.2\"}",
       "EPCIS_SCHEMA_VERSION_UNSUPPORTED"},
      {"{\"type\":\"EPCISDocument\",\"type\":\"x\"}", "JSON_DUPLICATE_KEY"},
      {"{\"type\":", "JSON_SYNTAX"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sj_rec_errors_deinit(&e);
    sj_rec_errors_init(&e, 0);
    ck_assert_int_eq(sj_epcis_split((const uint8_t *)bad[i].body, strlen(bad[i].body), 0, &d, &e),
                     SJ_EFORMAT);
    ck_assert_str_eq(e.v[0].code, bad[i].code);
  }
  sj_rec_errors_deinit(&e);
}
END_TEST

/* ---- Journeys over four regions' logs ---------------------------------------------------------
 */

static sj_store_t *g_store;

static void store_setup(void) {
  unit_setup();
  char path[600];
  snprintf(path, sizeof path, "%s/store", g_dir);
  ck_assert_int_eq(sj_store_open(path, NULL, &g_store), 0);
}

static void store_teardown(void) {
  sj_store_close(g_store);
  g_store = NULL;
  rm_tmp();
}

/* Appends one record (validated as the node would) to region's log; returns its seq. */
static uint64_t append(uint32_t region, const char *rec) {
  sj_record_t *recs = NULL;
  size_t n = 0;
  sj_rec_errors_t e;
  sj_rec_errors_init(&e, 0);
  int rv = sj_record_parse_request((const uint8_t *)rec, strlen(rec), "application/json", hmac_key,
                                   0, &recs, &n, &e);
  ck_assert_msg(rv == 0, "invalid: %s %s", e.n ? e.v[0].code : "", e.n ? e.v[0].field : "");
  sj_rec_errors_deinit(&e);
  sj_store_batch_t *b = NULL;
  uint64_t size;
  uint8_t root[SJ_HASH_LEN], last[SJ_HASH_LEN];
  ck_assert_int_eq(sj_store_batch_begin(g_store, region, &b), 0);
  sj_store_batch_head(b, &size, root, last);
  sj_entry_header_t h = {.version = SJ_ENTRY_VERSION,
                         .region = region,
                         .seq = size,
                         .time_ms = 1717200000000ull + size};
  memcpy(h.prev, last, SJ_HASH_LEN);
  sj_record_header_fill(&recs[0], &h);
  sj_buf_t hdr = {0};
  ck_assert_int_eq(sj_entry_encode(&h, &hdr), 0);
  ck_assert_int_eq(sj_store_batch_add(b, hdr.p, hdr.n, recs[0].body, recs[0].body_len, NULL), 0);
  ck_assert_int_eq(sj_store_batch_commit(b, 0), 0);
  sj_buf_deinit(&hdr);
  sj_records_free(recs, n);
  return size;
}

/* Loads the chain into the regions' logs; seqs[i] receives chain[i]'s seq. The killing step gets
 * disclosure (NULL = public). */
static void load_chain(uint64_t *seqs, const char *killing_disclosure) {
  for (size_t i = 0; i < NCHAIN; i++) {
    sj_buf_t b = {0};
    chain_record(i, i == 5 ? killing_disclosure : NULL, &b);
    seqs[i] = append(chain[i].region, (const char *)b.p);
    sj_buf_deinit(&b);
  }
}

static int vis_public(void *ctx, const sj_entry_header_t *h, const uint8_t *body, size_t len) {
  (void)ctx, (void)body, (void)len;
  return h->disclosure == SJ_DISCLOSE_PUBLIC;
}

static int vis_all(void *ctx, const sj_entry_header_t *h, const uint8_t *body, size_t len) {
  (void)ctx, (void)h, (void)body, (void)len;
  return 1;
}

static json_t *walk(const char *code, int dir, unsigned depth, size_t steps, int all) {
  sj_journey_opts_t o = {.dir = dir, .max_depth = depth, .max_steps = steps, .max_events = 100000};
  sj_buf_t out = {0};
  sj_epc_t epc;
  ck_assert_int_eq(sj_epc_canonical(code, strlen(code), &epc), SJ_EPC_OK);
  ck_assert_int_eq(sj_journey_walk(g_store, epc.urn, &o, all ? vis_all : vis_public, NULL, &out),
                   0);
  json_t *j = parse_json(out.p, out.n);
  sj_buf_deinit(&out);
  return j;
}

/* Whether the journey holds chain event i (its region and seq). */
static int has_step(json_t *j, size_t i, const uint64_t *seqs) {
  json_t *s;
  size_t k;
  char region[8];
  snprintf(region, sizeof region, "%u", chain[i].region);
  json_array_foreach(json_object_get(j, "steps"), k, s) {
    if (!strcmp(json_string_value(json_object_get(s, "region")), region) &&
        (uint64_t)json_integer_value(json_object_get(s, "seq")) == seqs[i])
      return 1;
  }
  return 0;
}

static size_t nsteps(json_t *j) {
  return json_array_size(json_object_get(j, "steps"));
}

/* Backward from a pack: every event of its history, in four regions, in time order, each step's
 * leaf hash the log's; nothing of its sibling's later life. */
START_TEST(journey_back_from_a_pack_spans_four_regions) {
  uint64_t seqs[NCHAIN];
  load_chain(seqs, NULL);
  json_t *j = walk(P1, SJ_JOURNEY_BACK, 16, 1000, 0);
  ck_assert_str_eq(json_string_value(json_object_get(j, "direction")), "back");
  ck_assert(json_is_false(json_object_get(j, "truncated")));
  json_t *regions = json_object_get(j, "regions");
  ck_assert_uint_eq(json_array_size(regions), 4);
  ck_assert_str_eq(json_string_value(json_array_get(regions, 0)), "310000");
  ck_assert_str_eq(json_string_value(json_array_get(regions, 3)), "340000");
  for (size_t i = 0; i < NCHAIN - 1; i++)
    ck_assert_msg(has_step(j, i, seqs), "event %zu missing", i);
  ck_assert(!has_step(j, NCHAIN - 1, seqs)); /* P2 sold later: not P1's history */
  ck_assert_uint_eq(nsteps(j), NCHAIN - 1);
  json_t *s;
  size_t k;
  int64_t prev = INT64_MIN;
  json_array_foreach(json_object_get(j, "steps"), k, s) {
    int64_t t = json_integer_value(json_object_get(s, "time_ms"));
    ck_assert(t >= prev);
    prev = t;
    uint32_t region = (uint32_t)atoi(json_string_value(json_object_get(s, "region")));
    uint8_t leaf[SJ_HASH_LEN];
    char b64[64];
    ck_assert_int_eq(sj_store_leaf_hash(g_store, region,
                                        (uint64_t)json_integer_value(json_object_get(s, "seq")),
                                        leaf),
                     0);
    sj_base64_encode(leaf, SJ_HASH_LEN, b64);
    ck_assert_str_eq(json_string_value(json_object_get(s, "leaf_hash")), b64);
  }
  s = json_array_get(json_object_get(j, "steps"), 0);
  ck_assert_str_eq(json_string_value(json_object_get(s, "biz_step")), "commissioning");
  ck_assert_str_eq(json_string_value(json_object_get(s, "operator")), OP_AH);
  ck_assert_str_eq(json_string_value(json_object_get(s, "location")),
                   "urn:epc:id:sgln:6901234.00100.0");
  ck_assert_str_eq(json_string_value(json_object_get(s, "via")), PIG);
  s = json_array_get(json_object_get(j, "steps"), NCHAIN - 2);
  ck_assert_str_eq(json_string_value(json_object_get(s, "biz_step")), "retail_selling");
  ck_assert_str_eq(json_string_value(json_object_get(s, "region")), "310000");
  json_decref(j);
}
END_TEST

/* Forward from the pig lot (a recall): through slaughter, packing, the case's travels, to both
 * packs' sales. */
START_TEST(journey_forward_from_a_lot_reaches_every_pack) {
  uint64_t seqs[NCHAIN];
  load_chain(seqs, NULL);
  json_t *j = walk(PIG, SJ_JOURNEY_FORWARD, 16, 1000, 0);
  ck_assert_uint_eq(nsteps(j), NCHAIN);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "regions")), 4);
  json_decref(j);
  /* from the carcass lot (Digital Link form): back to the farm, forward to the shops */
  j = walk(CAR_DL, SJ_JOURNEY_BOTH, 16, 1000, 0);
  ck_assert_str_eq(json_string_value(json_object_get(j, "code")), CAR_URN);
  ck_assert_uint_eq(nsteps(j), NCHAIN);
  json_t *urn = walk(CAR_URN, SJ_JOURNEY_BOTH, 16, 1000, 0);
  char *a = json_dumps(json_object_get(j, "steps"), JSON_COMPACT);
  char *b = json_dumps(json_object_get(urn, "steps"), JSON_COMPACT);
  ck_assert_str_eq(a, b);
  free(a), free(b);
  json_decref(urn);
  json_decref(j);
  /* backward from the case: its contents' history, not the shops' later sales */
  j = walk(CASE, SJ_JOURNEY_BACK, 16, 1000, 0);
  ck_assert(has_step(j, 0, seqs) && has_step(j, 12, seqs) && !has_step(j, 13, seqs));
  json_decref(j);
}
END_TEST

START_TEST(journey_depth_and_size_bounds) {
  uint64_t seqs[NCHAIN];
  load_chain(seqs, NULL);
  json_t *j = walk(CASE, SJ_JOURNEY_BACK, 1, 1000, 0);
  ck_assert(json_is_true(json_object_get(j, "truncated")));
  ck_assert(has_step(j, 6, seqs));  /* packs made (depth 1) */
  ck_assert(!has_step(j, 5, seqs)); /* carcasses (depth 2) */
  json_decref(j);
  j = walk(P1, SJ_JOURNEY_BOTH, 16, 3, 0);
  ck_assert(json_is_true(json_object_get(j, "truncated")));
  ck_assert_uint_eq(nsteps(j), 3);
  json_decref(j);
  j = walk("urn:epc:id:sgtin:6901234.000003.NOPE", SJ_JOURNEY_BOTH, 16, 10, 0);
  ck_assert_uint_eq(nsteps(j), 0);
  ck_assert(json_is_false(json_object_get(j, "truncated")));
  json_decref(j);
}
END_TEST

/* A needs B, B needs A; X becomes Y, Y becomes X: the walk ends, every event once. */
START_TEST(journey_is_safe_against_cycles) {
  const char *A = "urn:epc:id:sscc:6901234.0000000011", *B = "urn:epc:id:sscc:6901234.0000000012";
  const char *X = "urn:epc:class:lgtin:6901234.000004.X",
             *Y = "urn:epc:class:lgtin:6901234.000004.Y";
  char rec[1024];
  for (int i = 0; i < 4; i++) {
    const char *p = i % 2 ? B : A, *c = i % 2 ? A : B;
    snprintf(rec, sizeof rec,
             "{\"kind\":\"trace\",\"event\":{\"type\":\"AggregationEvent\",\"eventTime\":"
             "\"2024-06-0%dT00:00:00Z\",\"eventTimeZoneOffset\":\"+00:00\",\"action\":\"ADD\","
             "\"parentID\":\"%s\",\"childEPCs\":[\"%s\"]}}",
             i + 1, p, c);
    append(310000 + 10000 * (uint32_t)(i % 2), rec);
    const char *in = i % 2 ? Y : X, *out = i % 2 ? X : Y;
    snprintf(rec, sizeof rec,
             "{\"kind\":\"trace\",\"event\":{\"type\":\"TransformationEvent\",\"eventTime\":"
             "\"2024-06-0%dT00:00:00Z\",\"eventTimeZoneOffset\":\"+00:00\",\"inputQuantityList\":"
             "[{\"epcClass\":\"%s\"}],\"outputQuantityList\":[{\"epcClass\":\"%s\"}]}}",
             i + 1, in, out);
    append(330000, rec);
  }
  int dirs[] = {SJ_JOURNEY_BACK, SJ_JOURNEY_FORWARD, SJ_JOURNEY_BOTH};
  for (int d = 0; d < 3; d++) {
    json_t *j = walk(A, dirs[d], 64, 1000, 0);
    ck_assert_uint_le(nsteps(j), 4);
    ck_assert(json_is_false(json_object_get(j, "truncated")));
    json_decref(j);
    j = walk(X, dirs[d], 64, 1000, 0);
    ck_assert_uint_eq(nsteps(j), 4);
    ck_assert(json_is_false(json_object_get(j, "truncated")));
    json_decref(j);
  }
}
END_TEST

/* An event the caller may not see is listed, withheld, and not followed. */
START_TEST(journey_does_not_follow_what_the_caller_may_not_see) {
  uint64_t seqs[NCHAIN];
  load_chain(seqs, "authorities");
  json_t *j = walk(P1, SJ_JOURNEY_BACK, 16, 1000, 0);
  ck_assert(!has_step(j, 5, seqs) && !has_step(j, 0, seqs)); /* reached only through it */
  json_decref(j);
  j = walk(CAR_URN, SJ_JOURNEY_BACK, 16, 1000, 0);
  ck_assert(has_step(j, 5, seqs) && !has_step(j, 0, seqs));
  json_t *s, *w = NULL;
  size_t k;
  json_array_foreach(json_object_get(j, "steps"), k, s) {
    if ((uint64_t)json_integer_value(json_object_get(s, "seq")) == seqs[5])
      w = s;
  }
  ck_assert_str_eq(json_string_value(json_object_get(w, "withheld")), "disclosure");
  ck_assert_ptr_null(json_object_get(w, "biz_step"));
  json_decref(j);
  j = walk(P1, SJ_JOURNEY_BACK, 16, 1000, 1); /* an authority sees it all */
  ck_assert(has_step(j, 5, seqs) && has_step(j, 0, seqs));
  json_decref(j);
}
END_TEST

/* ---- A node process ------------------------------------------------------------------------- */

static sj_test_node_t g_node;

/* One request; returns the status (or a negative error). */
static int fetch(const char *method, const char *path, const char *token, const char *ctype,
                 const char *body, sj_buf_t *out) {
  sj_test_req_t r = {.method = method, .path = path, .token = token, .ctype = ctype, .body = body};
  return sj_test_fetch(g_node.url, &r, out);
}

static json_t *get_json(const char *path, int want) {
  sj_buf_t b = {0};
  int st = fetch("GET", path, NULL, NULL, NULL, &b);
  ck_assert_msg(st == want, "GET %s: %d %.*s", path, st, (int)b.n, (char *)b.p);
  json_t *j = parse_json(b.p, b.n);
  sj_buf_deinit(&b);
  return j;
}

static uint64_t tree_size(void) {
  return sj_test_node_tree_size(&g_node);
}

static void node_setup(void) {
  unit_setup();
  sj_log_set_level(SJ_LOG_LEVEL_ERR);
  sj_test_node_init(&g_node, g_dir, "310000", "test.sanjiao/310000");
  sj_test_node_add_token(&g_node, "submit", SUBMIT_TOKEN, NULL, "test");
  sj_test_node_add_token(&g_node, "authority", AUTH_TOKEN, NULL, "test");
  char path[600];
  snprintf(path, sizeof path, "%s/token", g_dir); /* for the CLI's --token-file */
  sj_test_write_file(path, SUBMIT_TOKEN "\n", 0600);
  sj_test_node_start(&g_node, NULL);
}

static void node_teardown(void) {
  sj_test_node_stop(&g_node, SIGTERM);
  rm_tmp();
}

/* The chain as one EPCISDocument. */
static void chain_document(sj_buf_t *out) {
  sj_buf_append_str(out, "{\"@context\":[\"https://ref.gs1.org/standards/epcis/2.0.0/"
                         "epcis-context.jsonld\",{\"cn\":\"urn:sanjiao:epcis:cn:\"}],"
                         "\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\",\"creationDate\":"
                         "\"2024-06-01T00:00:00Z\",\"epcisBody\":{\"eventList\":[\n");
  for (size_t i = 0; i < NCHAIN; i++) {
    chain_event(i, out);
    sj_buf_append_str(out, i + 1 < NCHAIN ? ",\n" : "\n");
  }
  sj_buf_append_str(out, "]}}");
}

/* Captures the chain; returns the job. */
static json_t *capture_chain(void) {
  sj_buf_t doc = {0}, b = {0};
  chain_document(&doc);
  int st = fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "application/ld+json",
                 (const char *)doc.p, &b);
  ck_assert_msg(st == 202, "capture: %d %.*s", st, (int)b.n, (char *)b.p);
  json_t *job = parse_json(b.p, b.n);
  sj_buf_deinit(&doc);
  sj_buf_deinit(&b);
  return job;
}

START_TEST(capture_answers_202_and_the_job_shows_where_each_event_went) {
  /* one bare event is a capture too; then a lookup of P1 is cached, and the document's capture
   * must invalidate it (a lookup with no rows at all is avoided: api_read.c's qsort(NULL, 0)) */
  sj_buf_t ev = {0}, b = {0};
  chain_event(13, &ev);
  ck_assert_int_eq(
      fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "application/json", (const char *)ev.p, &b),
      202);
  json_t *before = get_json("/v1/trace/" P1, 200);
  ck_assert_uint_eq(json_array_size(json_object_get(before, "records")), 1);
  json_decref(before);
  json_t *job = capture_chain();
  before = get_json("/v1/trace/" P1, 200);
  ck_assert_uint_eq(json_array_size(json_object_get(before, "records")), 5);
  json_decref(before);
  ck_assert_uint_eq(tree_size(), NCHAIN + 1);
  ck_assert(json_is_true(json_object_get(job, "success")));
  ck_assert(json_is_false(json_object_get(job, "running")));
  json_t *acc = json_object_get(job, "accepted");
  ck_assert_uint_eq(json_array_size(acc), NCHAIN);
  ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(acc, 0), "seq")), 1);
  const char *id = json_string_value(json_object_get(job, "captureID"));
  ck_assert_uint_eq(strlen(id), 32);
  char path[128];
  snprintf(path, sizeof path, "/v1/epcis/capture/%s", id);
  ck_assert_int_eq(fetch("GET", path, NULL, NULL, NULL, &b), 401);
  ck_assert_int_eq(fetch("GET", path, AUTH_TOKEN, NULL, NULL, &b), 200);
  json_t *again = parse_json(b.p, b.n);
  char *x = json_dumps(json_object_get(again, "accepted"), JSON_COMPACT);
  char *y = json_dumps(acc, JSON_COMPACT);
  ck_assert_str_eq(x, y);
  free(x), free(y);
  /* each accepted leaf hash is the log's; the record keeps the document's @context */
  json_t *rec = get_json("/v1/records/310000/1", 200);
  ck_assert_str_eq(json_string_value(json_object_get(rec, "leaf_hash")),
                   json_string_value(json_object_get(json_array_get(acc, 0), "leaf_hash")));
  ck_assert_str_eq(json_string_value(json_object_get(rec, "type")), "ObjectEvent");
  ck_assert(json_is_array(json_object_get(json_object_get(rec, "record"), "@context")));
  json_decref(rec);
  ck_assert_int_eq(fetch("GET", "/v1/epcis/capture/00000000000000000000000000000000", AUTH_TOKEN,
                         NULL, NULL, &b),
                   404);
  ck_assert_int_eq(fetch("GET", "/v1/epcis/capture/xyz", AUTH_TOKEN, NULL, NULL, &b), 400);
  sj_buf_deinit(&ev);
  sj_buf_deinit(&b);
  json_decref(again);
  json_decref(job);
}
END_TEST

/* Invalid captures: 400 naming /epcisBody/eventList/N/..., and nothing written. */
START_TEST(capture_errors_name_the_document_and_write_nothing) {
  const char *doc =
      "{\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\",\"epcisBody\":{\"eventList\":["
      "{\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-01T08:00:00Z\",\"eventTimeZoneOffset\":"
      "\"+00:00\",\"action\":\"OBSERVE\",\"epcList\":[\"" P1 "\"]},"
      "{\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-01T08:00:00Z\",\"eventTimeZoneOffset\":"
      "\"+00:00\",\"action\":\"OBSERVE\",\"bizStep\":\"shippin\",\"epcList\":[\"" P1 "\"],"
      "\"quantityList\":[{\"epcClass\":\"" PIG "\",\"quantity\":1,\"uom\":\"KILO\"}]}]}}";
  sj_buf_t b = {0};
  ck_assert_int_eq(fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "application/ld+json", doc, &b),
                   400);
  json_t *j = parse_json(b.p, b.n), *e;
  size_t i;
  int saw_step = 0, saw_uom = 0;
  json_array_foreach(json_object_get(j, "errors"), i, e) {
    const char *f = json_string_value(json_object_get(e, "field"));
    const char *c = json_string_value(json_object_get(e, "code"));
    ck_assert_int_eq(json_integer_value(json_object_get(e, "index")), 1);
    saw_step |= !strcmp(f, "/epcisBody/eventList/1/bizStep") && !strcmp(c, "BIZ_STEP_INVALID");
    saw_uom |= !strcmp(f, "/epcisBody/eventList/1/quantityList/0/uom") && !strcmp(c, "UOM_INVALID");
    ck_assert(strncmp(json_string_value(json_object_get(e, "message")), "line ", 5) != 0);
  }
  ck_assert(saw_step && saw_uom);
  json_decref(j);
  ck_assert_int_eq(fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "application/json",
                         "{\"type\":\"EPCISDocument\",\"epcisBody\":{\"eventList\":[]}}", &b),
                   400);
  ck_assert(strstr((char *)b.p, "EPCIS_EVENT_LIST_EMPTY"));
  ck_assert_int_eq(fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "application/json",
                         "{\"type\":\"ObjectEvent\",\"action\":\"ADD\"}", &b),
                   400);
  ck_assert(strstr((char *)b.p, "\"field\":\"/eventTime\""));
  ck_assert_int_eq(fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "text/plain", doc, &b), 415);
  ck_assert_int_eq(fetch("POST", "/v1/epcis/capture", NULL, "application/json", doc, &b), 401);
  ck_assert_int_eq(fetch("POST", "/v1/epcis/capture", AUTH_TOKEN, "application/json", doc, &b),
                   403);
  ck_assert_uint_eq(tree_size(), 0);
  sj_buf_deinit(&b);
}
END_TEST

/* One capture with an Idempotency-Key; returns the status, the answer in out and the Location
 * header's value in loc (empty when there was none). */
static int capture_idem(const char *body, const char *key, sj_buf_t *out) {
  sj_test_req_t r = {.method = "POST", .path = "/v1/epcis/capture", .token = SUBMIT_TOKEN,
                     .ctype = "application/ld+json", .idem = key, .body = body};
  return sj_test_fetch(g_node.url, &r, out);
}

/* Capture honours Idempotency-Key as POST /v1/records does: a retry gets the first job again
 * (same id, same entries, nothing appended), another body under the key 422, a bad key 400; a
 * retry after a restart still finds the job; another token's same key is another job. */
START_TEST(capture_honours_idempotency_key) {
  sj_buf_t doc = {0}, b1 = {0}, b2 = {0};
  chain_document(&doc);
  ck_assert_int_eq(capture_idem((const char *)doc.p, "cap-1", &b1), 202);
  ck_assert_int_eq(capture_idem((const char *)doc.p, "cap-1", &b2), 202);
  ck_assert_uint_eq(tree_size(), NCHAIN);
  json_t *j1 = parse_json(b1.p, b1.n), *j2 = parse_json(b2.p, b2.n);
  ck_assert_str_eq(json_string_value(json_object_get(j1, "captureID")),
                   json_string_value(json_object_get(j2, "captureID")));
  char *x = json_dumps(json_object_get(j1, "accepted"), JSON_COMPACT);
  char *y = json_dumps(json_object_get(j2, "accepted"), JSON_COMPACT);
  ck_assert_str_eq(x, y);
  free(x), free(y);
  ck_assert_str_eq(json_string_value(json_object_get(j1, "finishedAt")),
                   json_string_value(json_object_get(j2, "finishedAt")));
  /* the job is there under its id */
  char path[128];
  snprintf(path, sizeof path, "/v1/epcis/capture/%s",
           json_string_value(json_object_get(j1, "captureID")));
  ck_assert_int_eq(fetch("GET", path, SUBMIT_TOKEN, NULL, NULL, &b2), 200);
  /* another body under the same key */
  sj_buf_t ev = {0};
  chain_event(0, &ev);
  ck_assert_int_eq(capture_idem((const char *)ev.p, "cap-1", &b2), 422);
  ck_assert(strstr((char *)b2.p, "Idempotency-Key reused"));
  char longkey[300];
  memset(longkey, 'k', 256); /* over the 255 characters a key may have */
  longkey[256] = 0;
  ck_assert_int_eq(capture_idem((const char *)ev.p, longkey, &b2), 400);
  ck_assert(strstr((char *)b2.p, "IDEMPOTENCY_KEY_INVALID"));
  ck_assert_uint_eq(tree_size(), NCHAIN);
  /* committed with the events: a retry after kill -9 still gets the first answer */
  sj_test_node_stop(&g_node, SIGKILL);
  sj_test_node_start(&g_node, NULL);
  ck_assert_int_eq(capture_idem((const char *)doc.p, "cap-1", &b2), 202);
  json_decref(j2);
  j2 = parse_json(b2.p, b2.n);
  ck_assert_str_eq(json_string_value(json_object_get(j1, "captureID")),
                   json_string_value(json_object_get(j2, "captureID")));
  ck_assert_uint_eq(tree_size(), NCHAIN);
  /* without a key, the same document is appended again */
  ck_assert_int_eq(fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "application/ld+json",
                         (const char *)doc.p, &b2),
                   202);
  ck_assert_uint_eq(tree_size(), 2 * NCHAIN);
  json_decref(j1);
  json_decref(j2);
  sj_buf_deinit(&ev);
  sj_buf_deinit(&doc);
  sj_buf_deinit(&b1);
  sj_buf_deinit(&b2);
}
END_TEST

static int cli(const char *args, const char *out_name);
static void read_all(const char *name, sj_buf_t *out);

/* The journey endpoint: URN and percent-encoded Digital Link give the same steps. */
START_TEST(journey_endpoint_urn_and_digital_link_agree) {
  json_decref(capture_chain());
  json_t *u = get_json("/v1/trace/" CAR_URN "/journey?direction=both", 200);
  json_t *d = get_json("/v1/trace/https%3A%2F%2Fid.gs1.org%2F01%2F06901234000023%2F10%2FCAR01"
                       "/journey",
                       200);
  ck_assert_uint_eq(nsteps(u), NCHAIN);
  char *a = json_dumps(json_object_get(u, "steps"), JSON_COMPACT);
  char *b = json_dumps(json_object_get(d, "steps"), JSON_COMPACT);
  ck_assert_str_eq(a, b);
  free(a), free(b);
  json_decref(u);
  json_decref(d);
  u = get_json("/v1/trace/" P1 "/journey?direction=back&depth=1&limit=5", 200);
  ck_assert_uint_le(nsteps(u), 5);
  ck_assert(json_is_true(json_object_get(u, "truncated")));
  json_decref(u);
  json_decref(get_json("/v1/trace/" P1 "/journey?direction=sideways", 400));
  json_decref(get_json("/v1/trace/" P1 "/journey?depth=0", 400));
  json_t *bad = get_json("/v1/trace/urn:epc:id:sgtin:6901234.000003/journey", 400);
  ck_assert_str_eq(
      json_string_value(json_object_get(json_array_get(json_object_get(bad, "errors"), 0), "code")),
      "EPC_FORMAT");
  json_decref(bad);
  /* the CLI's timeline, from the Digital Link form (it percent-encodes the code) */
  sj_buf_t out = {0};
  ck_assert_int_eq(cli("trace '" CAR_DL "' --journey --direction back", "j1"), 0);
  read_all("j1.out", &out);
  ck_assert_msg(strstr((char *)out.p, "journey of " CAR_URN " (back): 7 steps, regions 310000"),
                "%s", (char *)out.p);
  ck_assert(strstr((char *)out.p, "killing") && strstr((char *)out.p, "operator " OP_AH));
  sj_buf_deinit(&out);
  /* the plain lookup still answers on the rest-of-path route */
  json_t *t = get_json("/v1/trace/" CASE, 200);
  ck_assert_uint_eq(json_array_size(json_object_get(t, "records")), 6);
  json_decref(t);
}
END_TEST

/* Captures one bare event (a capture of its own). */
static void capture_one(const char *event) {
  sj_buf_t b = {0};
  int st = fetch("POST", "/v1/epcis/capture", SUBMIT_TOKEN, "application/json", event, &b);
  ck_assert_msg(st == 202, "capture: %d %.*s", st, (int)b.n, (char *)b.p);
  sj_buf_deinit(&b);
}

/* A public journey is kept in the response cache while none of the codes it read gets a new
 * event: a new event on the case that carried the pack (read by the walk) shows at once, an event
 * about an unrelated code keeps the cached answer, an authority's journey is never cached. */
START_TEST(cached_journeys_see_new_events_on_every_code_they_read) {
  const char *path = "/v1/trace/" P2 "/journey?direction=forward";
  sj_buf_t ev = {0};
  for (size_t i = 0; i < 9; i++) { /* up to the case leaving Jiangsu */
    sj_buf_reset(&ev);
    chain_event(i, &ev);
    capture_one((const char *)ev.p);
  }
  json_t *j = get_json(path, 200);
  size_t n0 = nsteps(j);
  json_decref(j);
  unsigned long long hits = sj_test_node_metric(&g_node, "sanjiao_cache_hits_total");
  j = get_json(path, 200); /* from the cache */
  ck_assert_uint_eq(nsteps(j), n0);
  json_decref(j);
  ck_assert_uint_eq(sj_test_node_metric(&g_node, "sanjiao_cache_hits_total"), hits + 1);
  sj_buf_reset(&ev);
  chain_event(9, &ev); /* the case received in Zhejiang: a new event on a code the walk read */
  capture_one((const char *)ev.p);
  j = get_json(path, 200);
  ck_assert_uint_eq(nsteps(j), n0 + 1);
  json_decref(j);
  ck_assert_uint_eq(sj_test_node_metric(&g_node, "sanjiao_cache_hits_total"), hits + 1);
  capture_one("{\"type\":\"ObjectEvent\",\"eventTime\":\"2024-05-20T08:00:00+08:00\","
              "\"eventTimeZoneOffset\":\"+08:00\",\"action\":\"OBSERVE\","
              "\"epcList\":[\"urn:epc:id:sgtin:6901234.000009.X9\"]}");
  j = get_json(path, 200); /* an unrelated code's event: still the cached answer */
  ck_assert_uint_eq(nsteps(j), n0 + 1);
  json_decref(j);
  ck_assert_uint_eq(sj_test_node_metric(&g_node, "sanjiao_cache_hits_total"), hits + 2);
  sj_buf_t b = {0};
  for (int k = 0; k < 2; k++)
    ck_assert_int_eq(fetch("GET", path, AUTH_TOKEN, NULL, NULL, &b), 200);
  ck_assert_uint_eq(sj_test_node_metric(&g_node, "sanjiao_cache_hits_total"), hits + 2);
  sj_buf_deinit(&b);
  sj_buf_deinit(&ev);
}
END_TEST

static size_t event_count(json_t *q) {
  json_t *list = json_object_get(
      json_object_get(json_object_get(json_object_get(q, "epcisBody"), "queryResults"),
                      "resultsBody"),
      "eventList");
  ck_assert(json_is_array(list));
  return json_array_size(list);
}

START_TEST(epcis_query_subset) {
  json_decref(capture_chain());
  json_t *q = get_json("/v1/epcis/events?MATCH_anyEPC=" CASE, 200);
  ck_assert_str_eq(json_string_value(json_object_get(q, "type")), "EPCISQueryDocument");
  ck_assert_uint_eq(event_count(q), 6);
  json_decref(q);
  /* paging: 2 + 2 + 2, every event once */
  char path[512];
  snprintf(path, sizeof path, "/v1/epcis/events?MATCH_anyEPC=%s&perPage=2", CASE);
  size_t total = 0, pages = 0;
  for (;;) {
    q = get_json(path, 200);
    total += event_count(q);
    pages++;
    const char *tok = json_string_value(json_object_get(q, "nextPageToken"));
    if (!tok) {
      json_decref(q);
      break;
    }
    snprintf(path, sizeof path, "/v1/epcis/events?MATCH_anyEPC=%s&perPage=2&nextPageToken=%s", CASE,
             tok);
    json_decref(q);
  }
  ck_assert_uint_eq(total, 6);
  ck_assert_uint_eq(pages, 3);
  q = get_json("/v1/epcis/events?MATCH_anyEPC=" CASE
               "&EQ_bizStep=urn:epcglobal:cbv:bizstep:shipping,receiving",
               200);
  ck_assert_uint_eq(event_count(q), 4);
  json_decref(q);
  q = get_json("/v1/epcis/events?MATCH_epcClass=" PIG, 200);
  ck_assert_uint_eq(event_count(q), 3); /* quantityList and childQuantityList, not inputs */
  json_decref(q);
  q = get_json("/v1/epcis/events?MATCH_anyEPCClass=urn:epc:idpat:sgtin:6901234.000001.*", 200);
  ck_assert_uint_eq(event_count(q), 4); /* the pattern (a full scan): the killing's input too */
  json_decref(q);
  q = get_json("/v1/epcis/events?MATCH_anyEPC=" P1 "," P2
               "&GE_eventTime=2024-05-08T08:00:00%2B08:00&LT_eventTime=2024-05-14T00:00:00Z",
               200);
  ck_assert_uint_eq(event_count(q), 2); /* packing and unpacking */
  json_t *ev = json_array_get(
      json_object_get(
          json_object_get(json_object_get(json_object_get(q, "epcisBody"), "queryResults"),
                          "resultsBody"),
          "eventList"),
      0);
  ck_assert_str_eq(json_string_value(json_object_get(ev, "sanjiao:region")), "310000");
  ck_assert(json_is_integer(json_object_get(ev, "sanjiao:seq")));
  json_decref(q);
  q = get_json("/v1/epcis/events?eventType=TransformationEvent", 200);
  ck_assert_uint_eq(event_count(q), 2);
  json_decref(q);
  json_decref(get_json("/v1/epcis/events?MATCH_epc=" P1, 400));
  json_decref(get_json("/v1/epcis/events?EQ_bizStep=nope", 400));
  json_decref(get_json("/v1/epcis/events?GE_eventTime=yesterday", 400));
  json_decref(get_json("/v1/epcis/events?perPage=0", 400));
  json_decref(get_json("/v1/epcis/events?nextPageToken=zz", 400));
}
END_TEST

/* ---- The sample generator and bulk import ------------------------------------------------------
 */

/* Runs the CLI with a shell command line (stdout and stderr to files in the test dir). Returns
 * the exit status. */
static int cli(const char *args, const char *out_name) {
  return sj_test_sh("cd '%s' && '%s/sanjiao' %s --node %s --token-file token >%s.out 2>%s.err",
                    g_dir, getenv("SJ_BIN"), args, g_node.url, out_name, out_name);
}

static int sample(const char *dir, int records, int seed) {
  return sj_test_sh("cd '%s' && '%s/sanjiao' sample --records %d --seed %d --out %s >%s.codes",
                    g_dir, getenv("SJ_BIN"), records, seed, dir, dir);
}

static void read_all(const char *name, sj_buf_t *out) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  char chunk[65536];
  size_t n;
  sj_buf_reset(out);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    sj_buf_append(out, chunk, n);
  fclose(f);
}

static size_t count_lines(const sj_buf_t *b) {
  size_t n = 0;
  for (size_t i = 0; i < b->n; i++)
    n += b->p[i] == '\n';
  return n;
}

/* The value after "key " on a line of the codes file. */
static void code_line(const sj_buf_t *codes, const char *key, char *out, size_t cap) {
  const char *p = strstr((const char *)codes->p, key);
  ck_assert_msg(p != NULL, "no '%s' line", key);
  p += strlen(key) + 1;
  size_t k = strcspn(p, "\n");
  ck_assert_uint_lt(k, cap);
  memcpy(out, p, k);
  out[k] = 0;
}

static const char *const region_files[] = {"310000", "320000", "330000", "340000"};

START_TEST(sample_is_deterministic_and_every_record_is_accepted) {
  ck_assert_int_eq(sample("a", 1200, 5), 0);
  ck_assert_int_eq(sample("b", 1200, 5), 0);
  ck_assert_int_eq(sample("c", 1200, 6), 0);
  sj_buf_t x = {0}, y = {0}, codes = {0}, resp = {0};
  size_t total = 0, differ = 0;
  for (int r = 0; r < 4; r++) {
    char a[64], b[64], c[64];
    snprintf(a, sizeof a, "a/%s.ndjson", region_files[r]);
    snprintf(b, sizeof b, "b/%s.ndjson", region_files[r]);
    snprintf(c, sizeof c, "c/%s.ndjson", region_files[r]);
    read_all(a, &x);
    read_all(b, &y);
    ck_assert_uint_eq(x.n, y.n);
    ck_assert(memcmp(x.p, y.p, x.n) == 0); /* same seed, same bytes */
    ck_assert(strstr((char *)x.p, "\"test_data\":true") && strstr((char *)x.p, "测试"));
    read_all(c, &y);
    differ += x.n != y.n || memcmp(x.p, y.p, x.n) != 0;
    total += count_lines(&x);
    int st = fetch("POST", "/v1/records", SUBMIT_TOKEN, "application/x-ndjson", (char *)x.p, &resp);
    ck_assert_msg(st == 201, "%s: %d %.*s", a, st, (int)(resp.n > 800 ? 800 : resp.n),
                  (char *)resp.p);
  }
  ck_assert_uint_eq(total, 1200);
  ck_assert_uint_gt(differ, 0);
  ck_assert_uint_eq(tree_size(), 1200);
  /* the codes it prints: an enterprise with records from several regions' authorities, a pack
   * whose journey crosses the four regions */
  char ent[64], code[256], path[512];
  read_all("a.codes", &codes);
  code_line(&codes, "sample-enterprise", ent, sizeof ent);
  code_line(&codes, "sample-trace-code", code, sizeof code);
  ck_assert_int_eq(sj_uscc_check(ent, strlen(ent)), SJ_ID_OK);
  snprintf(path, sizeof path, "/v1/subjects/%s", ent);
  json_t *j = get_json(path, 200), *s;
  ck_assert_uint_ge(json_array_size(json_object_get(j, "records")), 4);
  json_decref(j);
  snprintf(path, sizeof path, "/v1/trace/%s/journey", code);
  j = get_json(path, 200);
  int seen[4] = {0};
  size_t i;
  json_array_foreach(json_object_get(j, "steps"), i, s) {
    const char *op = json_string_value(json_object_get(s, "operator"));
    ck_assert_ptr_nonnull(op);
    for (int r = 0; r < 4; r++)
      seen[r] |= !strncmp(op + 2, region_files[r], 2);
  }
  ck_assert_msg(seen[0] && seen[1] && seen[2] && seen[3], "journey does not cross four regions");
  ck_assert_uint_ge(json_array_size(json_object_get(j, "steps")), 14);
  json_decref(j);
  sj_buf_deinit(&x);
  sj_buf_deinit(&y);
  sj_buf_deinit(&codes);
  sj_buf_deinit(&resp);
}
END_TEST

/* Interrupted after two batches, resumed, rerun: every line once in the log. */
START_TEST(import_resumes_without_duplicates) {
  ck_assert_int_eq(sample("s", 600, 9), 0);
  sj_buf_t f = {0};
  read_all("s/320000.ndjson", &f);
  size_t lines = count_lines(&f);
  ck_assert_uint_gt(lines, 120);
  ck_assert_int_eq(cli("import s/320000.ndjson --batch 40 --max-batches 2", "i1"), 3);
  ck_assert_uint_eq(tree_size(), 80);
  ck_assert_int_eq(cli("import s/320000.ndjson --batch 40 --resume", "i2"), 0);
  ck_assert_uint_eq(tree_size(), lines);
  read_all("i2.out", &f);
  ck_assert_msg(strstr((char *)f.p, "80 skipped as imported before"), "%s", (char *)f.p);
  /* no state left: a plain rerun sends every batch again and the node replays its answers */
  ck_assert_int_eq(cli("import s/320000.ndjson --batch 40", "i3"), 0);
  ck_assert_uint_eq(tree_size(), lines);
  /* interrupted again (another file), then rerun without --resume: the keys alone suffice */
  ck_assert_int_eq(cli("import s/330000.ndjson --batch 30 --max-batches 1", "i4"), 3);
  ck_assert_int_eq(cli("import s/330000.ndjson --batch 30", "i5"), 0);
  read_all("s/330000.ndjson", &f);
  ck_assert_uint_eq(tree_size(), lines + count_lines(&f));
  sj_buf_deinit(&f);
}
END_TEST

/* A published list as CSV: every bad row reported with its line; all-or-nothing per batch unless
 * --skip-invalid. An EPCIS document imports as trace records. */
START_TEST(import_csv_lists_and_epcis_documents) {
  char path[600];
  snprintf(path, sizeof path, "%s/list.csv", g_dir);
  sj_test_write_file(
      path,
      "\xEF\xBB\xBF企业名称,统一社会信用代码,列入日期,列入原因,作出决定机关\n"
      "测试甲公司(TEST)," OP_AH ",2024/3/5,\"通过登记的住所无法联系, 经查\",合肥市市场监督管理局\n"
      "测试乙公司(TEST),91340100MA2T000014,2024年4月1日,未按规定公示年度报告,合肥市市场监督管理局\n"
      "\"测试丙公司\n(TEST)\"," OP_JS ",20240402,逾期未报,南京市市场监督管理局\n",
      0644);
  sj_buf_t out = {0};
  ck_assert_int_eq(cli("import list.csv", "c1"), 1);
  read_all("c1.err", &out);
  ck_assert_msg(strstr((char *)out.p, "list.csv:3: USCC_CHECKSUM /subject/id"), "%s",
                (char *)out.p);
  ck_assert_uint_eq(tree_size(), 0);
  ck_assert_int_eq(cli("import list.csv --skip-invalid", "c2"), 0);
  ck_assert_uint_eq(tree_size(), 2);
  json_t *r = get_json("/v1/records/310000/1", 200);
  json_t *rec = json_object_get(r, "record");
  ck_assert_str_eq(json_string_value(json_object_get(rec, "type")), "abnormal_list");
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rec, "period"), "from")),
                   "2024-04-02");
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(rec, "source"), "line")), 4);
  json_decref(r);
  sj_buf_t doc = {0};
  chain_document(&doc);
  snprintf(path, sizeof path, "%s/chain.json", g_dir);
  sj_test_write_file(path, (char *)doc.p, 0644);
  ck_assert_int_eq(cli("import chain.json --batch 4", "e1"), 0);
  ck_assert_uint_eq(tree_size(), 2 + NCHAIN);
  json_t *t = get_json("/v1/trace/" P1 "/journey?direction=back", 200);
  ck_assert_uint_eq(nsteps(t), NCHAIN - 1);
  json_decref(t);
  sj_buf_deinit(&doc);
  sj_buf_deinit(&out);
}
END_TEST

/* ---- Suite --------------------------------------------------------------------------------------
 */

static Suite *trace_suite(void) {
  Suite *s = suite_create("trace");
  struct {
    const char *name;
    void (*setup)(void), (*teardown)(void);
    const TTest *tests[8];
  } cases[] = {
      {"epcis",
       unit_setup,
       rm_tmp,
       {cbv_values_in_every_spelling, every_chain_event_is_valid, epcis_error_codes,
        event_times_parse_and_format, epcis_documents_split_into_records}},
      {"journey",
       store_setup,
       store_teardown,
       {journey_back_from_a_pack_spans_four_regions, journey_forward_from_a_lot_reaches_every_pack,
        journey_depth_and_size_bounds, journey_is_safe_against_cycles,
        journey_does_not_follow_what_the_caller_may_not_see}},
      {"capture",
       node_setup,
       node_teardown,
       {capture_answers_202_and_the_job_shows_where_each_event_went,
        capture_errors_name_the_document_and_write_nothing, capture_honours_idempotency_key}},
      {"journey_api",
       node_setup,
       node_teardown,
       {journey_endpoint_urn_and_digital_link_agree,
        cached_journeys_see_new_events_on_every_code_they_read}},
      {"query", node_setup, node_teardown, {epcis_query_subset}},
      {"sample", node_setup, node_teardown, {sample_is_deterministic_and_every_record_is_accepted}},
      {"import",
       node_setup,
       node_teardown,
       {import_resumes_without_duplicates, import_csv_lists_and_epcis_documents}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, cases[i].setup, cases[i].teardown);
    tcase_set_timeout(tc, 120);
    for (size_t k = 0; k < 8 && cases[i].tests[k]; k++)
      tcase_add_test(tc, cases[i].tests[k]);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void) {
  return sj_test_run_suite(trace_suite());
}
