/* fuzz_record — submission bodies (node/record.c): JSON objects, JSON arrays and NDJSON as a
 * department POSTs them to /v1/records, validated before anything is written.
 *
 * The first input byte picks the Content-Type (both accepted media types with and without
 * parameters, refused ones, or the input's first line) and a record limit; the rest is the body.
 * Properties:
 *   - the result is one of the documented codes; a refusal always explains itself in errs, and
 *     the error list always serialises to a JSON array of as many objects (messages quote input);
 *   - an accepted request has records whose body is valid JSON (an object, no duplicate keys),
 *     hashes to body_hash, is the trimmed input itself for a single object, and whose header
 *     fields and index keys make a header sj_entry_encode accepts and decodes back; EPC keys are
 *     canonical (sj_epc_canonical of the key is the key) and USCC keys pass the USCC check. */
#include "node/epc.h"
#include "node/record.h"
#include "tests/fuzz/fuzz.h"

#include <jansson.h>
#include <string.h>

/* As node/record.c reads JSON: big integers are reals, duplicate keys refused, any value. */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY)

static const char *const k_types[] = {
    "application/json",
    "application/x-ndjson",
    "application/json; charset=utf-8",
    "Application/NDJSON ;charset=\"UTF8\"",
    "application/json;charset=latin1",
    "", /* slot 5: the Content-Type is the input's first line (see below) */
    "application/x-ndjson; foo=bar; charset=utf-8",
    NULL,
};
static uint8_t hkey[SJ_REC_HMAC_KEY_LEN];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  memset(hkey, 0x42, sizeof hkey);
  return sj_crypto_init();
}

static void check_errors_json(const sj_rec_errors_t *errs) {
  sj_buf_t out = {0};
  FUZZ_CHECK(sj_rec_errors_to_json(errs, &out) == 0);
  json_error_t je;
  json_t *arr = json_loadb((const char *)out.p, out.n, 0, &je);
  FUZZ_CHECK(arr && json_is_array(arr) && json_array_size(arr) == errs->n);
  json_decref(arr);
  sj_buf_deinit(&out);
}

static void check_key(const sj_index_key_t *k) {
  if (k->type == SJ_KEY_EPC) {
    sj_epc_t e;
    FUZZ_CHECK(sj_epc_canonical((const char *)k->p, k->len, &e) == SJ_EPC_OK);
    FUZZ_CHECK(e.len == k->len && memcmp(e.urn, k->p, k->len) == 0);
  } else if (k->type == SJ_KEY_USCC) {
    FUZZ_CHECK(sj_uscc_check((const char *)k->p, k->len) == SJ_ID_OK);
  } else {
    FUZZ_CHECK(k->type == SJ_KEY_PERSON && k->len == SJ_HASH_LEN);
  }
}

static void check_record(const sj_record_t *r) {
  uint8_t h[SJ_HASH_LEN];
  sj_sha256(r->body, r->body_len, h);
  FUZZ_CHECK(memcmp(h, r->body_hash, SJ_HASH_LEN) == 0);
  json_error_t je;
  json_t *o = json_loadb((const char *)r->body, r->body_len, LOAD_FLAGS, &je);
  if (!o)
    fprintf(stderr, "record %zu body is not JSON: %s\n", r->index, je.text);
  FUZZ_CHECK(o && json_is_object(o));
  json_decref(o);
  FUZZ_CHECK(r->type_len == strlen(r->type) && r->type_len >= 1);
  FUZZ_CHECK(r->kind == SJ_KIND_CREDIT ? r->subject_type != SJ_SUBJECT_NONE
                                       : r->kind == SJ_KIND_TRACE);
  for (size_t i = 0; i < r->nkeys; i++)
    check_key(&r->keys[i]);
  sj_entry_header_t hd;
  memset(&hd, 0, sizeof hd);
  hd.version = SJ_ENTRY_VERSION;
  hd.region = 310000;
  sj_record_header_fill(r, &hd);
  sj_buf_t enc = {0};
  FUZZ_CHECK(sj_entry_encode(&hd, &enc) == 0);
  static sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_entry_header_t back;
  FUZZ_CHECK(sj_entry_decode(enc.p, enc.n, &back, keys, SJ_ENTRY_MAX_KEYS) == 0);
  FUZZ_CHECK(back.nkeys == r->nkeys && back.body_len == r->body_len);
  sj_buf_deinit(&enc);
}

/* Whitespace-trimmed input: what a single JSON object's stored body must be. */
static int is_trimmed_input(const sj_record_t *r, const uint8_t *p, size_t n) {
  while (n && strchr(" \t\r\n", p[0]) && p[0])
    p++, n--;
  while (n && strchr(" \t\r\n", p[n - 1]) && p[n - 1])
    n--;
  return r->body_len == n && memcmp(r->body, p, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const char *ct = k_types[data[0] & 7];
  size_t max_records = (data[0] >> 3) & 3; /* 0 (no limit), 1, 2 or 3 */
  const uint8_t *body = data + 1;
  size_t n = size - 1;
  char ctbuf[256];
  if ((data[0] & 7) == 5) { /* a header value as nghttp2 hands it over: no NUL, CR or LF */
    const uint8_t *nl = memchr(body, '\n', n);
    size_t cl = nl ? (size_t)(nl - body) : n;
    if (cl >= sizeof ctbuf || memchr(body, 0, cl) || memchr(body, '\r', cl))
      return 0;
    memcpy(ctbuf, body, cl);
    ctbuf[cl] = 0;
    ct = ctbuf;
    body += nl ? cl + 1 : cl;
    n -= nl ? cl + 1 : cl;
  }
  sj_rec_errors_t errs;
  sj_rec_errors_init(&errs, (data[0] >> 5) ? 4 : 0); /* sometimes a small error cap */
  sj_record_t *recs = NULL;
  size_t nrecs = 0;
  int rv = sj_record_parse_request(body, n, ct, hkey, max_records, &recs, &nrecs, &errs);
  FUZZ_CHECK(rv == 0 || rv == SJ_EPROTO || rv == SJ_EFORMAT || rv == SJ_ETOOBIG || rv == SJ_EINVAL);
  check_errors_json(&errs);
  if (rv != 0) {
    FUZZ_CHECK(errs.total >= 1 && errs.n >= 1 && !recs);
  } else {
    FUZZ_CHECK(recs && nrecs >= 1 && errs.total == 0);
    FUZZ_CHECK(!max_records || nrecs <= max_records);
    for (size_t i = 0; i < nrecs; i++) {
      FUZZ_CHECK(recs[i].index == i);
      check_record(&recs[i]);
    }
    /* One JSON object is stored exactly as sent (trimmed): no re-serialisation. */
    size_t t = 0;
    while (t < n && strchr(" \t\r\n", body[t]) && body[t])
      t++;
    if ((data[0] & 7) == 0 && t < n && body[t] == '{')
      FUZZ_CHECK(is_trimmed_input(&recs[0], body, n));
  }
  sj_records_free(recs, nrecs);
  sj_rec_errors_deinit(&errs);
  return 0;
}
