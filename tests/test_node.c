/* tests/test_node.c — the region node as a real process on loopback, spoken to over HTTP/2:
 * round trips, validation errors, all-or-nothing batches, idempotent retries, proofs that verify
 * offline, restarts (clean and kill -9), concurrent submitters, access control, lookups, the CLI. */
#include "tests/support.h"

#include "node/credit.h"
#include "storage/storage.h"
#include "tests/rawdb.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUBMIT_TOKEN "sjt_test_submit_token"
#define AUTH_TOKEN "sjt_test_authority_token"
#define ORIGIN "test.sanjiao/310000"
#define USCC1 "91310115MA1K00007Q"
#define USCC2 "91320500MA1X00009R"

static char g_dir[512];
static const char *g_min_free = "0"; /* --min-free-mb for the node (the full-disk test sets it) */
static const char *g_token_rate = "0"; /* --token-rate (the rate-limit test sets it) */
static sj_test_node_t g_node;

/* ---- fixture: a node process ------------------------------------------------------------------- */

static int fetch(const char *method, const char *path, const char *token, const char *ctype,
                 const char *body, size_t blen, const char *idem, sj_buf_t *out) {
  sj_test_req_t r = {method, path, token, ctype, idem, NULL, body, blen, 0};
  return sj_test_fetch(g_node.url, &r, out);
}

static int get(const char *path, const char *token, sj_buf_t *out) {
  return fetch("GET", path, token, NULL, NULL, 0, NULL, out);
}

static int post(const char *body, const char *ctype, const char *idem, sj_buf_t *out) {
  return fetch("POST", "/v1/records", SUBMIT_TOKEN, ctype ? ctype : "application/json", body,
               strlen(body), idem, out);
}

static void node_start(void) {
  const char *args[] = {"--min-free-mb", g_min_free, "--token-rate", g_token_rate, NULL};
  sj_test_node_start(&g_node, args);
}

static void setup(void) {
  ck_assert_int_eq(sj_crypto_init(), 0);
  sj_log_set_level(SJ_LOG_LEVEL_ERR); /* connection refused while the node starts is expected */
  sj_test_tmpdir(g_dir, sizeof g_dir, "node");
  sj_test_node_init(&g_node, g_dir, "310000", ORIGIN);
  sj_test_node_add_token(&g_node, "submit", SUBMIT_TOKEN, NULL, "test");
  sj_test_node_add_token(&g_node, "authority", AUTH_TOKEN, NULL, "test");
  node_start();
}

static void teardown(void) {
  sj_test_node_stop(&g_node, SIGTERM);
  sj_test_sh("umount '%s/data' 2>/dev/null", g_dir); /* not mounted: fine */
  g_min_free = "0";
  g_token_rate = "0";
  sj_test_rmtree(g_dir);
}

/* ---- helpers ------------------------------------------------------------------------------------ */

static json_t *parse(const sj_buf_t *b) {
  return sj_test_json(b->p, b->n);
}

static const char *credit(const char *uscc, const char *type, const char *name) {
  static _Thread_local char buf[512]; /* submitter threads call this concurrently */
  snprintf(buf, sizeof buf,
           "{\"kind\":\"credit\",\"type\":\"%s\",\"subject\":{\"type\":\"enterprise\",\"id\":\"%s\","
           "\"name\":\"%s\"},\"disclosure\":\"public\"}",
           type, uscc, name);
  return buf;
}

static uint64_t tree_size(void) {
  return sj_test_node_tree_size(&g_node);
}

/* Fetches and verifies the checkpoint; returns its size and root. */
static void verified_checkpoint(sj_checkpoint_t *cp) {
  sj_buf_t b = {0};
  ck_assert_int_eq(get("/v1/logs/310000/checkpoint", NULL, &b), 200);
  sj_test_checkpoint_verify(g_node.vkey, b.p, b.n, cp);
  ck_assert_str_eq(cp->origin, ORIGIN);
  sj_buf_deinit(&b);
}

static size_t b64_path(json_t *arr, uint8_t path[][SJ_HASH_LEN]) {
  size_t i, n = json_array_size(arr), len;
  for (i = 0; i < n; i++) {
    const char *s = json_string_value(json_array_get(arr, i));
    ck_assert_int_eq(sj_base64_decode(s, strlen(s), path[i], SJ_HASH_LEN, &len), 0);
    ck_assert_uint_eq(len, SJ_HASH_LEN);
  }
  return n;
}

/* ---- tests -------------------------------------------------------------------------------------- */

START_TEST(round_trip_keeps_the_exact_bytes) {
  sj_buf_t b = {0};
  const char *rec = credit(USCC1, "penalty", "round trip");
  ck_assert_int_eq(post(rec, NULL, NULL, &b), 201);
  json_t *j = parse(&b);
  json_t *a = json_array_get(json_object_get(j, "accepted"), 0);
  ck_assert_str_eq(json_string_value(json_object_get(a, "region")), "310000");
  ck_assert_int_eq(json_integer_value(json_object_get(a, "seq")), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "tree_size")), 1);
  char leaf_hash[64];
  snprintf(leaf_hash, sizeof leaf_hash, "%s", json_string_value(json_object_get(a, "leaf_hash")));
  json_decref(j);

  ck_assert_int_eq(get("/v1/records/310000/0", NULL, &b), 200);
  j = parse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(j, "leaf_hash")), leaf_hash);
  const char *body64 = json_string_value(json_object_get(j, "body"));
  const char *leaf64 = json_string_value(json_object_get(j, "leaf"));
  uint8_t body[512], leaf[4096], lh[32];
  size_t bn, ln;
  ck_assert_int_eq(sj_base64_decode(body64, strlen(body64), body, sizeof body, &bn), 0);
  ck_assert_uint_eq(bn, strlen(rec));
  ck_assert(memcmp(body, rec, bn) == 0);
  ck_assert_int_eq(sj_base64_decode(leaf64, strlen(leaf64), leaf, sizeof leaf, &ln), 0);
  sj_merkle_leaf_hash(leaf, ln, lh);
  char lh64[64];
  sj_base64_encode(lh, 32, lh64);
  ck_assert_str_eq(lh64, leaf_hash);
  ck_assert(json_is_object(json_object_get(j, "record")));
  json_decref(j);
  ck_assert_int_eq(get("/v1/records/310000/1", NULL, &b), 404);
  ck_assert_int_eq(get("/v1/records/31000x/0", NULL, &b), 400);
  sj_buf_deinit(&b);
}
END_TEST

/* Each bad record gets a 400 naming index, field and code, and nothing is written. */
START_TEST(invalid_records_are_refused_with_field_and_code) {
  static const struct {
    const char *rec, *code, *field;
  } cases[] = {
      {"{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\",\"id\":"
       "\"91310115MA1K00007R\",\"name\":\"x\"},\"disclosure\":\"public\"}",
       "USCC_CHECKSUM", "/subject/id"},
      {"{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\",\"id\":"
       "\"9131011MA1K00007Q\",\"name\":\"x\"},\"disclosure\":\"public\"}",
       "USCC_LENGTH", "/subject/id"},
      {"{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\",\"id\":"
       "\"110105194912310021\",\"name\":\"x\"},\"disclosure\":\"subject\"}",
       "ID_CHECKSUM", "/subject/id"},
      {"{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\",\"id\":"
       "\"110105194913310021\",\"name\":\"x\"},\"disclosure\":\"subject\"}",
       "ID_BIRTHDATE_INVALID", "/subject/id"},
  };
  sj_buf_t b = {0};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ck_assert_int_eq(post(cases[i].rec, NULL, NULL, &b), 400);
    json_t *j = parse(&b);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 400);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), cases[i].code);
    ck_assert_str_eq(json_string_value(json_object_get(e, "field")), cases[i].field);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "index")), 0);
    json_decref(j);
  }
  ck_assert_uint_eq(tree_size(), 0);
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(a_batch_is_all_or_nothing) {
  sj_buf_t b = {0}, body = {0};
  sj_buf_printf(&body, "[%s,", credit(USCC1, "penalty", "a"));
  sj_buf_printf(&body, "%s,", credit("91310115MA1K00007R", "penalty", "bad"));
  sj_buf_printf(&body, "%s]", credit(USCC2, "rating", "c"));
  ck_assert_int_eq(post((char *)body.p, NULL, NULL, &b), 400);
  json_t *j = parse(&b);
  json_t *e = json_array_get(json_object_get(j, "errors"), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(e, "index")), 1);
  json_decref(j);
  ck_assert_uint_eq(tree_size(), 0);
  /* The same three records, all valid, as NDJSON: three entries at once. */
  sj_buf_reset(&body);
  sj_buf_printf(&body, "%s\n", credit(USCC1, "penalty", "a"));
  sj_buf_printf(&body, "%s\n", credit(USCC2, "penalty", "b"));
  sj_buf_printf(&body, "%s\n", credit(USCC2, "rating", "c"));
  ck_assert_int_eq(post((char *)body.p, "application/x-ndjson", NULL, &b), 201);
  ck_assert_uint_eq(tree_size(), 3);
  sj_buf_deinit(&b);
  sj_buf_deinit(&body);
}
END_TEST

START_TEST(access_control_and_media_types) {
  sj_buf_t b = {0};
  const char *rec = credit(USCC1, "penalty", "x");
  ck_assert_int_eq(fetch("POST", "/v1/records", NULL, "application/json", rec, strlen(rec), NULL, &b),
                   401);
  ck_assert_int_eq(fetch("POST", "/v1/records", "wrong", "application/json", rec, strlen(rec), NULL,
                         &b), 401);
  ck_assert_int_eq(fetch("POST", "/v1/records", AUTH_TOKEN, "application/json", rec, strlen(rec),
                         NULL, &b), 403);
  ck_assert_int_eq(post(rec, "text/plain", NULL, &b), 415);
  ck_assert_int_eq(post("{\"kind\":\"credit\",\"kind\":\"trace\"}", NULL, NULL, &b), 400);
  ck_assert_int_eq(post("not json", NULL, NULL, &b), 400);
  ck_assert_uint_eq(tree_size(), 0);
  /* Over the 16 MiB default limit: 413, nothing written. */
  size_t big = (16u << 20) + 100;
  char *huge = malloc(big + 1);
  memset(huge, ' ', big);
  huge[big] = 0;
  ck_assert_int_eq(post(huge, NULL, NULL, &b), 413);
  free(huge);
  ck_assert_uint_eq(tree_size(), 0);
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(idempotent_retry_returns_the_first_answer) {
  sj_buf_t b1 = {0}, b2 = {0};
  char rec[512];
  snprintf(rec, sizeof rec, "%s", credit(USCC1, "penalty", "idem"));
  ck_assert_int_eq(post(rec, NULL, "key-1", &b1), 201);
  ck_assert_int_eq(post(rec, NULL, "key-1", &b2), 201);
  ck_assert_uint_eq(b1.n, b2.n);
  ck_assert(memcmp(b1.p, b2.p, b1.n) == 0);
  ck_assert_uint_eq(tree_size(), 1);
  ck_assert_int_eq(post(credit(USCC2, "penalty", "other"), NULL, "key-1", &b2), 422);
  /* The key survives a restart: it was committed with the record. */
  sj_test_node_stop(&g_node, SIGKILL);
  node_start();
  ck_assert_int_eq(post(rec, NULL, "key-1", &b2), 201);
  ck_assert(b1.n == b2.n && memcmp(b1.p, b2.p, b1.n) == 0);
  ck_assert_uint_eq(tree_size(), 1);
  sj_buf_deinit(&b1);
  sj_buf_deinit(&b2);
}
END_TEST

START_TEST(proofs_from_the_api_verify) {
  sj_buf_t b = {0}, body = {0};
  for (int i = 0; i < 13; i++) {
    sj_buf_reset(&body);
    for (int k = 0; k <= i % 3; k++)
      sj_buf_printf(&body, "%s\n", credit(i % 2 ? USCC1 : USCC2, "penalty", "proof"));
    ck_assert_int_eq(post((char *)body.p, "application/x-ndjson", NULL, &b), 201);
  }
  sj_checkpoint_t cp;
  verified_checkpoint(&cp);
  ck_assert_uint_eq(cp.size, tree_size());
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  char url[160];
  for (uint64_t i = 0; i < cp.size; i++) {
    snprintf(url, sizeof url, "/v1/records/310000/%llu", (unsigned long long)i);
    ck_assert_int_eq(get(url, NULL, &b), 200);
    json_t *r = parse(&b);
    uint8_t lh[32];
    size_t n;
    const char *s = json_string_value(json_object_get(r, "leaf_hash"));
    ck_assert_int_eq(sj_base64_decode(s, strlen(s), lh, 32, &n), 0);
    json_decref(r);
    snprintf(url, sizeof url, "/v1/logs/310000/proof/inclusion?index=%llu&size=%llu",
             (unsigned long long)i, (unsigned long long)cp.size);
    ck_assert_int_eq(get(url, NULL, &b), 200);
    json_t *p = parse(&b);
    size_t len = b64_path(json_object_get(p, "audit_path"), path);
    ck_assert_int_eq(sj_merkle_verify_inclusion(lh, i, cp.size, (const uint8_t(*)[32])path, len,
                                                cp.root), 0);
    lh[0] ^= 1;
    ck_assert_int_ne(sj_merkle_verify_inclusion(lh, i, cp.size, (const uint8_t(*)[32])path, len,
                                                cp.root), 0);
    json_decref(p);
  }
  /* Consistency from every earlier size to now. The old roots come from the store's proofs of
   * the older trees: verify with the root computed by a second inclusion proof at that size. */
  snprintf(url, sizeof url, "/v1/logs/310000/proof/consistency?first=1&second=%llu",
           (unsigned long long)cp.size);
  ck_assert_int_eq(get(url, NULL, &b), 200);
  json_t *p = parse(&b);
  ck_assert_int_eq(json_integer_value(json_object_get(p, "second")), (json_int_t)cp.size);
  size_t len = b64_path(json_object_get(p, "consistency"), path);
  json_decref(p);
  ck_assert_int_eq(get("/v1/records/310000/0", NULL, &b), 200);
  json_t *r = parse(&b);
  uint8_t lh0[32];
  size_t n;
  const char *s = json_string_value(json_object_get(r, "leaf_hash"));
  ck_assert_int_eq(sj_base64_decode(s, strlen(s), lh0, 32, &n), 0);
  json_decref(r);
  /* The tree of size 1 has the first leaf hash as root. */
  ck_assert_int_eq(sj_merkle_verify_consistency(1, cp.size, lh0, cp.root,
                                                (const uint8_t(*)[32])path, len), 0);
  ck_assert_int_eq(get("/v1/logs/310000/proof/inclusion?index=5&size=0", NULL, &b), 400);
  ck_assert_int_eq(get("/v1/logs/310000/proof/inclusion?index=x&size=3", NULL, &b), 400);
  ck_assert_int_eq(get("/v1/logs/320000/checkpoint", NULL, &b), 404);
  sj_buf_deinit(&b);
  sj_buf_deinit(&body);
}
END_TEST

START_TEST(restart_keeps_everything) {
  sj_buf_t b = {0}, before = {0};
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(post(credit(USCC1, "penalty", "restart"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/logs/310000/checkpoint", NULL, &before), 200);
  sj_test_node_stop(&g_node, SIGTERM);
  node_start();
  ck_assert_uint_eq(tree_size(), 5);
  ck_assert_int_eq(get("/v1/logs/310000/checkpoint", NULL, &b), 200);
  ck_assert(b.n == before.n && memcmp(b.p, before.p, b.n) == 0);
  /* Acknowledged means synced: a kill -9 right after the 201 loses nothing. */
  ck_assert_int_eq(post(credit(USCC1, "penalty", "kill"), NULL, NULL, &b), 201);
  sj_test_node_stop(&g_node, SIGKILL);
  node_start();
  ck_assert_uint_eq(tree_size(), 6);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "after"), NULL, NULL, &b), 201);
  sj_checkpoint_t cp;
  verified_checkpoint(&cp);
  ck_assert_uint_eq(cp.size, 7);
  sj_buf_deinit(&b);
  sj_buf_deinit(&before);
}
END_TEST

#define SUBMITTERS 8
#define PER_SUBMITTER 25

static void *submitter(void *arg) {
  uint64_t *seqs = arg;
  sj_buf_t b = {0};
  for (int i = 0; i < PER_SUBMITTER; i++) {
    int st = post(credit(USCC1, "penalty", "concurrent"), NULL, NULL, &b);
    if (st != 201) {
      fprintf(stderr, "concurrent submit: status %d: %.*s\n", st, (int)b.n, (char *)b.p);
      seqs[i] = UINT64_MAX;
      continue;
    }
    json_error_t e;
    json_t *j = json_loadb((char *)b.p, b.n, 0, &e);
    seqs[i] = (uint64_t)json_integer_value(
        json_object_get(json_array_get(json_object_get(j, "accepted"), 0), "seq"));
    json_decref(j);
  }
  sj_buf_deinit(&b);
  return NULL;
}

START_TEST(concurrent_submitters_get_distinct_seqs) {
  pthread_t t[SUBMITTERS];
  static uint64_t seqs[SUBMITTERS][PER_SUBMITTER];
  for (int i = 0; i < SUBMITTERS; i++)
    pthread_create(&t[i], NULL, submitter, seqs[i]);
  for (int i = 0; i < SUBMITTERS; i++)
    pthread_join(t[i], NULL);
  static uint8_t seen[SUBMITTERS * PER_SUBMITTER];
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < SUBMITTERS; i++)
    for (int k = 0; k < PER_SUBMITTER; k++) {
      ck_assert_uint_lt(seqs[i][k], SUBMITTERS * PER_SUBMITTER);
      ck_assert(!seen[seqs[i][k]]);
      seen[seqs[i][k]] = 1;
    }
  ck_assert_uint_eq(tree_size(), SUBMITTERS * PER_SUBMITTER);
  /* The raw entries chain: each header's prev is the previous leaf hash. */
  sj_buf_t b = {0};
  ck_assert_int_eq(get("/v1/logs/310000/entries?start=0&limit=10000", NULL, &b), 200);
  uint64_t count = 0;
  uint8_t prev[32] = {0};
  size_t bodies = sj_test_check_entries(&b, &count, prev, NULL, NULL);
  ck_assert_uint_eq(bodies, count); /* the origin serves every body */
  ck_assert_uint_eq(count, SUBMITTERS * PER_SUBMITTER);
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(subject_lookup_newest_first_with_cursor) {
  sj_buf_t b = {0};
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(post(credit(USCC1, i % 2 ? "rating" : "penalty", "subj"), NULL, NULL, &b), 201);
  ck_assert_int_eq(post(credit(USCC2, "penalty", "other"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "?limit=3", NULL, &b), 200);
  json_t *j = parse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(j, "subject")), USCC1);
  json_t *recs = json_object_get(j, "records");
  ck_assert_uint_eq(json_array_size(recs), 3);
  ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(recs, 0), "seq")), 4);
  ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(recs, 2), "seq")), 2);
  char path[200];
  snprintf(path, sizeof path, "/v1/subjects/" USCC1 "?limit=3&cursor=%s",
           json_string_value(json_object_get(j, "next_cursor")));
  json_decref(j);
  ck_assert_int_eq(get(path, NULL, &b), 200);
  j = parse(&b);
  recs = json_object_get(j, "records");
  ck_assert_uint_eq(json_array_size(recs), 2);
  ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(recs, 1), "seq")), 0);
  ck_assert(json_is_null(json_object_get(j, "next_cursor")));
  json_decref(j);
  ck_assert_int_eq(get("/v1/subjects/91310115MA1K00007R", NULL, &b), 400);
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(trace_codes_match_in_urn_and_digital_link_form) {
  sj_buf_t b = {0};
  const char *ev =
      "{\"kind\":\"trace\",\"event\":{\"type\":\"ObjectEvent\",\"eventTime\":"
      "\"2026-11-01T08:00:00+08:00\",\"eventTimeZoneOffset\":\"+08:00\",\"action\":\"OBSERVE\","
      "\"epcList\":[\"https://id.gs1.org/01/09506000134352/21/PIG001\"],"
      "\"bizStep\":\"commissioning\"}}";
  ck_assert_int_eq(post(ev, NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/trace/https:%2F%2Fid.gs1.org%2F01%2F09506000134352%2F21%2FPIG001", NULL,
                       &b), 200);
  json_t *j = parse(&b);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "records")), 1);
  char urn[160];
  snprintf(urn, sizeof urn, "/v1/trace/%s", json_string_value(json_object_get(j, "code")));
  json_decref(j);
  ck_assert_int_eq(get(urn, NULL, &b), 200);
  j = parse(&b);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "records")), 1);
  json_decref(j);
  ck_assert_int_eq(get("/v1/trace/urn:epc:id:sgtin:bogus", NULL, &b), 400);
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(cli_prove_verifies_end_to_end) {
  sj_buf_t b = {0};
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(post(credit(USCC1, "penalty", "cli"), NULL, NULL, &b), 201);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s/sanjiao prove 310000 1 --vkey '%s' --node %s >%s/prove.out 2>&1",
           getenv("SJ_BIN"), g_node.vkey, g_node.url, g_dir);
  ck_assert_int_eq(system(cmd), 0);
  /* A key for another origin must fail. */
  sj_signer_t *s;
  sj_buf_t vk = {0};
  sj_signer_generate(ORIGIN, &s);
  sj_signer_vkey(s, SJ_KEY_ED25519, &vk);
  snprintf(cmd, sizeof cmd, "%s/sanjiao prove 310000 1 --vkey '%s' --node %s >%s/prove2.out 2>&1",
           getenv("SJ_BIN"), (char *)vk.p, g_node.url, g_dir);
  ck_assert_int_ne(system(cmd), 0);
  sj_signer_free(s);
  sj_buf_deinit(&vk);
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(operational_endpoints) {
  sj_buf_t b = {0};
  ck_assert_int_eq(post(credit(USCC1, "penalty", "ops"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/keys", NULL, &b), 200);
  ck_assert_ptr_nonnull(strstr((char *)b.p, g_node.vkey));
  ck_assert_int_eq(get("/metrics", NULL, &b), 200);
  ck_assert_ptr_nonnull(strstr((char *)b.p, "sanjiao_appends_total 1"));
  ck_assert_ptr_nonnull(strstr((char *)b.p, "sanjiao_http_requests_total{route=\"POST /v1/records\",status=\"201\"} 1"));
  ck_assert_int_eq(get("/openapi.json", NULL, &b), 200);
  json_t *j = parse(&b);
  ck_assert(json_is_object(json_object_get(json_object_get(j, "paths"), "/v1/records")));
  json_decref(j);
  sj_buf_deinit(&b);
}
END_TEST

/* A public lookup answered from the cache never misses a record appended after it was cached. */
START_TEST(cached_lookups_see_new_records_at_once) {
  sj_buf_t b = {0}, m = {0};
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(post(credit(USCC1, "penalty", "cache"), NULL, NULL, &b), 201);
    for (int k = 0; k < 3; k++) { /* the second and third answers come from the cache */
      ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);
      json_t *j = parse(&b);
      ck_assert_uint_eq(json_array_size(json_object_get(j, "records")), (size_t)i + 1);
      json_decref(j);
    }
  }
  ck_assert_int_eq(get("/metrics", NULL, &m), 200);
  ck_assert_ptr_nonnull(strstr((char *)m.p, "sanjiao_cache_hits_total 10"));
  /* Another subject's appends do not invalidate this one. */
  ck_assert_int_eq(post(credit(USCC2, "penalty", "other"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);
  ck_assert_int_eq(get("/metrics", NULL, &m), 200);
  ck_assert_ptr_nonnull(strstr((char *)m.p, "sanjiao_cache_hits_total 11"));
  sj_buf_deinit(&b);
  sj_buf_deinit(&m);
}
END_TEST

/* The counter `name` in /metrics. */
static unsigned long long metric(const char *name) {
  return sj_test_node_metric(&g_node, name);
}

/* An answer is kept at most cache-ttl (here 1 s), and the cache's size shows in /metrics. (How
 * long each answer may be kept below that, by when what it shows can change with time, is tested
 * at the fold: test_credit, changes_ms; windows end at day boundaries, too far off for a test.) */
START_TEST(cached_lookups_expire_after_cache_ttl) {
  sj_buf_t b = {0};
  sj_test_node_stop(&g_node, SIGTERM);
  const char *args[] = {"--min-free-mb", "0", "--cache-ttl", "1", NULL};
  sj_test_node_start(&g_node, args);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "ttl"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);
  ck_assert_uint_eq(metric("sanjiao_cache_hits_total"), 1);
  ck_assert_uint_eq(metric("sanjiao_cache_misses_total"), 1);
  ck_assert_uint_eq(metric("sanjiao_cache_entries"), 1);
  ck_assert_uint_gt(metric("sanjiao_cache_bytes"), b.n);
  nanosleep(&(struct timespec){1, 200 * 1000 * 1000}, NULL);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200); /* expired: answered anew */
  ck_assert_uint_eq(metric("sanjiao_cache_misses_total"), 2);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200); /* and kept again */
  ck_assert_uint_eq(metric("sanjiao_cache_hits_total"), 2);
  json_t *j = parse(&b);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "records")), 1);
  ck_assert_ptr_nonnull(
      json_object_get(json_array_get(json_object_get(j, "records"), 0), "record"));
  json_decref(j);
  sj_buf_deinit(&b);
}
END_TEST

/* A public credit report is kept like a lookup: served again from the cache, replaced at once by
 * a new record about the subject (from any region: the subject's generation), kept when another
 * subject gets one; an authority's report is never served from, nor kept in, the cache. */
START_TEST(cached_reports_see_new_records_at_once) {
  sj_buf_t b = {0};
  for (int i = 1; i <= 3; i++) {
    ck_assert_int_eq(post(credit(USCC1, "penalty", "report"), NULL, NULL, &b), 201);
    unsigned long long hits = metric("sanjiao_cache_hits_total");
    for (int k = 0; k < 2; k++) { /* the second answer comes from the cache */
      ck_assert_int_eq(get("/v1/subjects/" USCC1 "/report", NULL, &b), 200);
      json_t *j = parse(&b);
      ck_assert_str_eq(json_string_value(json_object_get(j, "view")), "public");
      ck_assert_uint_eq(json_array_size(json_object_get(j, "penalties")), (size_t)i);
      json_decref(j);
    }
    ck_assert_uint_eq(metric("sanjiao_cache_hits_total"), hits + 1);
  }
  unsigned long long hits = metric("sanjiao_cache_hits_total");
  ck_assert_int_eq(post(credit(USCC2, "penalty", "other"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "/report", NULL, &b), 200);
  ck_assert_uint_eq(metric("sanjiao_cache_hits_total"), hits + 1);
  for (int k = 0; k < 2; k++) {
    ck_assert_int_eq(get("/v1/subjects/" USCC1 "/report", AUTH_TOKEN, &b), 200);
    json_t *j = parse(&b);
    ck_assert_str_eq(json_string_value(json_object_get(j, "view")), "authority");
    json_decref(j);
  }
  ck_assert_uint_eq(metric("sanjiao_cache_hits_total"), hits + 1);
  sj_buf_deinit(&b);
}
END_TEST

/* An online backup is a complete store: a node started on it has every record acknowledged
 * before the backup, verifies, and keeps appending. */
START_TEST(online_backup_restores) {
  sj_buf_t b = {0};
  for (int i = 0; i < 7; i++)
    ck_assert_int_eq(post(credit(USCC1, "penalty", "backup"), NULL, NULL, &b), 201);
  ck_assert_int_eq(fetch("POST", "/v1/admin/backup", NULL, NULL, NULL, 0, NULL, &b), 401);
  ck_assert_int_eq(fetch("POST", "/v1/admin/backup", SUBMIT_TOKEN, NULL, NULL, 0, NULL, &b), 403);
  ck_assert_int_eq(fetch("POST", "/v1/admin/backup", AUTH_TOKEN, NULL, NULL, 0, NULL, &b), 201);
  json_t *j = parse(&b);
  char backup[600];
  snprintf(backup, sizeof backup, "%s", json_string_value(json_object_get(j, "backup")));
  ck_assert_int_eq(json_integer_value(json_object_get(j, "tree_size_at_start")), 7);
  json_decref(j);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "after backup"), NULL, NULL, &b), 201);
  sj_test_node_stop(&g_node, SIGTERM);
  /* Restore: the backup becomes the data directory. */
  char cmd[2200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s/data' && mv '%s' '%s/data'", g_dir, backup, g_dir);
  ck_assert_int_eq(system(cmd), 0);
  node_start();
  ck_assert_uint_eq(tree_size(), 7);
  sj_checkpoint_t cp;
  verified_checkpoint(&cp);
  ck_assert_uint_eq(cp.size, 7);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "restored"), NULL, NULL, &b), 201);
  ck_assert_uint_eq(tree_size(), 8);
  sj_buf_deinit(&b);
}
END_TEST

/* Compacting the index (after a bulk load) needs an authority token, runs in the background
 * (202, then GET tells how it went), leaves no table file above the last level, and lookups
 * answer as before; appends go on. */
START_TEST(compact_index_answers_alike) {
  sj_buf_t b = {0}, before = {0};
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(post(credit(USCC1, "penalty", "compact"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "?limit=3", NULL, &before), 200);
  ck_assert_int_eq(fetch("POST", "/v1/admin/compact", NULL, NULL, NULL, 0, NULL, &b), 401);
  ck_assert_int_eq(fetch("POST", "/v1/admin/compact", SUBMIT_TOKEN, NULL, NULL, 0, NULL, &b), 403);
  ck_assert_int_eq(fetch("GET", "/v1/admin/compact", SUBMIT_TOKEN, NULL, NULL, 0, NULL, &b), 403);
  ck_assert_int_eq(fetch("GET", "/v1/admin/compact", AUTH_TOKEN, NULL, NULL, 0, NULL, &b), 200);
  json_t *j = parse(&b);
  ck_assert(json_is_false(json_object_get(j, "running")));
  ck_assert_int_eq(json_integer_value(json_object_get(j, "runs")), 0);
  ck_assert_ptr_null(json_object_get(j, "last"));
  json_decref(j);
  ck_assert_int_eq(fetch("POST", "/v1/admin/compact", AUTH_TOKEN, NULL, NULL, 0, NULL, &b), 202);
  j = parse(&b);
  ck_assert_str_eq(json_string_value(json_object_get(j, "region")), "310000");
  ck_assert_uint_eq(json_array_size(json_object_get(j, "families")), 2);
  json_decref(j);
  json_t *last = NULL;
  for (int i = 0; i < 300 && !last; i++) { /* at most 30 s */
    ck_assert_int_eq(fetch("GET", "/v1/admin/compact", AUTH_TOKEN, NULL, NULL, 0, NULL, &b), 200);
    j = parse(&b);
    if (json_is_false(json_object_get(j, "running")) &&
        json_integer_value(json_object_get(j, "runs")) == 1)
      last = json_incref(json_object_get(j, "last"));
    json_decref(j);
    if (!last)
      sj_test_sleep_ms(100);
  }
  ck_assert_ptr_nonnull(last);
  ck_assert(json_is_true(json_object_get(last, "ok")));
  ck_assert(json_is_integer(json_object_get(last, "upper_files_before")));
  ck_assert_int_eq(json_integer_value(json_object_get(last, "upper_files_after")), 0);
  ck_assert(json_is_integer(json_object_get(last, "ms")));
  json_decref(last);
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "?limit=3", NULL, &b), 200);
  ck_assert_uint_eq(b.n, before.n);
  ck_assert_mem_eq(b.p, before.p, b.n);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "after compaction"), NULL, NULL, &b), 201);
  ck_assert_uint_eq(tree_size(), 6);
  sj_buf_deinit(&b);
  sj_buf_deinit(&before);
}
END_TEST

/* A stop while a compaction may still run (or was just started) waits for it: the node exits 0
 * (under the sanitizers a store freed under the compaction would abort it) and restarts with
 * every record. Compactions refused after the stop began are not an error. */
START_TEST(stop_during_compaction_is_clean) {
  sj_buf_t b = {0};
  for (int i = 0; i < 40; i++)
    ck_assert_int_eq(post(credit(i % 2 ? USCC1 : USCC2, "penalty", "stop"), NULL, NULL, &b), 201);
  ck_assert_int_eq(fetch("POST", "/v1/admin/compact", AUTH_TOKEN, NULL, NULL, 0, NULL, &b), 202);
  int status = -1;
  kill(g_node.pid, SIGTERM);
  ck_assert_int_eq(waitpid(g_node.pid, &status, 0), g_node.pid);
  g_node.pid = 0;
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  node_start();
  ck_assert_uint_eq(tree_size(), 40);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);
  sj_buf_deinit(&b);
}
END_TEST

/* A full disk: appends fail with 507 and write nothing; when space returns, appends work again. */
START_TEST(a_full_disk_answers_507_and_recovers) {
  sj_buf_t b = {0};
  char cmd[2200];
  sj_test_node_stop(&g_node, SIGTERM);
  snprintf(cmd, sizeof cmd, "rm -rf '%s/data' && mkdir '%s/data' && mount -t tmpfs -o size=48m tmpfs '%s/data'",
           g_dir, g_dir, g_dir);
  if (system(cmd) != 0) {
    ck_assert_msg(geteuid() != 0, "root could not mount a tmpfs for the full-disk test");
    fprintf(stderr, "full-disk test not run: mounting a tmpfs needs root\n");
    return;
  }
  g_min_free = "16";
  node_start();
  ck_assert_int_eq(post(credit(USCC1, "penalty", "room"), NULL, NULL, &b), 201);
  /* Leave about 10 MB: under the node's 16 MB reserve. */
  snprintf(cmd, sizeof cmd,
           "avail=$(df --output=avail -k '%s/data' | tail -1); "
           "fallocate -l $(( (avail - 10240) * 1024 )) '%s/data/filler'", g_dir, g_dir);
  ck_assert_int_eq(system(cmd), 0);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "no room"), NULL, NULL, &b), 507);
  json_t *j = parse(&b);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 507);
  json_decref(j);
  ck_assert_uint_eq(tree_size(), 1);
  snprintf(cmd, sizeof cmd, "rm -f '%s/data/filler'", g_dir);
  ck_assert_int_eq(system(cmd), 0);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "room again"), NULL, NULL, &b), 201);
  ck_assert_uint_eq(tree_size(), 2);
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(sighup_reloads_tokens) {
  sj_buf_t b = {0};
  const char *rec = "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
                    "\"id\":\"91310115MA1K00007Q\",\"name\":\"hup\"},\"disclosure\":\"public\"}";
  ck_assert_int_eq(fetch("POST", "/v1/records", "sjt_new_token", "application/json", rec,
                         strlen(rec), NULL, &b), 401);
  sj_test_node_add_token(&g_node, "submit", "sjt_new_token", NULL, "test");
  kill(g_node.pid, SIGHUP);
  int st = 0;
  for (int i = 0; i < 100 && st != 201; i++) {
    sj_test_sleep_ms(20);
    st = fetch("POST", "/v1/records", "sjt_new_token", "application/json", rec, strlen(rec), NULL,
               &b);
  }
  ck_assert_int_eq(st, 201);
  /* A malformed file keeps the old tokens. */
  char path[600];
  snprintf(path, sizeof path, "%s/tokens", g_dir);
  FILE *f = fopen(path, "a");
  fputs("nonsense line\n", f);
  fclose(f);
  kill(g_node.pid, SIGHUP);
  sj_test_sleep_ms(200);
  ck_assert_int_eq(fetch("POST", "/v1/records", "sjt_new_token", "application/json", rec,
                         strlen(rec), NULL, &b), 201);
  sj_buf_deinit(&b);
}
END_TEST

/* A token over its rate gets 429 with Retry-After; others are not affected. */
START_TEST(tokens_are_rate_limited) {
  sj_buf_t b = {0};
  sj_test_node_stop(&g_node, SIGTERM);
  g_token_rate = "5"; /* bursts of 10 */
  node_start();
  int limited = 0, ok = 0;
  for (int i = 0; i < 30; i++) {
    int st = get("/v1/subjects/" USCC1, AUTH_TOKEN, &b);
    limited += st == 429;
    ok += st == 200;
  }
  ck_assert_int_ge(ok, 10);
  ck_assert_int_gt(limited, 0);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, SUBMIT_TOKEN, &b), 200); /* its own bucket */
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);         /* the public is not a token */
  sj_test_sleep_ms(1000);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, AUTH_TOKEN, &b), 200);   /* refilled */
  sj_buf_deinit(&b);
}
END_TEST

/* The public (no token, or a token the node does not know) is rate-limited per source address
 * (--public-rate): over it, 429 with Retry-After and a problem+json body; a token caller and
 * another address are not affected; the bucket refills. */
START_TEST(the_public_is_rate_limited_per_address) {
  sj_buf_t b = {0}, ctype = {0};
  sj_test_node_stop(&g_node, SIGTERM);
  const char *args[] = {"--min-free-mb", "0", "--public-rate", "5", NULL}; /* bursts of 10 */
  sj_test_node_start(&g_node, args);
  char url[128];
  snprintf(url, sizeof url, "%s/v1/subjects/" USCC1, g_node.url);
  int limited = 0, ok = 0, problem = 0;
  for (int i = 0; i < 30; i++) {
    int st = 0;
    ck_assert_int_eq(sj_http_fetch(url, "GET", NULL, 0, NULL, 0, 10000, &st, &b, &ctype), 0);
    limited += st == 429;
    ok += st == 200;
    problem += st == 429 && ctype.n == 24 && !memcmp(ctype.p, "application/problem+json", 24);
  }
  ck_assert_int_ge(ok, 5);
  ck_assert_int_gt(limited, 0);
  ck_assert_int_eq(problem, limited);
  json_t *j = parse(&b);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 429);
  json_decref(j);
  /* A token the node does not know is the public too; a known token has its own bucket. */
  ck_assert_int_eq(get("/v1/subjects/" USCC1, "sjt_not_a_token", &b), 429);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, AUTH_TOKEN, &b), 200);
  /* Retry-After, seen by curl (20 requests from the limited address), and another source
   * address, which has its own bucket. */
  int st = 0;
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do curl -s -i "
           "--http2-prior-knowledge --max-time 10 '%s' || exit 1; echo; done 2>&1",
           url);
  char *out = sj_test_popen(cmd, &st);
  ck_assert_msg(st == 0 && strstr(out, "HTTP/2 429") && strstr(out, "retry-after: "),
                "curl: %s", out);
  free(out);
  snprintf(cmd, sizeof cmd,
           "curl -s -o /dev/null -w '%%{http_code}' --http2-prior-knowledge --max-time 10 "
           "--interface 127.0.0.2 '%s' 2>&1",
           url);
  out = sj_test_popen(cmd, &st);
  ck_assert_msg(st == 0 && !strcmp(out, "200"), "from 127.0.0.2: %s", out);
  free(out);
  sj_test_sleep_ms(1200); /* 6 requests' worth refilled */
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);
  char log[600];
  snprintf(log, sizeof log, "%s/node.log", g_dir);
  ck_assert_int_eq(sj_test_sh("grep -q 'over the public rate limit' '%s'", log), 0);
  sj_buf_deinit(&ctype);
  sj_buf_deinit(&b);
}
END_TEST

/* Runs sanjiao-node with the fixture's files plus extra flags, its stderr to DIR/start.log; the
 * node must refuse to start (exit 1, within 20 s) and say why (needle in its log). */
/* Runs the node with extra flags; it must exit with status want (1: refused at start, 2: a bad
 * flag) having written needle (a grep pattern) to stderr. */
static void node_exits(int want, const char *extra, const char *needle) {
  char log[600];
  snprintf(log, sizeof log, "%s/start.log", g_dir);
  int st = sj_test_sh("timeout 20 '%s/sanjiao-node' --region 310000 --listen 127.0.0.1:%u "
                      "--data-dir '%s/data' --key '%s/key' --hmac-key '%s/hmac' --tokens "
                      "'%s/tokens' %s 2>'%s'",
                      getenv("SJ_BIN"), g_node.port, g_dir, g_dir, g_dir, g_dir, extra, log);
  if (st != want) { /* show why (the directory goes with the fixture) */
    char text[4096] = "";
    FILE *f = fopen(log, "r");
    if (f) {
      text[fread(text, 1, sizeof text - 1, f)] = 0;
      fclose(f);
    }
    ck_abort_msg("the node's exit status was %d, not %d; its stderr:\n%s", st, want, text);
  }
  ck_assert_msg(sj_test_sh("grep -q '%s' '%s'", needle, log) == 0,
                "the node did not say '%s' (see %s)", needle, log);
}

static void node_refuses_to_start(const char *extra, const char *needle) {
  node_exits(1, extra, needle);
}

/* Secrets readable by group or others stop the node at start-up with a clear error: the region
 * key, and a peer token file (what this node presents to a peer region). With mode 0600 both
 * are taken. */
START_TEST(world_readable_secrets_are_refused_at_start) {
  sj_test_node_stop(&g_node, SIGTERM);
  char key[600], tok[600], cfg[600], text[2048];
  snprintf(key, sizeof key, "%s/key", g_dir);
  ck_assert_int_eq(chmod(key, 0644), 0);
  node_refuses_to_start("", "readable by group or others: chmod 600 it");
  ck_assert_int_eq(chmod(key, 0640), 0);
  node_refuses_to_start("", "readable by group or others: chmod 600 it");
  ck_assert_int_eq(chmod(key, 0600), 0);
  /* A peer region (a key of its own) whose token file is 0644. */
  sj_signer_t *peer = NULL;
  sj_buf_t vk = {0};
  ck_assert_int_eq(sj_signer_generate("test.sanjiao/320000", &peer), 0);
  ck_assert_int_eq(sj_signer_vkey(peer, SJ_KEY_ED25519, &vk), 0);
  snprintf(tok, sizeof tok, "%s/peer.token", g_dir);
  snprintf(cfg, sizeof cfg, "%s/node.conf", g_dir);
  sj_test_write_file(tok, "sjt_peer_token_for_320000\n", 0644);
  ck_assert_int_eq(chmod(tok, 0644), 0);
  snprintf(text, sizeof text,
           "[peer 320000]\norigin = test.sanjiao/320000\nvkey = %s\nurl = http://127.0.0.1:1\n"
           "token-file = %s\n",
           (const char *)vk.p, tok);
  sj_test_write_file(cfg, text, 0600);
  char extra[700];
  snprintf(extra, sizeof extra, "--config '%s'", cfg);
  node_refuses_to_start(extra, "token file .*readable by group or others");
  ck_assert_int_eq(chmod(tok, 0600), 0);
  const char *args[] = {"--config", cfg, NULL};
  sj_test_node_start(&g_node, args); /* now it starts */
  sj_signer_free(peer);
  sj_buf_deinit(&vk);
}
END_TEST

/* A node started with --block-cache-warm reads those families through its block cache at start
 * (the /metrics gauge sanjiao_block_cache_warming says when it is done), answers as before,
 * also with table files read through memory maps (--mmap-reads 1), and refuses a family it does
 * not know. */
START_TEST(block_cache_warm_at_start_answers_alike) {
  sj_buf_t b = {0}, before = {0}, proof = {0};
  for (int i = 0; i < 30; i++)
    ck_assert_int_eq(post(credit(i % 3 ? USCC1 : USCC2, "penalty", "warm"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "?limit=5", NULL, &before), 200);
  ck_assert_int_eq(get("/v1/logs/310000/proof/inclusion?index=7&size=30", NULL, &proof), 200);
  sj_test_node_stop(&g_node, SIGTERM);
  node_exits(2, "--block-cache-warm subjects,bogus", "invalid value for --block-cache-warm");
  node_exits(2, "--mmap-reads 2", "invalid value for --mmap-reads");
  const char *args[] = {"--min-free-mb",
                        "0",
                        "--block-cache-warm",
                        "subjects,trace,tree",
                        "--block-cache-mb",
                        "64",
                        "--mmap-reads",
                        "1",
                        NULL};
  sj_test_node_start(&g_node, args);
  int warming = 1;
  for (int i = 0; i < 300 && warming; i++) { /* at most 30 s */
    warming = (int)sj_test_node_metric(&g_node, "sanjiao_block_cache_warming");
    if (warming)
      sj_test_sleep_ms(100);
  }
  ck_assert_int_eq(warming, 0);
  ck_assert_uint_eq(sj_test_node_metric(&g_node, "sanjiao_block_cache_capacity_bytes"), 64u << 20);
  ck_assert_uint_gt(sj_test_node_metric(&g_node, "sanjiao_block_cache_bytes"), 0);
  ck_assert_int_eq(get("/v1/subjects/" USCC1 "?limit=5", NULL, &b), 200);
  ck_assert_uint_eq(b.n, before.n);
  ck_assert_mem_eq(b.p, before.p, b.n);
  ck_assert_int_eq(get("/v1/logs/310000/proof/inclusion?index=7&size=30", NULL, &b), 200);
  ck_assert_uint_eq(b.n, proof.n);
  ck_assert_mem_eq(b.p, proof.p, b.n);
  ck_assert_int_eq(post(credit(USCC1, "penalty", "after warm-up"), NULL, NULL, &b), 201);
  ck_assert_uint_eq(tree_size(), 31);
  sj_buf_deinit(&b);
  sj_buf_deinit(&before);
  sj_buf_deinit(&proof);
}
END_TEST

/* The public-window fold cache (--fold-cache-entries): off, every lookup folds its subject again
 * (sanjiao_folds_total counts them) and never reports a hit; on, a subject's fold is kept until an
 * entry about it is committed. The answers are the same bytes either way (a credit record is shown
 * only inside the window its fold gives it). Response cache off throughout, so that every lookup
 * reaches the fold. */
static void fold_lookups(sj_buf_t out[3]) {
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &out[0]), 200);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &out[1]), 200);
  ck_assert_int_eq(get("/v1/subjects/" USCC2, NULL, &out[2]), 200);
}

START_TEST(fold_cache_off_folds_every_lookup_and_on_keeps_folds) {
  sj_buf_t b = {0}, off[3] = {{0}}, on[3] = {{0}};
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(post(credit(i % 2 ? USCC2 : USCC1, "penalty", "fold"), NULL, NULL, &b), 201);
  sj_test_node_stop(&g_node, SIGTERM);
  node_exits(2, "--fold-cache-entries lots", "invalid value for --fold-cache-entries");
  const char *args_off[] = {
      "--min-free-mb", "0", "--cache-entries", "0", "--fold-cache-entries", "0", NULL};
  sj_test_node_start(&g_node, args_off);
  fold_lookups(off);
  ck_assert_uint_eq(metric("sanjiao_folds_total"), 3);
  ck_assert_uint_eq(metric("sanjiao_fold_cache_hits_total"), 0);
  ck_assert_uint_eq(metric("sanjiao_fold_cache_entries"), 1);
  sj_test_node_stop(&g_node, SIGTERM);
  const char *args_on[] = {"--min-free-mb", "0", "--cache-entries", "0", "--fold-cache-entries",
                           "1024",          NULL};
  sj_test_node_start(&g_node, args_on);
  fold_lookups(on);
  ck_assert_uint_eq(metric("sanjiao_folds_total"), 2);
  ck_assert_uint_gt(metric("sanjiao_fold_cache_hits_total"), 0);
  ck_assert_uint_eq(metric("sanjiao_fold_cache_entries"), 2);
  for (int i = 0; i < 3; i++) {
    json_t *j = parse(&on[i]);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "records")), i < 2 ? 3 : 2);
    json_decref(j);
    ck_assert_uint_eq(off[i].n, on[i].n);
    ck_assert_mem_eq(off[i].p, on[i].p, on[i].n);
  }
  /* A new entry about the subject: its kept fold no longer holds. */
  ck_assert_int_eq(post(credit(USCC1, "penalty", "fold again"), NULL, NULL, &b), 201);
  ck_assert_int_eq(get("/v1/subjects/" USCC1, NULL, &b), 200);
  ck_assert_uint_eq(metric("sanjiao_folds_total"), 3);
  json_t *j = parse(&b);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "records")), 4);
  json_decref(j);
  sj_buf_deinit(&b);
  for (int i = 0; i < 3; i++) {
    sj_buf_deinit(&off[i]);
    sj_buf_deinit(&on[i]);
  }
}
END_TEST

/* ---- big submissions: parsed off the loop, committed in arrival order ------------------------- */

#define BIG_RECORDS 50000 /* ~11 MB of NDJSON: under the 16 MiB body limit, seconds to parse */

/* BIG_RECORDS credit records as NDJSON, each with its own name; records bad1 and bad2 (if not
 * SIZE_MAX) get a USCC whose check character is wrong. The caller frees. */
static char *big_ndjson(size_t bad1, size_t bad2) {
  sj_buf_t b = {0};
  for (size_t i = 0; i < BIG_RECORDS; i++) {
    char name[32];
    snprintf(name, sizeof name, "big %zu", i);
    const char *id = i == bad1 || i == bad2 ? "91310115MA1K00007R" : i % 2 ? USCC1 : USCC2;
    sj_buf_printf(&b, "%s\n", credit(id, "penalty", name));
  }
  sj_buf_append_u8(&b, 0);
  return (char *)b.p;
}

/* The node's sanjiao_posts_inflight gauge: submissions handed to the writer (parsing or waiting
 * for their commit), not yet answered. */
static long posts_inflight(void) {
  sj_buf_t b = {0};
  ck_assert_int_eq(get("/metrics", NULL, &b), 200);
  sj_buf_append_u8(&b, 0);
  const char *m = strstr((char *)b.p, "\nsanjiao_posts_inflight ");
  ck_assert_ptr_nonnull(m);
  long v = strtol(m + strlen("\nsanjiao_posts_inflight "), NULL, 10);
  sj_buf_deinit(&b);
  return v;
}

typedef struct {
  const char *body;
  int status;
  sj_buf_t out;
  volatile int done;
} big_post_t;

static void *big_poster(void *arg) {
  big_post_t *bp = arg;
  sj_test_req_t r = {"POST", "/v1/records", SUBMIT_TOKEN, "application/x-ndjson", NULL, NULL,
                     bp->body, 0, 120000};
  bp->status = sj_test_fetch(g_node.url, &r, &bp->out);
  __atomic_store_n(&bp->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

/* Polls the gauge until the big submission is in the writer's hands (then the loop has answered
 * this request while it is being parsed) or the POST is answered. Returns whether it was seen. */
static int wait_inflight(big_post_t *bp) {
  for (int i = 0; i < 20000 && !__atomic_load_n(&bp->done, __ATOMIC_SEQ_CST); i++) {
    if (posts_inflight() > 0)
      return 1;
    sj_test_sleep_ms(1);
  }
  return 0;
}

/* A 50,000-record NDJSON body is parsed on a prepare thread: the errors still name the exact
 * records (index, field, code), in order, and nothing is written. */
START_TEST(a_big_submission_reports_the_bad_indexes) {
  char *body = big_ndjson(123, 41234);
  sj_buf_t b = {0};
  ck_assert_int_eq(post(body, "application/x-ndjson", NULL, &b), 400);
  json_t *j = parse(&b);
  json_t *errs = json_object_get(j, "errors");
  ck_assert_uint_eq(json_array_size(errs), 2);
  size_t want[2] = {123, 41234};
  for (size_t i = 0; i < 2; i++) {
    json_t *e = json_array_get(errs, i);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "index")), (json_int_t)want[i]);
    ck_assert_str_eq(json_string_value(json_object_get(e, "field")), "/subject/id");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "USCC_CHECKSUM");
  }
  ck_assert_str_eq(json_string_value(json_object_get(j, "title")), "Invalid records");
  json_decref(j);
  ck_assert_uint_eq(tree_size(), 0);
  free(body);
  sj_buf_deinit(&b);
}
END_TEST

/* While a big submission is being parsed, the node answers other requests: the metrics show it
 * handed to the writer before its 400, and a lookup is answered meanwhile. */
START_TEST(lookups_are_answered_while_a_big_submission_is_parsed) {
  sj_buf_t b = {0};
  ck_assert_int_eq(post(credit(USCC1, "penalty", "before"), NULL, NULL, &b), 201);
  big_post_t bp = {.body = big_ndjson(BIG_RECORDS - 1, SIZE_MAX)};
  pthread_t t;
  pthread_create(&t, NULL, big_poster, &bp);
  int seen = wait_inflight(&bp);
  int lookup = get("/v1/subjects/" USCC1, NULL, &b);
  pthread_join(t, NULL);
  ck_assert_msg(seen, "the submission was never seen in the writer's hands before its answer");
  ck_assert_int_eq(lookup, 200);
  ck_assert_int_eq(bp.status, 400);
  json_t *j = parse(&bp.out);
  json_t *e = json_array_get(json_object_get(j, "errors"), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(e, "index")), BIG_RECORDS - 1);
  json_decref(j);
  ck_assert_int_eq(posts_inflight(), 0);
  ck_assert_uint_eq(tree_size(), 1);
  free((char *)bp.body);
  sj_buf_deinit(&bp.out);
  sj_buf_deinit(&b);
}
END_TEST

/* A small submission that arrives while a big one is still being parsed is committed after it:
 * the writer keeps arrival order whatever each parse costs. */
START_TEST(submissions_are_committed_in_arrival_order) {
  sj_buf_t b = {0};
  big_post_t bp = {.body = big_ndjson(SIZE_MAX, SIZE_MAX)};
  pthread_t t;
  pthread_create(&t, NULL, big_poster, &bp);
  int seen = wait_inflight(&bp);
  ck_assert_int_eq(post(credit(USCC2, "rating", "after"), NULL, NULL, &b), 201);
  pthread_join(t, NULL);
  ck_assert_msg(seen, "the submission was never seen in the writer's hands before its answer");
  ck_assert_int_eq(bp.status, 201);
  json_t *j = parse(&b);
  json_t *a = json_array_get(json_object_get(j, "accepted"), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(a, "seq")), BIG_RECORDS);
  json_decref(j);
  j = parse(&bp.out);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "accepted")), BIG_RECORDS);
  a = json_array_get(json_object_get(j, "accepted"), 0);
  ck_assert_int_eq(json_integer_value(json_object_get(a, "seq")), 0);
  json_decref(j);
  ck_assert_uint_eq(tree_size(), BIG_RECORDS + 1);
  free((char *)bp.body);
  sj_buf_deinit(&bp.out);
  sj_buf_deinit(&b);
}
END_TEST

/* ---- the facts row of the node's own entries --------------------------------------------------- */

typedef struct {
  size_t checked, with_facts;
} facts_check_t;

static int check_facts(void *ctx, size_t i, const sj_store_entry_t *e) {
  facts_check_t *fc = ctx;
  sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_entry_header_t h;
  uint8_t want[SJ_STORE_FACTS_MAX];
  ck_assert_msg(e->found && e->leaf, "entry %zu: no facts row", i);
  ck_assert_int_eq(sj_entry_decode(e->header, e->hn, &h, keys, SJ_ENTRY_MAX_KEYS), 0);
  size_t n = sj_credit_annotate(NULL, &h, e->has_body ? e->body : NULL, e->bn, want, sizeof want);
  ck_assert_msg(n == e->facts_n && memcmp(want, e->facts, n) == 0,
                "entry %zu: the stored facts (%zu B) are not what the store's hook makes (%zu B)", i,
                e->facts_n, n);
  fc->checked++;
  fc->with_facts += n > 0;
  return 0;
}

/* The writer's entries carry the facts their prepare step made off the writer thread; they must be
 * exactly what the store's own hook (sj_credit_annotate) makes of the stored header and body. */
START_TEST(own_entries_keep_the_facts_the_store_hook_makes) {
  sj_buf_t b = {0}, body = {0};
  const char *person = "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\","
                       "\"id\":\"11010519491231002X\",\"name\":\"x\"},\"disclosure\":\"subject\"}";
  sj_buf_printf(&body, "%s\n%s\n%s\n", credit(USCC1, "penalty", "a"), person,
                credit(USCC2, "commendation", "b"));
  ck_assert_int_eq(post((char *)body.p, "application/x-ndjson", NULL, &b), 201);
  ck_assert_int_eq(post(credit(USCC1, "rating", "c"), NULL, "facts-key", &b), 201);
  sj_test_node_stop(&g_node, SIGTERM);
  char dir[600];
  snprintf(dir, sizeof dir, "%s/data", g_dir);
  sj_store_opts_t o;
  sj_store_opts_default(&o);
  o.create_if_missing = 0;
  sj_store_t *st = NULL;
  ck_assert_int_eq(sj_store_open(dir, &o, &st), 0);
  sj_entry_ref_t refs[4];
  for (size_t i = 0; i < 4; i++)
    refs[i] = (sj_entry_ref_t){310000, i};
  facts_check_t fc = {0};
  ck_assert_int_eq(sj_store_get_entries(st, refs, 4, SJ_GET_ENTRY | SJ_GET_FACTS, check_facts, &fc),
                   0);
  ck_assert_uint_eq(fc.checked, 4);
  ck_assert_uint_gt(fc.with_facts, 0);
  sj_store_close(st);
  node_start(); /* for the teardown */
  sj_buf_deinit(&b);
  sj_buf_deinit(&body);
}
END_TEST

/* ---- lookups from the index rows' copies, from table files, and from rows without copies ------
 */

#define ALIKE_PATHS 9

/* The answers of a fixed set of lookups (public, paged with a cursor, authority, a person, a
 * trace code) and credit reports (public, authority), each as its exact bytes — a report's
 * "as_of" (the second it was folded) taken out. */
static void alike_answers(char *cursor_path, sj_buf_t out[ALIKE_PATHS]) {
  static const struct {
    const char *path, *token;
  } q[] = {{"/v1/subjects/" USCC1, NULL},
           {"/v1/subjects/" USCC1 "?limit=3", NULL},
           {NULL, NULL}, /* the next page of the one above, by its cursor */
           {"/v1/subjects/" USCC1, AUTH_TOKEN},
           {"/v1/subjects/" USCC1 "?limit=2", AUTH_TOKEN},
           {"/v1/subjects/11010519491231002X", AUTH_TOKEN},
           {"/v1/trace/urn:epc:id:sgtin:9506000.013435.PIG001", NULL},
           {"/v1/subjects/" USCC1 "/report", NULL},
           {"/v1/subjects/" USCC1 "/report", AUTH_TOKEN}};
  for (size_t i = 0; i < ALIKE_PATHS; i++) {
    sj_buf_reset(&out[i]);
    const char *path = q[i].path ? q[i].path : cursor_path;
    ck_assert_msg(get(path, q[i].token, &out[i]) == 200, "GET %s", path);
    sj_buf_append_u8(&out[i], 0);
    char *a = strstr((char *)out[i].p, "\"as_of\":\""), *e = a ? strchr(a + 9, '"') : NULL;
    if (strstr(path, "/report")) {
      ck_assert_msg(a && e, "no as_of in %s", (char *)out[i].p);
      memmove(a, e + 1, strlen(e + 1) + 1);
    }
    out[i].n = strlen((char *)out[i].p);
    if (i == 1) {
      json_t *j = parse(&out[i]);
      const char *cur = json_string_value(json_object_get(j, "next_cursor"));
      ck_assert_ptr_nonnull(cur);
      snprintf(cursor_path, 300, "/v1/subjects/" USCC1 "?limit=3&cursor=%s", cur);
      json_decref(j);
    }
  }
}

/* Rewrites every index row of the node's store as a binary without copies wrote it: its value
 * cut to the entry's time (8 bytes). The node is stopped. */
static size_t strip_index_copies(const char *dir) {
  rawdb_t r;
  rawdb_open(&r, dir);
  char *err = NULL;
  size_t stripped = 0;
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  static const char *const index_families[] = {"subjects", "trace"};
  for (int f = 0; f < 2; f++) {
    rocksdb_column_family_handle_t *cf = rawdb_cf(&r, index_families[f]);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r.db, ro, cf);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
      size_t kn, vn;
      const char *k = rocksdb_iter_key(it, &kn), *v = rocksdb_iter_value(it, &vn);
      ck_assert_uint_gt(vn, 8); /* written with a copy */
      rocksdb_writebatch_put_cf(wb, cf, k, kn, v, 8);
      stripped++;
    }
    rocksdb_iter_destroy(it);
  }
  rocksdb_write(r.db, wo, wb, &err);
  ck_assert_msg(err == NULL, "raw write: %s", err);
  rocksdb_writebatch_destroy(wb);
  rocksdb_writeoptions_destroy(wo);
  rocksdb_readoptions_destroy(ro);
  rawdb_close(&r);
  return stripped;
}

/* A lookup answers byte for byte alike whether its index rows are held in memory (with their
 * entries' copies), in table files (flushed), or carry no copies (as an older binary wrote them:
 * the entries are then read with MultiGet). */
START_TEST(lookups_answer_alike_from_memory_table_files_and_rows_without_copies) {
  sj_buf_t b = {0}, body = {0}, first[ALIKE_PATHS] = {{0}}, again[ALIKE_PATHS] = {{0}};
  char cursor_path[300], dir[600];
  const char *person = "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"person\","
                       "\"id\":\"11010519491231002X\",\"name\":\"x\"},\"disclosure\":\"subject\"}";
  const char *ev =
      "{\"kind\":\"trace\",\"event\":{\"type\":\"ObjectEvent\",\"eventTime\":"
      "\"2026-11-01T08:00:00+08:00\",\"eventTimeZoneOffset\":\"+08:00\",\"action\":\"OBSERVE\","
      "\"epcList\":[\"urn:epc:id:sgtin:9506000.013435.PIG001\"],\"bizStep\":\"commissioning\"}}";
  for (int i = 0; i < 7; i++) {
    const char *types[] = {"penalty", "rating", "commendation"};
    sj_buf_printf(&body, "%s\n", credit(USCC1, types[i % 3], i % 2 ? "odd" : "even"));
  }
  sj_buf_printf(&body, "%s\n%s\n%s\n", person, credit(USCC2, "penalty", "other"), ev);
  ck_assert_int_eq(post((char *)body.p, "application/x-ndjson", NULL, &b), 201);
  /* an authorities-only record about the subject: withheld from the public */
  sj_buf_reset(&body);
  sj_buf_append_str(&body, credit(USCC1, "penalty", "closed"));
  char *d = strstr((char *)body.p, "\"public\"");
  ck_assert_ptr_nonnull(d);
  sj_buf_t closed = {0};
  sj_buf_printf(&closed, "%.*s\"authorities\"}", (int)(d - (char *)body.p), (char *)body.p);
  ck_assert_int_eq(post((char *)closed.p, NULL, NULL, &b), 201);
  alike_answers(cursor_path, first); /* rows in memory */
  json_t *j = parse(&first[3]);
  ck_assert_uint_eq(json_array_size(json_object_get(j, "records")), 8);
  json_decref(j);
  snprintf(dir, sizeof dir, "%s/data", g_dir);
  sj_test_node_stop(&g_node, SIGTERM);
  sj_store_opts_t o;
  sj_store_opts_default(&o);
  o.create_if_missing = 0;
  sj_store_t *st = NULL;
  ck_assert_int_eq(sj_store_open(dir, &o, &st), 0);
  ck_assert_int_eq(sj_store_flush(st, 1), 0);
  sj_store_close(st);
  node_start();
  alike_answers(cursor_path, again); /* rows in table files */
  for (size_t i = 0; i < ALIKE_PATHS; i++) {
    ck_assert_msg(again[i].n == first[i].n && memcmp(again[i].p, first[i].p, first[i].n) == 0,
                  "answer %zu after the flush:\n%.400s\nbefore:\n%.400s", i, again[i].p,
                  first[i].p);
  }
  sj_test_node_stop(&g_node, SIGTERM);
  ck_assert_uint_ge(strip_index_copies(dir), 10);
  node_start();
  alike_answers(cursor_path, again); /* rows without copies: read with MultiGet */
  for (size_t i = 0; i < ALIKE_PATHS; i++) {
    ck_assert_msg(again[i].n == first[i].n && memcmp(again[i].p, first[i].p, first[i].n) == 0,
                  "answer %zu without copies:\n%.400s\nbefore:\n%.400s", i, again[i].p, first[i].p);
    sj_buf_deinit(&first[i]);
    sj_buf_deinit(&again[i]);
  }
  sj_buf_deinit(&b);
  sj_buf_deinit(&body);
  sj_buf_deinit(&closed);
}
END_TEST

/* ---- the follow stream: checkpoints interleaved with the entries ----------------------------- */

#define FOLLOW_POSTS 6     /* group commits before the stream opens, and as many while it runs */
#define FOLLOW_RECORDS 200 /* records per commit */

/* A reader of GET /v1/logs/310000/entries?start=0&follow=1 on the test's loop. */
typedef struct {
  sj_buf_t rx;                /* bytes received, not parsed yet */
  size_t off;                 /* parsed bytes at the start of rx */
  uint64_t next;              /* entries received and verified so far */
  uint8_t prev[SJ_HASH_LEN];  /* leaf hash of the last entry received */
  sj_merkle_frontier_t tree;  /* the tree of the entries received */
  uint64_t backlog;           /* tree size before the stream was opened */
  uint64_t want;              /* the tree size after every post: stop at its checkpoint */
  size_t cps, cps_in_backlog; /* checkpoints, and those of sizes inside the backlog */
  int stop;                   /* 1 once the checkpoint of want arrived, or the call ended */
  sj_call_t *call;            /* the stream, until on_done */
} follow_reader_t;

static void follow_leaf(void *arg, uint64_t seq, const uint8_t leaf[SJ_HASH_LEN]) {
  follow_reader_t *r = arg;
  (void)seq;
  ck_assert_int_eq(sj_merkle_frontier_append(&r->tree, leaf, NULL, NULL), 0);
}

/* Parses the whole records in rx: each entry is verified (sequence, chain link, body hash) and
 * added to the reader's tree; each checkpoint must verify, cover exactly the entries received
 * before it and give their root. */
static void follow_records(follow_reader_t *r) {
  while (r->rx.n > r->off && !r->stop) {
    const uint8_t *p = r->rx.p + r->off;
    size_t n = r->rx.n - r->off, used;
    if (p[0] == 'E') {
      sj_bytes_t hdr, body;
      int has_body;
      long k = sj_frame_next(p + 1, n - 1, 1u << 20, &hdr, &body, &has_body);
      ck_assert_int_ge(k, 0);
      if (k == 0)
        return;
      sj_buf_t frame = {0};
      sj_buf_append(&frame, p + 1, (size_t)k);
      sj_test_check_entries(&frame, &r->next, r->prev, follow_leaf, r);
      sj_buf_deinit(&frame);
      used = (size_t)k;
    } else {
      ck_assert_int_eq(p[0], 'C');
      if (n < 5 || n - 5 < sj_get_be32(p + 1))
        return;
      used = 4 + sj_get_be32(p + 1);
      sj_checkpoint_t cp;
      uint8_t root[SJ_HASH_LEN];
      sj_test_checkpoint_verify(g_node.vkey, p + 5, used - 4, &cp);
      ck_assert_uint_eq(cp.size, r->next);
      sj_merkle_frontier_root(&r->tree, root);
      ck_assert_mem_eq(cp.root, root, SJ_HASH_LEN);
      r->cps++;
      r->cps_in_backlog += cp.size <= r->backlog;
      r->stop = r->want && cp.size == r->want;
    }
    r->off += used + 1;
  }
}

static int follow_data(const uint8_t *p, size_t n, void *arg) {
  follow_reader_t *r = arg;
  sj_buf_append(&r->rx, p, n);
  follow_records(r);
  return r->stop; /* nonzero cancels the stream */
}

static void follow_done(int err, const sj_resp_t *resp, void *arg) {
  follow_reader_t *r = arg;
  (void)err, (void)resp;
  r->call = NULL;
  r->stop = 1;
}

static void client_closed(void *arg) {
  ++*(int *)arg;
}

/* What post_commits posts and how many of its posts were not answered 201. */
typedef struct {
  const char *tag;
  int failed;
} commits_t;

/* Posts FOLLOW_POSTS submissions of FOLLOW_RECORDS records, one after the other (each its own
 * group commit: the next is sent once the previous one was answered). Any thread; no assertion. */
static void post_commits(void *arg) {
  commits_t *pc = arg;
  for (int i = 0; i < FOLLOW_POSTS; i++) {
    sj_buf_t b = {0};
    for (int k = 0; k < FOLLOW_RECORDS; k++) {
      char name[48];
      snprintf(name, sizeof name, "%s %d.%d", pc->tag, i, k);
      sj_buf_printf(&b, "%s\n", credit(k % 2 ? USCC1 : USCC2, "penalty", name));
    }
    sj_buf_t out = {0};
    sj_test_req_t r = {"POST", "/v1/records", SUBMIT_TOKEN, "application/x-ndjson", NULL, NULL,
                       (const char *)b.p, b.n, 60000};
    pc->failed += sj_test_fetch(g_node.url, &r, &out) != 201;
    sj_buf_deinit(&out);
    sj_buf_deinit(&b);
  }
}

/* A follower that starts behind several group commits, while more are being made, gets the
 * checkpoints of group commits as the stream passes them (one at least every 256 entries) —
 * several before it has caught up, not only once it has; each checkpoint verifies and covers
 * exactly the entries sent before it. */
START_TEST(the_follow_stream_interleaves_checkpoints) {
  commits_t backlog = {"backlog", 0}, live = {"live", 0};
  post_commits(&backlog);
  ck_assert_int_eq(backlog.failed, 0);
  follow_reader_t r = {.backlog = tree_size()};
  ck_assert_uint_eq(r.backlog, FOLLOW_POSTS * FOLLOW_RECORDS);
  r.want = 2 * r.backlog;
  sj_merkle_frontier_init(&r.tree);

  sj_test_loop_t l;
  sj_test_loop_init(&l);
  sj_client_t *c = NULL;
  ck_assert_int_eq(sj_client_new(&l.loop, g_node.url, NULL, &c), 0);
  sj_header_t auth[1] = {{"authorization", "Bearer " AUTH_TOKEN}};
  sj_call_req_t req = {"GET", "/v1/logs/310000/entries?start=0&follow=1", auth, 1, NULL, 0, 0};
  sj_call_cbs_t cbs = {NULL, follow_data, follow_done, &r};
  sj_test_job_t *job = sj_test_job_start(&l, post_commits, &live);
  ck_assert_int_eq(sj_client_request(c, &req, &cbs, &r.call), 0);
  ck_assert(sj_test_job_finish(&l, job, 60000));
  ck_assert_int_eq(live.failed, 0);
  ck_assert(sj_test_loop_run_until(&l, &r.stop, 1, 30000));
  ck_assert_uint_eq(r.next, r.want);
  ck_assert_msg(r.cps_in_backlog > 1,
                "%zu checkpoint(s) before the stream caught up with the %llu entries it started "
                "behind",
                r.cps_in_backlog, (unsigned long long)r.backlog);
  ck_assert_uint_ge(r.cps, r.cps_in_backlog + 1);
  if (r.call)
    sj_call_cancel(r.call);
  int closed = 0;
  sj_client_close(c, client_closed, &closed);
  sj_test_loop_finish(&l, &closed, 1);
  sj_buf_deinit(&r.rx);
}
END_TEST

static Suite *node_suite(void) {
  Suite *s = suite_create("node");
  const sj_test_case_t cases[] = {
      {"round_trip", round_trip_keeps_the_exact_bytes},
      {"validation", invalid_records_are_refused_with_field_and_code},
      {"all_or_nothing", a_batch_is_all_or_nothing},
      {"access", access_control_and_media_types},
      {"idempotency", idempotent_retry_returns_the_first_answer},
      {"proofs", proofs_from_the_api_verify},
      {"restart", restart_keeps_everything},
      {"concurrency", concurrent_submitters_get_distinct_seqs},
      {"subjects", subject_lookup_newest_first_with_cursor},
      {"trace", trace_codes_match_in_urn_and_digital_link_form},
      {"cli_prove", cli_prove_verifies_end_to_end},
      {"operational", operational_endpoints},
      {"cache", cached_lookups_see_new_records_at_once},
      {"cache_ttl", cached_lookups_expire_after_cache_ttl},
      {"cache_report", cached_reports_see_new_records_at_once},
      {"backup", online_backup_restores},
      {"compact", compact_index_answers_alike},
      {"compact_stop", stop_during_compaction_is_clean},
      {"full_disk", a_full_disk_answers_507_and_recovers},
      {"sighup", sighup_reloads_tokens},
      {"rate_limit", tokens_are_rate_limited},
      {"public_rate_limit", the_public_is_rate_limited_per_address},
      {"secret_modes", world_readable_secrets_are_refused_at_start},
      {"block_cache_warm", block_cache_warm_at_start_answers_alike},
      {"fold_cache", fold_cache_off_folds_every_lookup_and_on_keeps_folds},
      {"big_bad_indexes", a_big_submission_reports_the_bad_indexes},
      {"parse_off_loop", lookups_are_answered_while_a_big_submission_is_parsed},
      {"arrival_order", submissions_are_committed_in_arrival_order},
      {"own_facts", own_entries_keep_the_facts_the_store_hook_makes},
      {"follow_checkpoints", the_follow_stream_interleaves_checkpoints},
      {"lookups_alike", lookups_answer_alike_from_memory_table_files_and_rows_without_copies},
  };
  sj_test_add_cases(s, cases, sizeof cases / sizeof *cases, setup, teardown, 120);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  return sj_test_run_suite(node_suite());
}
