/* tests/test_crash.c — crash consistency: during concurrent ingest a node is killed with SIGKILL at
 * random moments and restarted; after each restart every record whose 201 reached a client is
 * present with the same sequence number and leaf hash, the chain and the tree verify from entry 0,
 * and every checkpoint ever served is consistent with the current one.
 * The same for a follower: killed again and again while it catches up on tens of thousands of
 * entries (its origin still ingesting), it converges, its copy verifies from entry 0, and every
 * checkpoint it served is consistent with the final one.
 * SJ_CRASH_ROUNDS sets the number of kills of each test (default 5 here; the full run uses 50, see
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
#include <sys/stat.h>
#include <time.h>

#define SUBMIT_TOKEN "sjt_crash_submit"
/* Reads are an authority's: the public view withholds every body of a subject with more entries
 * than node/disclosure.c folds for its publication window (PC_SUBJECT_CAP, 20,000), and all of this
 * test's records are about one enterprise. */
#define AUTH_TOKEN "sjt_crash_authority"
#define ORIGIN "crash.sanjiao/310000"
/* The follower's peer token: a peer gets every public body without the public view's folding. */
#define PEER_TOKEN "sjt_crash_peer_320000"
#define THREADS 6
#define MAX_ACKED 2000000 /* 80 MB, touched as used: the full follower run acknowledges ~600,000 */
#define MAX_CPS 4096

static char g_dir[512];
static sj_test_node_t g_node;     /* the origin: region 310000 */
static sj_test_node_t g_follower; /* region 320000, following 310000 (follower test only) */

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

/* A submitter's request (with a body) or an authority's read (without) to the node at base;
 * timeout_ms at most (the node may be down). */
static int fetch_at(const char *base, const char *method, const char *path, const char *body,
                    sj_buf_t *out, uint64_t timeout_ms) {
  sj_test_req_t r = {.method = method,
                     .path = path,
                     .token = body ? SUBMIT_TOKEN : AUTH_TOKEN,
                     .ctype = body ? "application/x-ndjson" : NULL,
                     .body = body,
                     .timeout_ms = timeout_ms};
  return sj_test_fetch(base, &r, out);
}

/* The same to the origin, 5 s at most: submissions and samples while it may be down. */
static int fetch(const char *method, const char *path, const char *body, sj_buf_t *out) {
  return fetch_at(g_node.url, method, path, body, out, 5000);
}

/* Reads for the final checks, to the node at base: generous (10,000 entries from a loaded ASan
 * node). */
static int read_at(const char *base, const char *path, sj_buf_t *out) {
  return fetch_at(base, "GET", path, NULL, out, 120000);
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
  memset(&g_follower, 0, sizeof g_follower);
  sj_test_node_start(&g_node, NULL);
}

static void teardown(void) {
  sj_test_node_stop(&g_follower, SIGKILL);
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

/* Remembers a checkpoint of 310000 the node at base served (verified with the origin's key) so it
 * can be checked against later ones; returns its size (0 when none was served). */
static uint64_t sample_checkpoint_at(const char *base) {
  sj_buf_t b = {0};
  sj_checkpoint_t cp = {0};
  if (fetch_at(base, "GET", "/v1/logs/310000/checkpoint", NULL, &b, 5000) == 200 &&
      g_ncps < MAX_CPS) {
    sj_test_checkpoint_verify(g_node.vkey, b.p, b.n, &cp);
    g_cps[g_ncps].size = cp.size;
    memcpy(g_cps[g_ncps].root, cp.root, 32);
    g_ncps++;
  }
  sj_buf_deinit(&b);
  return cp.size;
}

static void sample_checkpoint(void) {
  sample_checkpoint_at(g_node.url);
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

/* Walks every entry of 310000 as the node at base holds it: chain links, leaf hashes, bodies, the
 * root of its checkpoint, and every acknowledged record in place. */
static void check_log(const char *base, uint64_t *size_out, uint8_t root_out[32]) {
  sj_buf_t b = {0};
  sj_checkpoint_t cp;
  ck_assert_int_eq(read_at(base, "/v1/logs/310000/checkpoint", &b), 200);
  sj_test_checkpoint_verify(g_node.vkey, b.p, b.n, &cp);
  tree_t t = {calloc(cp.size ? cp.size : 1, 32), cp.size, {0}};
  sj_merkle_frontier_init(&t.fr);
  uint8_t prev[32] = {0};
  for (uint64_t next = 0; next < cp.size;) {
    char path[128];
    uint64_t start = next;
    snprintf(path, sizeof path, "/v1/logs/310000/entries?start=%llu&limit=10000",
             (unsigned long long)start);
    ck_assert_int_eq(read_at(base, path, &b), 200);
    size_t bodies = sj_test_check_entries(&b, &next, prev, keep_leaf, &t);
    ck_assert_uint_gt(next, start);
    ck_assert_uint_eq(bodies, next - start); /* every body is public: served by any node */
  }
  ck_assert_uint_eq(t.fr.size, cp.size);
  uint8_t root[32];
  sj_merkle_frontier_root(&t.fr, root);
  ck_assert(memcmp(root, cp.root, 32) == 0);
  size_t n = atomic_load(&g_nacked);
  ck_assert_uint_le(n, MAX_ACKED); /* every acknowledged record is checked */
  for (size_t i = 0; i < n; i++) {
    ck_assert_uint_lt(g_acked[i].seq, cp.size);
    ck_assert_msg(memcmp(t.leaves[g_acked[i].seq], g_acked[i].leaf, 32) == 0,
                  "acknowledged record %llu changed", (unsigned long long)g_acked[i].seq);
  }
  free(t.leaves);
  sj_buf_deinit(&b);
  *size_out = cp.size;
  memcpy(root_out, cp.root, 32);
}

/* Every checkpoint served before is a prefix of the current tree (proofs from the node at base). */
static void check_old_checkpoints(const char *base, uint64_t size, const uint8_t root[32]) {
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
    ck_assert_int_eq(read_at(base, path, &b), 200);
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
  check_log(g_node.url, &size, root);
  check_old_checkpoints(g_node.url, size, root);
  ck_assert_uint_gt(atomic_load(&g_nacked), 0);
  fprintf(stderr, "crash: %d kills, %zu acknowledged records, log size %llu, %zu checkpoints\n",
          rounds, atomic_load(&g_nacked), (unsigned long long)size, g_ncps);
}
END_TEST

/* ---- a follower killed mid-catch-up -------------------------------------------------------------- */

#define GAP 20000 /* entries the follower is behind when it starts, at least */

/* Appends n records to the origin in requests of 1000, remembering what was acknowledged. */
static void submit_bulk(int n) {
  sj_buf_t b = {0}, body = {0};
  static unsigned long long batch;
  for (int k = 0; k < n; k += 1000) {
    sj_buf_reset(&body);
    batch++;
    for (int r = k; r < n && r < k + 1000; r++)
      sj_buf_printf(&body,
                    "{\"kind\":\"credit\",\"type\":\"rating\",\"subject\":{\"type\":\"enterprise\","
                    "\"id\":\"91320500MA1X00009R\",\"name\":\"bulk %llu-%d\"},"
                    "\"disclosure\":\"public\"}\n",
                    batch, r);
    ck_assert_int_eq(fetch_at(g_node.url, "POST", "/v1/records", (char *)body.p, &b, 60000), 201);
    record_acks(&b);
  }
  sj_buf_deinit(&b);
  sj_buf_deinit(&body);
}

/* The follower: region 320000 with [peer 310000] pointing at the origin, which knows its token. */
static void follower_init(void) {
  char dir[600], conf[700], tok[700], text[2048];
  snprintf(dir, sizeof dir, "%s/follower", g_dir);
  ck_assert_int_eq(mkdir(dir, 0700), 0);
  sj_test_node_init(&g_follower, dir, "320000", "crash.sanjiao/320000");
  sj_test_node_add_token(&g_node, "peer", PEER_TOKEN, "320000", "follower");
  sj_test_node_add_token(&g_follower, "authority", AUTH_TOKEN, NULL, "crash");
  kill(g_node.pid, SIGHUP); /* the origin rereads its tokens */
  snprintf(tok, sizeof tok, "%s/peer.token", dir);
  sj_test_write_file(tok, PEER_TOKEN "\n", 0600);
  snprintf(conf, sizeof conf, "%s/follower.conf", dir);
  snprintf(text, sizeof text,
           "poll-ms = 1000\n[peer 310000]\norigin = %s\nvkey = %s\nurl = %s\ntoken-file = %s\n",
           ORIGIN, g_node.vkey, g_node.url, tok);
  sj_test_write_file(conf, text, 0600);
}

/* How many entries of 310000 the follower holds (its store, ahead of its newest checkpoint while
 * it catches up chunk by chunk); 0 when it does not answer. */
static uint64_t follower_held(void) {
  sj_buf_t b = {0};
  uint64_t size = 0;
  if (fetch_at(g_follower.url, "GET", "/v1/status", NULL, &b, 5000) == 200) {
    json_t *j = sj_test_json(b.p, b.n), *it;
    size_t k;
    json_array_foreach(json_object_get(j, "regions"), k, it) {
      if (!strcmp(json_string_value(json_object_get(it, "region")), "310000"))
        size = (uint64_t)json_integer_value(json_object_get(it, "local_size"));
    }
    json_decref(j);
  }
  sj_buf_deinit(&b);
  return size;
}

static void follower_start(void) {
  char conf[700];
  snprintf(conf, sizeof conf, "%s/follower.conf", g_follower.dir);
  const char *args[] = {"--config", conf, NULL};
  sj_test_node_start(&g_follower, args);
}

START_TEST(a_follower_killed_mid_catch_up_converges) {
  const char *env = getenv("SJ_CRASH_ROUNDS");
  int rounds = env ? atoi(env) : 5, mid = 0;
  unsigned seed = (unsigned)time(NULL);
  uint64_t held = 0, behind_max = 0;
  long span = 400; /* even rounds kill within it: shorter after a kill that came too late */
  pthread_t t[2];
  follower_init();
  atomic_store(&g_stop, 0);
  for (long i = 0; i < 2; i++) /* the origin keeps ingesting while the follower catches up */
    pthread_create(&t[i], NULL, submitter, (void *)i);
  for (int r = 0; r < rounds; r++) {
    uint64_t origin = sj_test_node_tree_size(&g_node);
    if (origin < held + GAP) {
      submit_bulk((int)(held + GAP - origin));
      origin = sj_test_node_tree_size(&g_node);
    }
    follower_start();
    if (r % 2 == 0) { /* at a random moment within span: starting, fetching, verifying or
                       * committing */
      long ms = rand_r(&seed) % span;
      for (long w = 0; w <= ms; w += 20) {
        sj_test_sleep_ms(20);
        sample_checkpoint_at(g_follower.url);
      }
    } else { /* once it is past a random point of the catch-up before its last chunk (chunks
              * commit 10,000 at a time), a little later */
      uint64_t target = held + 1 + rand_r(&seed) % (origin - held - 10000), now = 0;
      for (int w = 0; w < 6000 && (now = follower_held()) < target; w++) {
        sj_test_sleep_ms(5);
        if (w % 4 == 0)
          sample_checkpoint_at(g_follower.url);
      }
      sj_test_sleep_ms(rand_r(&seed) % 10);
    }
    sample_checkpoint_at(g_follower.url);
    uint64_t last = follower_held();
    held = last > held ? last : held;
    if (held < origin) { /* killed before it reached what the origin held when it started */
      mid++;
      behind_max = origin - held > behind_max ? origin - held : behind_max;
    }
    if (r % 2 == 0) /* aim the next random kill at the catch-up's length, whatever the machine */
      span = held < origin ? (span * 5 / 4 < 5000 ? span * 5 / 4 : 5000)
                           : (span * 2 / 3 > 20 ? span * 2 / 3 : 20);
    sj_test_node_stop(&g_follower, SIGKILL);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  /* Restarted once more, it converges to the origin's tree. */
  uint64_t want = sj_test_node_tree_size(&g_node), size = 0;
  follower_start();
  for (int w = 0; w < 2400 && (size = sample_checkpoint_at(g_follower.url)) < want; w++)
    sj_test_sleep_ms(50);
  ck_assert_uint_eq(size, want);
  uint8_t root[32], oroot[32];
  uint64_t osize;
  check_log(g_follower.url, &size, root);
  check_log(g_node.url, &osize, oroot);
  ck_assert_uint_eq(size, osize);
  ck_assert(memcmp(root, oroot, 32) == 0);
  check_old_checkpoints(g_follower.url, size, root);
  ck_assert_int_gt(mid, 0); /* the kills did land in the middle of catch-ups */
  fprintf(stderr,
          "crash (follower): %d kills, %d of them mid-catch-up (at most %llu entries behind), "
          "%zu acknowledged records, log size %llu, %zu follower checkpoints checked\n",
          rounds, mid, (unsigned long long)behind_max, atomic_load(&g_nacked),
          (unsigned long long)size, g_ncps);
}
END_TEST

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("crash");
  const sj_test_case_t cases[] = {
      {"sigkill", acknowledged_records_survive_sigkill_during_ingest},
      {"follower_sigkill", a_follower_killed_mid_catch_up_converges},
  };
  sj_test_add_cases(s, cases, sizeof cases / sizeof *cases, setup, teardown, 1800);
  return sj_test_run_suite(s);
}
