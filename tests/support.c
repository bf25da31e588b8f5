/* tests/support.c — helpers shared by the Check suites (see support.h for the contract). */
#include "tests/support.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Files, directories, commands ------------------------------------------------------------ */

void sj_test_sleep_ms(long ms) {
  nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

void sj_test_tmpdir(char *dir, size_t cap, const char *prefix) {
  const char *tmp = getenv("SJ_TMPDIR") ? getenv("SJ_TMPDIR") : "/tmp";
  snprintf(dir, cap, "%s/%s.XXXXXX", tmp, prefix);
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

int sj_test_rmtree(const char *dir) {
  if (sj_test_sh("rm -rf '%s'", dir) == 0)
    return 0;
  fprintf(stderr, "cannot remove %s\n", dir);
  return -1;
}

void sj_test_write_file(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  ck_assert_msg(fd >= 0, "cannot create %s", path);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

int sj_test_sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

char *sj_test_popen(const char *cmd, int *status) {
  FILE *f = popen(cmd, "r");
  sj_buf_t out;
  sj_buf_init(&out);
  char buf[4096];
  size_t n;
  while (f && (n = fread(buf, 1, sizeof buf, f)) > 0)
    sj_buf_append(&out, buf, n);
  *status = f ? pclose(f) : -1;
  sj_buf_append_u8(&out, 0);
  return (char *)out.p;
}

json_t *sj_test_json(const void *p, size_t n) {
  json_error_t e;
  json_t *j = json_loadb(p, n, 0, &e);
  ck_assert_msg(j != NULL, "not JSON (%s): %.*s", e.text, (int)(n > 600 ? 600 : n),
                (const char *)p);
  return j;
}

void sj_test_add_cases(Suite *s, const sj_test_case_t *cases, size_t n, SFun setup, SFun teardown,
                       double timeout) {
  for (size_t i = 0; i < n; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout);
    tcase_add_test(tc, cases[i].test);
    suite_add_tcase(s, tc);
  }
}

int sj_test_run_suite(Suite *s) {
  signal(SIGPIPE, SIG_IGN); /* as every program using net must: libuv writes to sockets */
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- HTTP/2 requests ------------------------------------------------------------------------- */

int sj_test_fetch(const char *base, const sj_test_req_t *r, sj_buf_t *out) {
  char url[2048], auth[160];
  sj_header_t h[4];
  size_t nh = 0;
  int status = 0;
  snprintf(url, sizeof url, "%s%s", base, r->path ? r->path : "");
  if (r->token) {
    snprintf(auth, sizeof auth, "Bearer %s", r->token);
    h[nh++] = (sj_header_t){"authorization", auth};
  }
  if (r->ctype)
    h[nh++] = (sj_header_t){"content-type", r->ctype};
  if (r->idem)
    h[nh++] = (sj_header_t){"idempotency-key", r->idem};
  if (r->purpose)
    h[nh++] = (sj_header_t){"x-purpose", r->purpose};
  size_t len = r->len ? r->len : r->body ? strlen(r->body) : 0;
  sj_buf_reset(out);
  int rv = sj_http_fetch(url, r->method ? r->method : "GET", h, nh, r->body, len,
                         r->timeout_ms ? r->timeout_ms : 20000, &status, out, NULL);
  return rv ? rv : status;
}

int sj_test_wait_healthy(const char *base, long max_ms) {
  sj_buf_t b = {0};
  const sj_test_req_t r = {.path = "/healthz"};
  int st = 0;
  for (long t = 0; t < max_ms && (st = sj_test_fetch(base, &r, &b)) != 200; t += 25)
    sj_test_sleep_ms(25);
  sj_buf_deinit(&b);
  return st;
}

void sj_test_checkpoint_verify(const char *vkey, const void *p, size_t n, sj_checkpoint_t *cp) {
  sj_verifier_t *v = NULL;
  size_t text_len = 0;
  ck_assert_int_eq(sj_verifier_parse(vkey, strlen(vkey), &v), 0);
  const sj_verifier_t *vs[1] = {v};
  int rv = sj_note_verify(p, n, vs, 1, &text_len, NULL);
  sj_verifier_free(v);
  ck_assert_msg(rv == 0, "checkpoint does not verify (%d): %.*s", rv, (int)n, (const char *)p);
  ck_assert_int_eq(sj_checkpoint_parse(p, text_len, cp), 0);
}

size_t sj_test_check_entries(const sj_buf_t *b, uint64_t *next, uint8_t prev[SJ_HASH_LEN],
                             sj_test_leaf_fn on_leaf, void *arg) {
  static sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  size_t off = 0, bodies = 0;
  while (off < b->n) {
    sj_bytes_t hdr, body;
    int has_body;
    sj_entry_header_t h;
    unsigned long long seq = *next;
    long used = sj_frame_next(b->p + off, b->n - off, 1 << 20, &hdr, &body, &has_body);
    ck_assert_msg(used > 0, "entry %llu: bad frame (%ld)", seq, used);
    ck_assert_msg(sj_entry_decode(hdr.p, hdr.n, &h, keys, SJ_ENTRY_MAX_KEYS) == 0,
                  "entry %llu: header does not decode", seq);
    ck_assert_msg(h.seq == seq, "entry %llu: header says seq %llu", seq, (unsigned long long)h.seq);
    ck_assert_msg(memcmp(h.prev, prev, SJ_HASH_LEN) == 0, "entry %llu: chain link broken", seq);
    ck_assert_msg(!has_body || sj_entry_check_body(&h, body.p, body.n) == 0,
                  "entry %llu: body does not match its header", seq);
    sj_merkle_leaf_hash(hdr.p, hdr.n, prev);
    if (on_leaf)
      on_leaf(arg, seq, prev);
    bodies += has_body != 0;
    off += (size_t)used;
    (*next)++;
  }
  return bodies;
}

/* ---- A sanjiao-node process ------------------------------------------------------------------ */

/* A loopback port nobody listens on right now (the kernel's choice for port 0). */
static uint16_t free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  ck_assert_int_ge(s, 0);
  ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
  close(s);
  return ntohs(a.sin_port);
}

/* "<n->dir>/<name>" into out. */
static void node_path(const sj_test_node_t *n, const char *name, char out[600]) {
  snprintf(out, 600, "%s/%s", n->dir, name);
}

void sj_test_node_init(sj_test_node_t *n, const char *dir, const char *region, const char *origin) {
  char path[600];
  sj_signer_t *s = NULL;
  sj_buf_t sk = {0}, vk = {0};
  memset(n, 0, sizeof *n);
  snprintf(n->dir, sizeof n->dir, "%s", dir);
  snprintf(n->region, sizeof n->region, "%s", region);
  ck_assert_int_eq(sj_signer_generate(origin, &s), 0);
  ck_assert_int_eq(sj_signer_format(s, &sk), 0);
  ck_assert_int_eq(sj_signer_vkey(s, SJ_KEY_ED25519, &vk), 0);
  snprintf(n->vkey, sizeof n->vkey, "%s", (char *)vk.p);
  node_path(n, "key", path);
  sj_test_write_file(path, (char *)sk.p, 0600);
  node_path(n, "hmac", path);
  sj_test_write_file(path, SJ_TEST_HMAC_HEX "\n", 0600);
  node_path(n, "tokens", path);
  sj_test_write_file(path, "", 0600);
  sj_signer_free(s);
  sj_buf_deinit(&sk);
  sj_buf_deinit(&vk);
  n->port = free_port();
  snprintf(n->url, sizeof n->url, "http://127.0.0.1:%u", n->port);
}

void sj_test_node_add_token(const sj_test_node_t *n, const char *role, const char *token,
                            const char *arg, const char *label) {
  uint8_t h[32];
  char hex[65], path[600];
  sj_sha256(token, strlen(token), h);
  sj_hex_encode(h, 32, hex);
  node_path(n, "tokens", path);
  FILE *f = fopen(path, "a");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fprintf(f, "%s %s%s%s %s\n", role, hex, arg ? " " : "", arg ? arg : "", label);
  fclose(f);
}

void sj_test_node_start(sj_test_node_t *n, const char *const *args) {
  enum { MAX_ARGS = 16 };
  char bin[600], listen[64], data[600], key[600], tokens[600], hmac[600], log[600];
  snprintf(bin, sizeof bin, "%s/sanjiao-node", getenv("SJ_BIN"));
  snprintf(listen, sizeof listen, "127.0.0.1:%u", n->port);
  node_path(n, "data", data);
  node_path(n, "key", key);
  node_path(n, "tokens", tokens);
  node_path(n, "hmac", hmac);
  node_path(n, "node.log", log);
  const char *argv[16 + MAX_ARGS] = {
      bin, "--region", n->region, "--listen",   listen, "--data-dir",  data,  "--key",
      key, "--tokens", tokens,    "--hmac-key", hmac,   "--log-level", "warn"};
  size_t k = 15; /* the program and seven option pairs; then args and the NULL */
  for (size_t i = 0; args && args[i]; i++) {
    ck_assert_uint_lt(i, MAX_ARGS);
    argv[k++] = args[i];
  }
  argv[k] = NULL;
  /* Everything is prepared before fork: the child of a threaded test only opens, dups, execs. */
  n->pid = fork();
  ck_assert_int_ge(n->pid, 0);
  if (n->pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 2);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  int st = sj_test_wait_healthy(n->url, 30000) /* generous: ASan on a loaded CI machine */;
  ck_assert_msg(st == 200, "node in %s did not come up (%d): see its node.log", n->dir, st);
}

void sj_test_node_stop(sj_test_node_t *n, int sig) {
  if (n->pid <= 0)
    return;
  kill(n->pid, sig);
  waitpid(n->pid, NULL, 0);
  n->pid = 0;
}

uint64_t sj_test_node_tree_size(const sj_test_node_t *n) {
  sj_buf_t b = {0};
  ck_assert_int_eq(sj_test_fetch(n->url, &(sj_test_req_t){.path = "/healthz"}, &b), 200);
  json_t *j = sj_test_json(b.p, b.n);
  uint64_t size = (uint64_t)json_integer_value(json_object_get(j, "tree_size"));
  json_decref(j);
  sj_buf_deinit(&b);
  return size;
}

unsigned long long sj_test_node_metric(const sj_test_node_t *n, const char *name) {
  sj_buf_t m = {0};
  ck_assert_int_eq(sj_test_fetch(n->url, &(sj_test_req_t){.path = "/metrics"}, &m), 200);
  sj_buf_append_u8(&m, 0);
  char pat[128];
  snprintf(pat, sizeof pat, "\n%s ", name);
  const char *p = strstr((char *)m.p, pat);
  ck_assert_msg(p != NULL, "no %s in /metrics", name);
  unsigned long long v = strtoull(p + strlen(pat), NULL, 10);
  sj_buf_deinit(&m);
  return v;
}

/* ---- A loop under test ----------------------------------------------------------------------- */

static void guard_cb(uv_timer_t *t) {
  sj_test_loop_t *l = t->data;
  l->guard_fired = 1;
}

void sj_test_loop_init(sj_test_loop_t *l) {
  ck_assert_int_eq(uv_loop_init(&l->loop), 0);
  ck_assert_int_eq(uv_timer_init(&l->loop, &l->guard), 0);
  l->guard.data = l;
  l->guard_fired = 0;
}

int sj_test_loop_run_until(sj_test_loop_t *l, const int *flag, int target, uint64_t ms) {
  l->guard_fired = 0;
  uv_timer_start(&l->guard, guard_cb, ms, 0);
  while (*flag < target && !l->guard_fired)
    uv_run(&l->loop, UV_RUN_ONCE);
  uv_timer_stop(&l->guard);
  return *flag >= target;
}

void sj_test_loop_run_for(sj_test_loop_t *l, uint64_t ms) {
  int never = 0;
  sj_test_loop_run_until(l, &never, 1, ms);
}

/* done is set by the helper thread; woken, on the loop, once the async reported it. */
struct sj_test_job {
  pthread_t th;
  void (*fn)(void *arg);
  void *arg;
  atomic_int done;
  uv_async_t wake;
  int woken;
};

static void job_wake(uv_async_t *a) {
  sj_test_job_t *j = a->data;
  j->woken = atomic_load(&j->done);
}

static void *job_main(void *arg) {
  sj_test_job_t *j = arg;
  j->fn(j->arg);
  atomic_store(&j->done, 1);
  uv_async_send(&j->wake);
  return NULL;
}

sj_test_job_t *sj_test_job_start(sj_test_loop_t *l, void (*fn)(void *arg), void *arg) {
  sj_test_job_t *j = calloc(1, sizeof *j);
  ck_assert_ptr_nonnull(j);
  j->fn = fn;
  j->arg = arg;
  ck_assert_int_eq(uv_async_init(&l->loop, &j->wake, job_wake), 0);
  j->wake.data = j;
  ck_assert_int_eq(pthread_create(&j->th, NULL, job_main, j), 0);
  return j;
}

int sj_test_job_done(const sj_test_job_t *j) {
  return j->woken;
}

int sj_test_job_finish(sj_test_loop_t *l, sj_test_job_t *j, uint64_t ms) {
  int ok = sj_test_loop_run_until(l, &j->woken, 1, ms);
  pthread_join(j->th, NULL);
  uv_close((uv_handle_t *)&j->wake, NULL);
  sj_test_loop_run_for(l, 1); /* the close completes before j is freed */
  free(j);
  return ok;
}

void sj_test_loop_finish(sj_test_loop_t *l, const int *closed, int want) {
  int ok = sj_test_loop_run_until(l, closed, want, 5000);
  uv_close((uv_handle_t *)&l->guard, NULL);
  uv_run(&l->loop, UV_RUN_DEFAULT);
  ck_assert_msg(ok, "server/client close did not complete");
  ck_assert_int_eq(uv_loop_close(&l->loop), 0);
}

void sj_test_result_done(int err, const sj_resp_t *resp, void *arg) {
  sj_test_result_t *r = arg;
  r->done = 1;
  r->err = err;
  r->status = resp->status;
  if (resp->body_len)
    sj_buf_append(&r->body, resp->body, resp->body_len);
  for (size_t i = 0; i < resp->nhdrs; i++) {
    if (strcmp(resp->hdrs[i].name, "content-type") == 0)
      snprintf(r->ctype, sizeof r->ctype, "%s", resp->hdrs[i].value);
    if (strcmp(resp->hdrs[i].name, "allow") == 0)
      snprintf(r->allow, sizeof r->allow, "%s", resp->hdrs[i].value);
  }
  if (r->counter)
    (*r->counter)++;
}

void sj_test_request(sj_client_t *c, const sj_call_req_t *r, sj_test_result_t *res) {
  memset(res, 0, sizeof *res);
  sj_call_cbs_t cbs = {NULL, NULL, sj_test_result_done, res};
  ck_assert_int_eq(sj_client_request(c, r, &cbs, NULL), 0);
}

int sj_test_body_is(const sj_test_result_t *r, const char *s) {
  return r->body.n == strlen(s) && memcmp(r->body.p, s, r->body.n) == 0;
}
