/* tests/test_crash.c — crash consistency: during concurrent ingest a node is killed with SIGKILL at
 * random moments and restarted; after each restart every record whose 201 reached a client is
 * present with the same sequence number and leaf hash, the chain and the tree verify from entry 0,
 * and every checkpoint ever served is consistent with the current one.
 * SJ_CRASH_ROUNDS sets the number of kills (default 5 here; the full run uses 50, see
 * docs/RELIABILITY.md). */
#include "tests/support.h"

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUBMIT_TOKEN "sjt_crash_submit"
/* Reads are an authority's: the public view withholds every body of a subject with more entries
 * than node/disclosure.c folds for its publication window (PC_SUBJECT_CAP, 20,000), and all of this
 * test's records are about one enterprise. */
#define AUTH_TOKEN "sjt_crash_authority"
#define ORIGIN "crash.sanjiao/310000"
#define THREADS 6
#define MAX_ACKED 200000
#define MAX_CPS 4096

static char g_dir[512];
static sj_test_node_t g_node;

typedef struct {
  uint64_t seq;
  uint8_t leaf[32];
} acked_t;

static acked_t g_acked[MAX_ACKED];
static atomic_size_t g_nacked;
static struct {
  uint64_t size;
  uint8_t root[32];
} g_cps[MAX_CPS];
static size_t g_ncps;
static atomic_int g_stop;

/* A submitter's request (with a body) or an authority's read (without); 5 s at most, the node may
 * be down. */
static int fetch(const char *method, const char *path, const char *body, sj_buf_t *out) {
  sj_test_req_t r = {.method = method,
                     .path = path,
                     .token = body ? SUBMIT_TOKEN : AUTH_TOKEN,
                     .ctype = body ? "application/x-ndjson" : NULL,
                     .body = body,
                     .timeout_ms = 5000};
  return sj_test_fetch(g_node.url, &r, out);
}

static void setup(void) {
  ck_assert_int_eq(sj_crypto_init(), 0);
  sj_log_set_level(SJ_LOG_LEVEL_ERR);
  sj_test_tmpdir(g_dir, sizeof g_dir, "crash");
  sj_test_node_init(&g_node, g_dir, "310000", ORIGIN);
  sj_test_node_add_token(&g_node, "submit", SUBMIT_TOKEN, NULL, "crash");
  sj_test_node_add_token(&g_node, "authority", AUTH_TOKEN, NULL, "crash");
  atomic_store(&g_nacked, 0);
  g_ncps = 0;
  sj_test_node_start(&g_node, NULL);
}

static void teardown(void) {
  sj_test_node_stop(&g_node, SIGKILL);
  sj_test_rmtree(g_dir);
}

/* ---- load --------------------------------------------------------------------------------------- */

static void record_acks(const sj_buf_t *b) {
  json_error_t e;
  json_t *j = json_loadb((char *)b->p, b->n, 0, &e), *a;
  size_t i;
  json_array_foreach(json_object_get(j, "accepted"), i, a) {
    size_t k = atomic_fetch_add(&g_nacked, 1), n;
    if (k >= MAX_ACKED)
      break;
    const char *lh = json_string_value(json_object_get(a, "leaf_hash"));
    g_acked[k].seq = (uint64_t)json_integer_value(json_object_get(a, "seq"));
    sj_base64_decode(lh, strlen(lh), g_acked[k].leaf, 32, &n);
  }
  json_decref(j);
}

static void *submitter(void *arg) {
  long id = (long)arg;
  sj_buf_t b = {0}, body = {0};
  for (uint64_t k = 0; !atomic_load(&g_stop); k++) {
    sj_buf_reset(&body);
    for (int r = 0; r < 10; r++)
      sj_buf_printf(&body,
                    "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\","
                    "\"id\":\"91310115MA1K00007Q\",\"name\":\"crash %ld-%llu-%d\"},"
                    "\"disclosure\":\"public\"}\n",
                    id, (unsigned long long)k, r);
    if (fetch("POST", "/v1/records", (char *)body.p, &b) == 201)
      record_acks(&b);
    else
      sj_test_sleep_ms(5); /* the node is down: retry soon */
  }
  sj_buf_deinit(&b);
  sj_buf_deinit(&body);
  return NULL;
}

/* Remembers a served checkpoint (verified) so it can be checked against later ones. */
static void sample_checkpoint(void) {
  sj_buf_t b = {0};
  sj_checkpoint_t cp;
  if (fetch("GET", "/v1/logs/310000/checkpoint", NULL, &b) == 200 && g_ncps < MAX_CPS) {
    sj_test_checkpoint_verify(g_node.vkey, b.p, b.n, &cp);
    g_cps[g_ncps].size = cp.size;
    memcpy(g_cps[g_ncps].root, cp.root, 32);
    g_ncps++;
  }
  sj_buf_deinit(&b);
}

/* ---- checks ------------------------------------------------------------------------------------- */

/* The leaves check_log read, and the tree they make. */
typedef struct {
  uint8_t (*leaves)[32]; /* by sequence number, up to size */
  uint64_t size;
  sj_merkle_frontier_t fr;
} tree_t;

static void keep_leaf(void *arg, uint64_t seq, const uint8_t leaf[32]) {
  tree_t *t = arg;
  if (seq < t->size)
    memcpy(t->leaves[seq], leaf, 32);
  sj_merkle_frontier_append(&t->fr, leaf, NULL, NULL);
}

/* Walks every entry: chain links, leaf hashes, and every acknowledged record in place. */
static void check_log(uint64_t *size_out, uint8_t root_out[32]) {
  sj_buf_t b = {0};
  sj_checkpoint_t cp;
  ck_assert_int_eq(fetch("GET", "/v1/logs/310000/checkpoint", NULL, &b), 200);
  sj_test_checkpoint_verify(g_node.vkey, b.p, b.n, &cp);
  tree_t t = {calloc(cp.size ? cp.size : 1, 32), cp.size, {0}};
  sj_merkle_frontier_init(&t.fr);
  uint8_t prev[32] = {0};
  for (uint64_t next = 0; next < cp.size;) {
    char path[128];
    uint64_t start = next;
    snprintf(path, sizeof path, "/v1/logs/310000/entries?start=%llu&limit=10000",
             (unsigned long long)start);
    ck_assert_int_eq(fetch("GET", path, NULL, &b), 200);
    size_t bodies = sj_test_check_entries(&b, &next, prev, keep_leaf, &t);
    ck_assert_uint_gt(next, start);
    ck_assert_uint_eq(bodies, next - start); /* the origin serves every body */
  }
  ck_assert_uint_eq(t.fr.size, cp.size);
  uint8_t root[32];
  sj_merkle_frontier_root(&t.fr, root);
  ck_assert(memcmp(root, cp.root, 32) == 0);
  size_t n = atomic_load(&g_nacked);
  for (size_t i = 0; i < n && i < MAX_ACKED; i++) {
    ck_assert_uint_lt(g_acked[i].seq, cp.size);
    ck_assert_msg(memcmp(t.leaves[g_acked[i].seq], g_acked[i].leaf, 32) == 0,
                  "acknowledged record %llu changed", (unsigned long long)g_acked[i].seq);
  }
  free(t.leaves);
  sj_buf_deinit(&b);
  *size_out = cp.size;
  memcpy(root_out, cp.root, 32);
}

/* Every checkpoint served before is a prefix of the current tree. */
static void check_old_checkpoints(uint64_t size, const uint8_t root[32]) {
  sj_buf_t b = {0};
  for (size_t i = 0; i < g_ncps; i++) {
    if (g_cps[i].size == 0)
      continue;
    if (g_cps[i].size == size) {
      ck_assert(memcmp(g_cps[i].root, root, 32) == 0);
      continue;
    }
    char path[160];
    snprintf(path, sizeof path, "/v1/logs/310000/proof/consistency?first=%llu&second=%llu",
             (unsigned long long)g_cps[i].size, (unsigned long long)size);
    ck_assert_int_eq(fetch("GET", path, NULL, &b), 200);
    json_error_t e;
    json_t *j = json_loadb((char *)b.p, b.n, 0, &e), *it;
    uint8_t proof[SJ_MERKLE_MAX_PATH][32];
    size_t k, len = 0, got;
    json_array_foreach(json_object_get(j, "consistency"), k, it) {
      const char *s = json_string_value(it);
      sj_base64_decode(s, strlen(s), proof[len++], 32, &got);
    }
    json_decref(j);
    ck_assert_int_eq(sj_merkle_verify_consistency(g_cps[i].size, size, g_cps[i].root, root,
                                                  (const uint8_t(*)[32])proof, len), 0);
  }
  sj_buf_deinit(&b);
}

START_TEST(acknowledged_records_survive_sigkill_during_ingest) {
  const char *env = getenv("SJ_CRASH_ROUNDS");
  int rounds = env ? atoi(env) : 5;
  unsigned seed = (unsigned)time(NULL);
  pthread_t t[THREADS];
  atomic_store(&g_stop, 0);
  for (long i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, submitter, (void *)i);
  for (int r = 0; r < rounds; r++) {
    long ms = 150 + rand_r(&seed) % 600;
    for (long w = 0; w < ms; w += 50) {
      sj_test_sleep_ms(50);
      sample_checkpoint();
    }
    sj_test_node_stop(&g_node, SIGKILL);
    sj_test_node_start(&g_node, NULL);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  uint64_t size;
  uint8_t root[32];
  check_log(&size, root);
  check_old_checkpoints(size, root);
  ck_assert_uint_gt(atomic_load(&g_nacked), 0);
  fprintf(stderr, "crash: %d kills, %zu acknowledged records, log size %llu, %zu checkpoints\n",
          rounds, atomic_load(&g_nacked), (unsigned long long)size, g_ncps);
}
END_TEST

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("crash");
  const sj_test_case_t cases[] = {{"sigkill", acknowledged_records_survive_sigkill_during_ingest}};
  sj_test_add_cases(s, cases, 1, setup, teardown, 900);
  return sj_test_run_suite(s);
}
