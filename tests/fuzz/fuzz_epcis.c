/* fuzz_epcis — EPCIS 2.0 capture (node/epcis.c): POST /v1/epcis/capture takes an EPCISDocument
 * or a bare event, splits it into events, turns them into NDJSON trace records and validates
 * those (node/record.c, which applies the EPCIS/CBV rules of sj_epcis_check_event).
 *
 * The first byte picks the mode:
 *   0  the capture pipeline exactly as node/api_trace.c runs it. Properties: codes as
 *      documented; every event span lies inside the body and is a JSON value; the NDJSON has
 *      one valid JSON line per event; the record validation of that NDJSON returns a documented
 *      code, and on success as many records as events, all of them objects; every error list
 *      serialises to JSON.
 *   1  times and offsets. Properties: a parsed time formats (UTC, ms) to a text that parses back
 *      to the same instant, for every instant in years 1..9999; offsets stay within ±14:00.
 *   2  CBV vocabularies and units. Property: a CBV value always yields its bare word. */
#include "node/epcis.h"
#include "node/record.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <string.h>

/* As node/record.c reads JSON: big integers are reals, duplicate keys refused, any value. */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY)

#define MAX_EVENTS 100000 /* CAPTURE_MAX_EVENTS of node/api_trace.c */

static uint8_t hkey[SJ_REC_HMAC_KEY_LEN];
static int64_t t_min, t_max; /* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  memset(hkey, 0x42, sizeof hkey);
  FUZZ_CHECK(sj_epcis_parse_time("0001-01-01T00:00:00Z", 20, &t_min) == 0);
  FUZZ_CHECK(sj_epcis_parse_time("9999-12-31T23:59:59.999Z", 24, &t_max) == 0);
  return sj_crypto_init();
}

static void check_errors_json(const sj_rec_errors_t *errs) {
  sj_buf_t out = {0};
  FUZZ_CHECK(sj_rec_errors_to_json(errs, &out) == 0);
  json_t *arr = json_loadb((const char *)out.p, out.n, 0, NULL);
  FUZZ_CHECK(arr && json_array_size(arr) == errs->n);
  json_decref(arr);
  sj_buf_deinit(&out);
}

/* Every non-empty line of p[0..n) is a JSON object; returns the count. */
static size_t json_lines(const uint8_t *p, size_t n) {
  size_t count = 0, pos = 0;
  while (pos < n) {
    const uint8_t *nl = memchr(p + pos, '\n', n - pos);
    size_t len = nl ? (size_t)(nl - (p + pos)) : n - pos;
    json_error_t je;
    json_t *o = json_loadb((const char *)p + pos, len, LOAD_FLAGS, &je);
    if (!o)
      fprintf(stderr, "NDJSON line %zu: %s\n", count + 1, je.text);
    FUZZ_CHECK(o && json_is_object(o));
    json_decref(o);
    count++;
    pos += len + 1;
  }
  return count;
}

static void capture_mode(const uint8_t *body, size_t n) {
  sj_rec_errors_t errs;
  sj_epcis_doc_t d = {0};
  sj_buf_t nd = {0};
  sj_rec_errors_init(&errs, 0);
  int rv = sj_epcis_split(body, n, MAX_EVENTS, &d, &errs);
  FUZZ_CHECK(rv == 0 || rv == SJ_EFORMAT || rv == SJ_ETOOBIG);
  check_errors_json(&errs);
  if (rv != 0) {
    FUZZ_CHECK(errs.n == 1);
    goto out;
  }
  FUZZ_CHECK(d.nevents >= 1);
  int all_objects = 1;
  for (size_t i = 0; i < d.nevents; i++) {
    FUZZ_CHECK(d.events[i].off <= n && d.events[i].len <= n - d.events[i].off);
    json_t *ev =
        json_loadb((const char *)body + d.events[i].off, d.events[i].len, LOAD_FLAGS, NULL);
    FUZZ_CHECK(ev != NULL); /* a JSON value; one that is not an object fails validation below */
    all_objects &= json_is_object(ev);
    json_decref(ev);
  }
  FUZZ_CHECK(d.context.off <= n && d.context.len <= n - d.context.off);
  FUZZ_CHECK(sj_epcis_to_ndjson(body, &d, &nd) == 0);
  FUZZ_CHECK(json_lines(nd.p, nd.n) == d.nevents);
  sj_record_t *recs = NULL;
  size_t nrecs = 0;
  rv = sj_record_parse_request(nd.p, nd.n, "application/x-ndjson", hkey, MAX_EVENTS, &recs, &nrecs,
                               &errs);
  FUZZ_CHECK(rv == 0 || rv == SJ_EINVAL || rv == SJ_EFORMAT);
  FUZZ_CHECK(rv != 0 || (nrecs == d.nevents && all_objects));
  check_errors_json(&errs);
  sj_records_free(recs, nrecs);
out:
  sj_rec_errors_deinit(&errs);
  sj_epcis_doc_free(&d);
  sj_buf_deinit(&nd);
}

static void time_mode(const char *s, size_t n) {
  int64_t ms, again;
  if (sj_epcis_parse_time(s, n, &ms) == 0 && ms >= t_min && ms <= t_max) {
    char out[64];
    sj_epcis_format_time(ms, out);
    FUZZ_CHECK(sj_epcis_parse_time(out, strlen(out), &again) == 0 && again == ms);
  }
  int min;
  if (sj_epcis_parse_offset(s, n, &min) == 0)
    FUZZ_CHECK(min >= -14 * 60 && min <= 14 * 60);
}

static void vocab_mode(const char *s, size_t n) {
  for (int v = SJ_CBV_BIZSTEP; v <= SJ_CBV_ERROR_REASON; v++) {
    const char *word = NULL;
    int c = sj_cbv_classify((sj_cbv_vocab_t)v, s, n, &word);
    FUZZ_CHECK(c >= -1 && c <= 1);
    FUZZ_CHECK(c != 1 || (word && *word));
  }
  char *z = malloc(n + 1);
  FUZZ_CHECK(z != NULL);
  memcpy(z, s, n);
  z[n] = 0;
  (void)sj_epcis_uom_known(z);
  free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  /* Copied to an exact-size buffer: nothing may read past n. */
  uint8_t *copy = malloc(n ? n : 1);
  FUZZ_CHECK(copy != NULL);
  if (n)
    memcpy(copy, p, n);
  switch (data[0] % 3) {
  case 0:
    capture_mode(copy, n);
    break;
  case 1:
    time_mode((const char *)copy, n);
    break;
  default:
    vocab_mode((const char *)copy, n);
    break;
  }
  free(copy);
  return 0;
}
