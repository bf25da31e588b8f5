/* tests/test_partition.c — real network partitions between four region nodes, each in its own
 * network namespace joined by a bridge (ip netns, veth). One region is cut off entirely while all
 * four keep writing, then healed: all four converge to identical roots. Then one link only is cut
 * (Zhejiang cannot reach Shanghai, Jiangsu can): Shanghai's entries reach Zhejiang through a relay.
 * Needs root (network namespaces); the namespaces, bridge and nodes are removed afterwards. */
#include "tests/support.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NREG 4
static const char *regions[NREG] = {"310000", "320000", "330000", "340000"};
static char g_dir[512], g_tag[16];
static int g_base; /* loopback ports the launcher writes into the configs (replaced before start) */
static json_t *g_cluster;

static const char *field(int i, const char *k) {
  return json_string_value(json_object_get(json_array_get(json_object_get(g_cluster, "nodes"), i), k));
}

/* Node i lives at 10.77.<tag>.(10+i):7300 inside namespace sj<tag>n<i>. */
static void node_url(int i, char *out, size_t cap) {
  snprintf(out, cap, "http://10.77.%s.%d:7300", g_tag, 10 + i);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads time out after 3 s (a node cut off does not answer, and they are retried); submissions
 * after 30 s (a synced append on a loaded CI machine under ASan). */
static int fetch(int i, const char *method, const char *path, const char *token, const char *body,
                 sj_buf_t *out) {
  char url[256];
  node_url(i, url, sizeof url);
  sj_test_req_t r = {.method = method,
                     .path = path,
                     .token = token,
                     .ctype = body ? "application/json" : NULL,
                     .body = body,
                     .timeout_ms = body ? 30000 : 3000};
  return sj_test_fetch(url, &r, out);
}

static void submit(int i, const char *name) {
  char rec[400];
  sj_buf_t b = {0};
  snprintf(rec, sizeof rec,
           "{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":{\"type\":\"enterprise\",\"id\":"
           "\"91310115MA1K00007Q\",\"name\":\"%s\"},\"disclosure\":\"public\"}",
           name);
  ck_assert_int_eq(fetch(i, "POST", "/v1/records", field(i, "submit_token"), rec, &b), 201);
  sj_buf_deinit(&b);
}

static int fetch_ok(int i) {
  sj_buf_t b = {0};
  int ok = fetch(i, "GET", "/healthz", NULL, NULL, &b) == 200;
  sj_buf_deinit(&b);
  return ok;
}

/* The checkpoint root node i serves for region r (size in *size), or 0 size when unreachable. */
static void root_of(int i, int r, uint8_t root[32], uint64_t *size) {
  char path[64];
  sj_buf_t b = {0};
  size_t tl, so;
  sj_checkpoint_t cp;
  *size = 0;
  snprintf(path, sizeof path, "/v1/logs/%s/checkpoint", regions[r]);
  if (fetch(i, "GET", path, NULL, NULL, &b) == 200 &&
      sj_note_split((char *)b.p, b.n, &tl, &so) == 0 && sj_checkpoint_parse((char *)b.p, tl, &cp) == 0) {
    memcpy(root, cp.root, 32);
    *size = cp.size;
  }
  sj_buf_deinit(&b);
}

/* Waits until every node serves, for every region with entries, the origin's checkpoint root
 * (and at least one region has entries); max_ms of wall-clock time, checked at least once. */
static int converged(long max_ms) {
  for (uint64_t t0 = now_ms(), first = 1; first || now_ms() - t0 < (uint64_t)max_ms; first = 0) {
    int ok = 1, seen = 0;
    for (int r = 0; r < NREG && ok; r++) {
      uint8_t want[32], got[32];
      uint64_t ws, gs;
      root_of(r, r, want, &ws);
      if (ws == 0) {
        ok = fetch_ok(r); /* an empty region's node must still answer */
        continue;
      }
      seen = 1;
      for (int i = 0; i < NREG && ok; i++) {
        root_of(i, r, got, &gs);
        ok = gs == ws && !memcmp(got, want, 32);
      }
    }
    ok = ok && seen;
    if (ok)
      return 1;
    sj_test_sleep_ms(200);
  }
  return 0;
}

static void net_up(void) {
  ck_assert_int_eq(
      sj_test_sh("ip link add sj%sbr type bridge && ip addr add 10.77.%s.1/24 dev sj%sbr && "
                 "ip link set sj%sbr up",
                 g_tag, g_tag, g_tag, g_tag),
      0);
  for (int i = 0; i < NREG; i++)
    ck_assert_int_eq(
        sj_test_sh("ip netns add sj%sn%d && ip link add sj%sh%d type veth peer name sj%sv%d && "
                   "ip link set sj%sv%d netns sj%sn%d && ip link set sj%sh%d master sj%sbr && "
                   "ip link set sj%sh%d up && ip netns exec sj%sn%d ip link set lo up && "
                   "ip netns exec sj%sn%d ip addr add 10.77.%s.%d/24 dev sj%sv%d && "
                   "ip netns exec sj%sn%d ip link set sj%sv%d up",
                   g_tag, i, g_tag, i, g_tag, i, g_tag, i, g_tag, i, g_tag, i, g_tag, g_tag, i,
                   g_tag, i, g_tag, i, g_tag, 10 + i, g_tag, i, g_tag, i, g_tag, i),
        0);
}

/* Removes the namespaces, their links and the bridge. The host end of each veth is deleted
 * first, which removes both ends at once: left to the namespace's deletion, the kernel tears the
 * pair down later, in the background, and the next test's `ip link add` of the same names could
 * fail with "File exists" (seen once on a loaded machine). Then waits (at most 10 s) until no
 * link or namespace of this tag is left. */
static void net_down(void) {
  for (int i = 0; i < NREG; i++) {
    sj_test_sh("ip netns pids sj%sn%d 2>/dev/null | xargs -r kill -9", g_tag, i);
    sj_test_sh("ip link del sj%sh%d 2>/dev/null", g_tag, i);
    sj_test_sh("ip netns del sj%sn%d 2>/dev/null", g_tag, i);
  }
  sj_test_sh("ip link del sj%sbr 2>/dev/null", g_tag);
  for (int k = 0; k < 100; k++) {
    if (sj_test_sh("{ ip -o link show; ip netns list; } 2>/dev/null | grep -q 'sj%s[hvnb]'",
                   g_tag) != 0)
      return;
    sj_test_sleep_ms(100);
  }
}

/* Rewrites the loopback cluster's configs for the namespaces and starts each node in its own. */
static void start_nodes(void) {
  for (int i = 0; i < NREG; i++) {
    char conf[700];
    snprintf(conf, sizeof conf, "%s/%s/node.conf", g_dir, regions[i]);
    for (int k = 0; k < NREG; k++) /* 127.0.0.1:<base+k> -> the namespace address of node k */
      ck_assert_int_eq(sj_test_sh("sed -i 's#127.0.0.1:%d#10.77.%s.%d:7300#' %s", g_base + k, g_tag,
                                  10 + k, conf),
                       0);
    ck_assert_int_eq(sj_test_sh("ip netns exec sj%sn%d %s/sanjiao-node --config %s --poll-ms 500 "
                                ">>%s/%s/netns.log 2>&1 &",
                                g_tag, i, getenv("SJ_BIN"), conf, g_dir, regions[i]),
                     0);
  }
  for (int i = 0; i < NREG; i++) {
    char url[256];
    node_url(i, url, sizeof url);
    ck_assert_int_eq(sj_test_wait_healthy(url, 30000), 200);
  }
}

static void setup(void) {
  ck_assert_int_eq(sj_crypto_init(), 0);
  sj_log_set_level(SJ_LOG_LEVEL_ERR);
  ck_assert_msg(geteuid() == 0, "network namespaces need root");
  snprintf(g_tag, sizeof g_tag, "%d", 100 + getpid() % 150);
  sj_test_tmpdir(g_dir, sizeof g_dir, "partition");
  net_down(); /* leftovers of an interrupted run with the same tag */
  /* Keys, tokens and configs from the launcher; its loopback nodes are stopped at once. */
  g_base = 23000 + (getpid() % 150) * 4; /* its own range: test_cluster.c's setup says why */
  /* Down even when up fails part way (e.g. a port taken), so that no node outlives the test. */
  ck_assert_int_eq(sj_test_sh("%s/sanjiao cluster up --dir %s --base-port %d >%s/up.log 2>&1; "
                              "rc=$?; %s/sanjiao cluster down --dir %s >/dev/null 2>&1; exit $rc",
                              getenv("SJ_BIN"), g_dir, g_base, g_dir, getenv("SJ_BIN"), g_dir),
                   0);
  char p[600];
  json_error_t e;
  snprintf(p, sizeof p, "%s/cluster.json", g_dir);
  g_cluster = json_load_file(p, 0, &e);
  ck_assert_ptr_nonnull(g_cluster);
  net_up();
  start_nodes();
}

static void teardown(void) {
  net_down();
  sj_test_rmtree(g_dir);
  json_decref(g_cluster);
  g_cluster = NULL;
}

START_TEST(a_region_cut_off_converges_after_healing) {
  for (int i = 0; i < NREG; i++)
    submit(i, "before");
  ck_assert(converged(60000));
  /* Zhejiang (330000) is cut off from everyone; everyone keeps writing. */
  ck_assert_int_eq(sj_test_sh("ip link set sj%sh2 down", g_tag), 0);
  sj_buf_t b = {0};
  for (int k = 0; k < 5; k++)
    for (int i = 0; i < NREG; i++)
      if (i != 2)
        submit(i, "during");
  /* Zhejiang writes too, from inside its namespace. */
  ck_assert_int_eq(
      sj_test_sh("cd %s && printf '%%s' '{\"kind\":\"credit\",\"type\":\"penalty\",\"subject\":"
                 "{\"type\":\"enterprise\",\"id\":\"91330100MA2B000018\",\"name\":\"isolated\"},"
                 "\"disclosure\":\"public\"}' | ip netns exec sj%sn2 %s/sanjiao submit - "
                 "--node http://10.77.%s.12:7300 --token-file 330000/submit.token >/dev/null",
                 g_dir, g_tag, getenv("SJ_BIN"), g_tag),
      0);
  ck_assert(!converged(1500)); /* really partitioned */
  ck_assert_int_eq(sj_test_sh("ip link set sj%sh2 up", g_tag), 0);
  ck_assert(converged(90000));
  sj_buf_deinit(&b);
}
END_TEST

START_TEST(a_cut_link_is_routed_through_a_relay) {
  submit(0, "before");
  ck_assert(converged(60000));
  /* Zhejiang cannot reach Shanghai (and Shanghai's packets to it are dropped too). */
  ck_assert_int_eq(
      sj_test_sh("ip netns exec sj%sn2 ip route add blackhole 10.77.%s.10/32", g_tag, g_tag), 0);
  ck_assert_int_eq(
      sj_test_sh("ip netns exec sj%sn0 ip route add blackhole 10.77.%s.12/32", g_tag, g_tag), 0);
  for (int k = 0; k < 6; k++)
    submit(0, "through a relay");
  ck_assert(converged(90000));
}
END_TEST

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("partition");
  TCase *tc = tcase_create("netns");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 400);
  tcase_add_test(tc, a_region_cut_off_converges_after_healing);
  tcase_add_test(tc, a_cut_link_is_routed_through_a_relay);
  suite_add_tcase(s, tc);
  return sj_test_run_suite(s);
}
