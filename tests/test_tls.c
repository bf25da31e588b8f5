/* tests/test_tls.c — HTTP/2 over TLS 1.3 (net/tls.c): our client and server against each other,
 * curl and h2load; certificate and host-name verification; mutual TLS and the client
 * certificate's CN; cleartext/TLS mismatches; handshake timeout; backpressure; shutdown.
 *
 * main() makes, with the openssl command line, a CA, a server certificate (node.test,
 * 127.0.0.1), a client certificate (CN 320000), a rogue CA with a client certificate of the same
 * CN, and a server certificate naming only other.test; each test's fixture copies them into the
 * test's fresh directory under $SJ_TMPDIR (making them once saves ~0.5 s per test). Every test runs
 * a real loop on 127.0.0.1 port 0 and ends with uv_loop_close(loop) == 0. External commands run on
 * a helper thread so the loop keeps serving. SJ_TEST_LOG=1 prints the module's INFO lines
 * (handshake failures and their reasons). */
#include "net/net.h"
#include "tests/support.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- Fixture: loop, temp dir, certificates --------------------------------------------------- */

static sj_test_loop_t tl; /* the loop under test and its guard timer */
static uv_loop_t *const loop = &tl.loop;
static char dir[512];
static char certs_dir[512]; /* where main() made the certificates */
static sj_server_t *srv;
#define MAX_CLIENTS 8
static sj_client_t *clients[MAX_CLIENTS];
static size_t nclients;

/* Path of a file in the fixture's directory (a rotating set of static buffers). */
static const char *path(const char *name) {
  static char bufs[8][600];
  static int i;
  char *b = bufs[i++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
  return b;
}

static const char gen_script[] =
    "set -e; cd '%s'\n"
    "ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key "
    "-out $1.pem -days 2 -subj \"/CN=$2\" -addext basicConstraints=critical,CA:TRUE "
    "-addext keyUsage=critical,keyCertSign,cRLSign; }\n"
    "leaf() { openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key "
    "-out $1.csr -subj \"/CN=$3\"; printf \"$4\" > $1.ext; openssl x509 -req -in $1.csr -CA $2.pem "
    "-CAkey $2.key -CAcreateserial -days 2 -out $1.pem -extfile $1.ext; }\n"
    "ca ca 'Sanjiao Test CA'; ca rogue 'Rogue CA'\n"
    "leaf srv ca node.test "
    "'subjectAltName=DNS:node.test,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n'\n"
    "leaf other ca other.test 'subjectAltName=DNS:other.test\\nextendedKeyUsage=serverAuth\\n'\n"
    "leaf cli ca 320000 'extendedKeyUsage=clientAuth\\n'\n"
    "leaf rcli rogue 320000 'extendedKeyUsage=clientAuth\\n'\n"
    "echo 'not a certificate' > junk.pem\n";

/* Makes the certificates into certs_dir; 0 or -1 (reason on stderr). */
static int make_certs(void) {
  char script[sizeof gen_script + 600], file[600], cmd[1400];
  snprintf(script, sizeof script, gen_script, certs_dir);
  snprintf(file, sizeof file, "%s/gen.sh", certs_dir);
  FILE *f = fopen(file, "w");
  if (!f)
    return -1;
  fputs(script, f);
  fclose(f);
  snprintf(cmd, sizeof cmd, "sh '%s' >'%s/gen.log' 2>&1", file, certs_dir);
  if (system(cmd) != 0) {
    fprintf(stderr,
            "test_tls: generating certificates with the openssl command failed (see "
            "%s/gen.log); is the openssl package installed?\n",
            certs_dir);
    return -1;
  }
  return 0;
}

static void setup(void) {
  sj_test_tmpdir(dir, sizeof dir, "tls");
  char cmd[1600];
  snprintf(cmd, sizeof cmd, "cp '%s'/*.pem '%s'/*.key '%s'", certs_dir, certs_dir, dir);
  ck_assert_int_eq(system(cmd), 0);
  sj_test_loop_init(&tl);
  srv = NULL;
  nclients = 0;
}

static void on_closed_count(void *arg) {
  (*(int *)arg)++;
}

/* Runs the loop until *flag >= target or ms elapsed; returns whether the target was met. */
static int run_until(const int *flag, int target, uint64_t ms) {
  return sj_test_loop_run_until(&tl, flag, target, ms);
}

static void run_for(uint64_t ms) {
  sj_test_loop_run_for(&tl, ms);
}

static void teardown(void) {
  int closed = 0, want = 0;
  for (size_t i = 0; i < nclients; i++, want++)
    sj_client_close(clients[i], on_closed_count, &closed);
  if (srv) {
    sj_server_close(srv, 0, on_closed_count, &closed);
    want++;
  }
  sj_test_loop_finish(&tl, &closed, want);
  ck_assert_int_eq(sj_test_rmtree(dir), 0);
}

/* ---- Server ---------------------------------------------------------------------------------- */

static uint8_t pattern_byte(size_t i) {
  return (uint8_t)(i * 7 + 3);
}

static void h_hello(sj_req_t *req, void *arg) {
  (void)arg;
  char out[128];
  const char *scheme = sj_req_header(req, ":scheme", NULL);
  snprintf(out, sizeof out, "hello %s over %s", sj_req_param(req, "name"), scheme ? scheme : "?");
  sj_header_t h[] = {{"content-type", "text/plain"}};
  sj_req_respond(req, 200, h, 1, out, strlen(out));
}

static void h_echo(sj_req_t *req, void *arg) {
  (void)arg;
  size_t n;
  const uint8_t *b = sj_req_body(req, &n);
  sj_req_respond(req, 200, NULL, 0, b, n);
}

static void h_big(sj_req_t *req, void *arg) {
  (void)arg;
  size_t n = strtoul(sj_req_param(req, "n"), NULL, 10);
  uint8_t *b = malloc(n ? n : 1);
  for (size_t i = 0; i < n; i++)
    b[i] = pattern_byte(i);
  sj_req_respond_owned(req, 200, NULL, 0, b, n, free);
}

/* The client certificate's CN, or "(none)". */
static void h_whoami(sj_req_t *req, void *arg) {
  (void)arg;
  const char *cn = sj_req_peer_cert_cn(req);
  const char *again = sj_req_peer_cert_cn(req); /* cached: the same string */
  ck_assert_ptr_eq(cn, again);
  sj_req_respond(req, 200, NULL, 0, cn ? cn : "(none)", strlen(cn ? cn : "(none)"));
}

/* Streams n bytes in 32 KiB writes, each only once the previous one was taken (drain). */
typedef struct {
  size_t total, sent, max_pending;
  int drains;
} streamer_t;

static streamer_t g_stream;

static void stream_more(sj_req_t *req, void *arg) {
  streamer_t *s = arg;
  uint8_t chunk[32768];
  s->drains++;
  if (s->sent == s->total) {
    sj_req_stream_end(req);
    return;
  }
  size_t n = s->total - s->sent < sizeof chunk ? s->total - s->sent : sizeof chunk;
  for (size_t i = 0; i < n; i++)
    chunk[i] = pattern_byte(s->sent + i);
  ck_assert_int_eq(sj_req_stream_write(req, chunk, n), 0);
  s->sent += n;
  if (sj_req_stream_pending(req) > s->max_pending)
    s->max_pending = sj_req_stream_pending(req);
}

static void h_stream(sj_req_t *req, void *arg) {
  (void)arg;
  memset(&g_stream, 0, sizeof g_stream);
  g_stream.total = strtoul(sj_req_param(req, "n"), NULL, 10);
  sj_req_set_on_drain(req, stream_more, &g_stream);
  ck_assert_int_eq(sj_req_stream_start(req, 200, NULL, 0), 0);
  stream_more(req, &g_stream);
}

/* Answers 150 ms later (graceful shutdown must wait for it). */
typedef struct {
  uv_timer_t t;
  sj_req_t *req;
} slow_t;

static void slow_closed(uv_handle_t *h) {
  free(h->data);
}

static void slow_fire(uv_timer_t *t) {
  slow_t *s = t->data;
  sj_req_respond(s->req, 200, NULL, 0, "slow", 4);
  sj_req_unref(s->req);
  uv_close((uv_handle_t *)t, slow_closed);
}

static int g_slow_started;

static void h_slow(sj_req_t *req, void *arg) {
  (void)arg;
  slow_t *s = calloc(1, sizeof *s);
  s->req = req;
  sj_req_ref(req);
  uv_timer_init(loop, &s->t);
  s->t.data = s;
  uv_timer_start(&s->t, slow_fire, 150, 0);
  g_slow_started++;
}

typedef struct {
  const char *client_ca;
  int require;
  uint64_t hs_timeout;
  size_t max_write_queue;
  int cleartext;
} srv_cfg_t;

static void start_server_cfg(const srv_cfg_t *cfg) {
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  if (!cfg->cleartext) {
    o.tls_cert_file = path("srv.pem");
    o.tls_key_file = path("srv.key");
  }
  o.tls_client_ca_file = cfg->client_ca;
  o.tls_require_client_cert = cfg->require;
  if (cfg->hs_timeout)
    o.tls_handshake_timeout_ms = cfg->hs_timeout;
  if (cfg->max_write_queue)
    o.max_write_queue = cfg->max_write_queue;
  ck_assert_int_eq(sj_server_new(loop, &o, &srv), 0);
  sj_route_opts_t big = {32u << 20, 0};
  ck_assert_int_eq(sj_server_route(srv, "GET", "/hello/{name}", NULL, h_hello, NULL), 0);
  ck_assert_int_eq(sj_server_route(srv, "POST", "/echo", &big, h_echo, NULL), 0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/big/{n}", NULL, h_big, NULL), 0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/whoami", NULL, h_whoami, NULL), 0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/stream/{n}", NULL, h_stream, NULL), 0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/slow", NULL, h_slow, NULL), 0);
  ck_assert_int_eq(sj_server_listen(srv, "127.0.0.1", 0), 0);
}

static void start_server(void) {
  srv_cfg_t cfg = {0};
  start_server_cfg(&cfg);
}

/* ---- Client ---------------------------------------------------------------------------------- */

typedef struct {
  const char *ca, *cert, *key, *name;
  const char *scheme;
} cli_cfg_t;

static sj_client_t *new_client(const cli_cfg_t *cfg) {
  sj_client_opts_t o;
  sj_client_opts_default(&o);
  o.connect_timeout_ms = 3000;
  o.request_timeout_ms = 10000;
  o.tls_ca_file = cfg->ca;
  o.tls_cert_file = cfg->cert;
  o.tls_key_file = cfg->key;
  o.tls_server_name = cfg->name;
  char url[64];
  snprintf(url, sizeof url, "%s://127.0.0.1:%u", cfg->scheme ? cfg->scheme : "https",
           sj_server_port(srv));
  ck_assert_uint_lt(nclients, MAX_CLIENTS);
  ck_assert_int_eq(sj_client_new(loop, url, &o, &clients[nclients]), 0);
  return clients[nclients++];
}

/* A client trusting our CA, without a certificate of its own. */
static sj_client_t *trusting_client(void) {
  cli_cfg_t c = {path("ca.pem"), NULL, NULL, NULL, NULL};
  return new_client(&c);
}

typedef sj_test_result_t result_t; /* one client request's outcome */

static void request_on(sj_client_t *c, const char *method, const char *p, const void *body,
                       size_t n, result_t *res) {
  sj_call_req_t r = {method, p, NULL, 0, body, n, 0};
  sj_test_request(c, &r, res);
}

/* One request, waited for. The body is left in res (caller frees). */
static void do_request(sj_client_t *c, const char *p, result_t *res) {
  request_on(c, "GET", p, NULL, 0, res);
  ck_assert_msg(run_until(&res->done, 1, 10000), "GET %s did not finish", p);
}

static int pattern_ok(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern_byte(i))
      return 0;
  return 1;
}

/* Expects GET p on a fresh client built from cfg to fail with err (0 = any error). */
static void expect_failure(const cli_cfg_t *cfg, const char *p, int err) {
  sj_client_t *c = new_client(cfg);
  result_t r;
  do_request(c, p, &r);
  if (err)
    ck_assert_msg(r.err == err, "GET %s: expected %s, got %d (%s), status %d", p, sj_strerror(err),
                  r.err, sj_strerror(r.err), r.status);
  else
    ck_assert_msg(r.err != 0, "GET %s succeeded (status %d)", p, r.status);
  ck_assert_int_eq(r.status, 0);
  sj_buf_deinit(&r.body);
}

/* ---- External commands on a helper thread ---------------------------------------------------- */

/* A command for run_cmd's helper thread, and what it printed. */
typedef struct {
  char cmd[2048];
  char *out;
  int status;
} cmd_t;

static void cmd_main(void *arg) {
  cmd_t *c = arg;
  c->out = sj_test_popen(c->cmd, &c->status);
}

/* Runs cmd (a printf format) while the loop serves; returns its stdout (malloc'd). */
static char *run_cmd(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run_cmd(int *status, const char *fmt, ...) {
  cmd_t c = {.status = -1};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c.cmd, sizeof c.cmd, fmt, ap);
  va_end(ap);
  int ok = sj_test_job_finish(&tl, sj_test_job_start(&tl, cmd_main, &c), 30000);
  ck_assert_msg(ok, "command did not finish: %s", c.cmd);
  *status = c.status;
  return c.out;
}

/* ---- Tests: our client and server ------------------------------------------------------------ */

START_TEST(test_client_server_many_streams_large_bodies) {
  start_server();
  sj_client_t *c = trusting_client();
  enum { N = 200, BIG = 4, BIGN = 3u << 20 };
  result_t small[N], echo[BIG], big[BIG];
  int count = 0;
  char p[N][32];
  uint8_t *up = malloc(BIGN);
  for (size_t i = 0; i < BIGN; i++)
    up[i] = pattern_byte(i);
  for (int i = 0; i < N; i++) {
    snprintf(p[i], sizeof p[i], "/hello/n%d", i);
    request_on(c, "GET", p[i], NULL, 0, &small[i]);
    small[i].counter = &count;
  }
  char bigp[32];
  snprintf(bigp, sizeof bigp, "/big/%u", (unsigned)BIGN);
  for (int i = 0; i < BIG; i++) {
    request_on(c, "POST", "/echo", up, BIGN, &echo[i]);
    echo[i].counter = &count;
    request_on(c, "GET", bigp, NULL, 0, &big[i]);
    big[i].counter = &count;
  }
  ck_assert_msg(run_until(&count, N + 2 * BIG, 30000), "only %d of %d requests done", count,
                N + 2 * BIG);
  for (int i = 0; i < N; i++) {
    char want[64];
    snprintf(want, sizeof want, "hello n%d over https", i);
    ck_assert_int_eq(small[i].err, 0);
    ck_assert_int_eq(small[i].status, 200);
    ck_assert_msg(sj_test_body_is(&small[i], want), "stream %d: wrong body", i);
    sj_buf_deinit(&small[i].body);
  }
  for (int i = 0; i < BIG; i++) {
    ck_assert_int_eq(echo[i].status, 200);
    ck_assert_uint_eq(echo[i].body.n, BIGN);
    ck_assert(pattern_ok(echo[i].body.p, BIGN));
    ck_assert_int_eq(big[i].status, 200);
    ck_assert_uint_eq(big[i].body.n, BIGN);
    ck_assert(pattern_ok(big[i].body.p, BIGN));
    sj_buf_deinit(&echo[i].body);
    sj_buf_deinit(&big[i].body);
  }
  free(up);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_accepted, 1); /* every stream on one TLS connection */
  ck_assert_uint_eq(st.requests, N + 2 * BIG);
  /* No client certificate: no CN. */
  result_t r;
  do_request(c, "/whoami", &r);
  ck_assert(sj_test_body_is(&r, "(none)"));
  sj_buf_deinit(&r.body);
}
END_TEST

START_TEST(test_streamed_reply_drains_and_queue_stays_bounded) {
  srv_cfg_t cfg = {0};
  cfg.max_write_queue = 65536;
  start_server_cfg(&cfg);
  sj_client_t *c = trusting_client();
  result_t r;
  do_request(c, "/stream/8000000", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_eq(r.body.n, 8000000);
  ck_assert(pattern_ok(r.body.p, r.body.n));
  ck_assert_int_ge(g_stream.drains, 8000000 / 32768); /* the drain callback paced the writer */
  ck_assert_uint_le(g_stream.max_pending, 32768);
  sj_buf_deinit(&r.body);

  /* A reader that takes 200 KB/s of a 64 MB reply: the server stops producing at its bound
   * (65536 + one frame + TLS overhead) instead of buffering the reply's ciphertext. */
  cmd_t *bg = calloc(1, sizeof *bg); /* on the heap: a failed check below leaves it running */
  snprintf(bg->cmd, sizeof bg->cmd,
           "curl -s --http2 --cacert %s --limit-rate 200k --max-time 2 -o /dev/null "
           "https://127.0.0.1:%u/big/67108864",
           path("ca.pem"), sj_server_port(srv));
  sj_test_job_t *job = sj_test_job_start(&tl, cmd_main, bg);
  uint64_t peak = 0;
  int stalled = 0;
  for (int i = 0; i < 30 && !sj_test_job_done(job); i++) {
    run_for(50);
    sj_server_stats_t st;
    sj_server_stats(srv, &st);
    peak = st.bytes_queued > peak ? st.bytes_queued : peak;
    stalled += st.bytes_queued > 0 && st.streams_open > 0;
  }
  ck_assert_msg(stalled > 0, "the slow reader never made the server queue anything");
  ck_assert_msg(peak <= 65536 + 16384 + 9 + 4096, "queued %llu bytes", (unsigned long long)peak);
  sj_test_job_finish(&tl, job, 10000);
  free(bg->out);
  free(bg);
}
END_TEST

/* ---- Tests: verification --------------------------------------------------------------------- */

START_TEST(test_server_certificate_and_name_verified) {
  start_server();
  result_t r;
  /* Our CA, the name in the URL (127.0.0.1, an IP SAN). */
  do_request(trusting_client(), "/hello/ip", &r);
  ck_assert_int_eq(r.status, 200);
  sj_buf_deinit(&r.body);
  /* A DNS name the certificate carries. */
  cli_cfg_t named = {path("ca.pem"), NULL, NULL, "node.test", NULL};
  do_request(new_client(&named), "/hello/dns", &r);
  ck_assert_int_eq(r.status, 200);
  sj_buf_deinit(&r.body);
  /* No CA given: the system store does not know our CA. */
  cli_cfg_t system_store = {NULL, NULL, NULL, NULL, NULL};
  expect_failure(&system_store, "/hello/x", SJ_EVERIFY);
  /* Another CA. */
  cli_cfg_t rogue = {path("rogue.pem"), NULL, NULL, NULL, NULL};
  expect_failure(&rogue, "/hello/x", SJ_EVERIFY);
  /* The right CA, the wrong name. */
  cli_cfg_t wrong = {path("ca.pem"), NULL, NULL, "evil.test", NULL};
  expect_failure(&wrong, "/hello/x", SJ_EVERIFY);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.requests, 2); /* refused connections reached no handler */
}
END_TEST

START_TEST(test_ip_not_in_certificate_refused) {
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  o.tls_cert_file = path("other.pem"); /* names other.test only */
  o.tls_key_file = path("other.key");
  ck_assert_int_eq(sj_server_new(loop, &o, &srv), 0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/hello/{name}", NULL, h_hello, NULL), 0);
  ck_assert_int_eq(sj_server_listen(srv, "127.0.0.1", 0), 0);
  cli_cfg_t by_ip = {path("ca.pem"), NULL, NULL, NULL, NULL};
  expect_failure(&by_ip, "/hello/x", SJ_EVERIFY);
  cli_cfg_t by_name = {path("ca.pem"), NULL, NULL, "other.test", NULL};
  result_t r;
  do_request(new_client(&by_name), "/hello/other", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "hello other over https"));
  sj_buf_deinit(&r.body);
}
END_TEST

/* ---- Tests: mutual TLS ----------------------------------------------------------------------- */

START_TEST(test_mutual_tls_required) {
  srv_cfg_t cfg = {0};
  cfg.client_ca = path("ca.pem");
  cfg.require = 1;
  start_server_cfg(&cfg);
  /* Without a certificate: refused (TLS 1.3 reports it after the client's handshake). */
  cli_cfg_t none = {path("ca.pem"), NULL, NULL, NULL, NULL};
  expect_failure(&none, "/whoami", 0);
  /* A certificate from another CA, with the same CN: refused. */
  cli_cfg_t rogue = {path("ca.pem"), path("rcli.pem"), path("rcli.key"), NULL, NULL};
  expect_failure(&rogue, "/whoami", 0);
  /* A server certificate used as a client's (serverAuth only): refused. */
  cli_cfg_t wrong_use = {path("ca.pem"), path("srv.pem"), path("srv.key"), NULL, NULL};
  expect_failure(&wrong_use, "/whoami", 0);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.requests, 0);
  /* Our CA's client certificate: accepted, and the handler sees its CN. */
  cli_cfg_t good = {path("ca.pem"), path("cli.pem"), path("cli.key"), NULL, NULL};
  result_t r;
  do_request(new_client(&good), "/whoami", &r);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "320000"));
  sj_buf_deinit(&r.body);
}
END_TEST

START_TEST(test_mutual_tls_optional) {
  srv_cfg_t cfg = {0};
  cfg.client_ca = path("ca.pem");
  start_server_cfg(&cfg);
  result_t r;
  do_request(trusting_client(), "/whoami", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "(none)"));
  sj_buf_deinit(&r.body);
  cli_cfg_t good = {path("ca.pem"), path("cli.pem"), path("cli.key"), NULL, NULL};
  do_request(new_client(&good), "/whoami", &r);
  ck_assert(sj_test_body_is(&r, "320000"));
  sj_buf_deinit(&r.body);
  /* A certificate that does not verify is refused even when certificates are optional. */
  cli_cfg_t rogue = {path("ca.pem"), path("rcli.pem"), path("rcli.key"), NULL, NULL};
  expect_failure(&rogue, "/whoami", 0);
}
END_TEST

/* ---- Tests: cleartext and TLS mixed up ------------------------------------------------------- */

START_TEST(test_cleartext_client_on_tls_port_fails_cleanly) {
  start_server();
  cli_cfg_t plain = {NULL, NULL, NULL, NULL, "http"};
  expect_failure(&plain, "/hello/x", 0);
  /* The server is unharmed. */
  result_t r;
  do_request(trusting_client(), "/hello/after", &r);
  ck_assert_int_eq(r.status, 200);
  sj_buf_deinit(&r.body);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.requests, 1);
}
END_TEST

START_TEST(test_tls_client_on_cleartext_port_fails_cleanly) {
  srv_cfg_t cfg = {0};
  cfg.cleartext = 1;
  start_server_cfg(&cfg);
  cli_cfg_t tls = {path("ca.pem"), NULL, NULL, NULL, NULL};
  expect_failure(&tls, "/hello/x", SJ_EPROTO);
  cli_cfg_t plain = {NULL, NULL, NULL, NULL, "http"};
  result_t r;
  do_request(new_client(&plain), "/hello/after", &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "hello after over http"));
  sj_buf_deinit(&r.body);
}
END_TEST

/* A TCP peer that never speaks TLS is cut at the handshake timeout. */
typedef struct {
  uv_tcp_t tcp;
  uv_connect_t creq;
  int connected, eof, closed;
} raw_t;

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h;
  static char buf[4096];
  (void)n;
  *b = uv_buf_init(buf, sizeof buf);
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  raw_t *r = s->data;
  if (n < 0)
    r->eof = 1;
}

static void raw_connected(uv_connect_t *c, int status) {
  raw_t *r = c->data;
  ck_assert_int_eq(status, 0);
  r->connected = 1;
  uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
}

static void raw_closed(uv_handle_t *h) {
  ((raw_t *)h->data)->closed = 1;
}

START_TEST(test_handshake_timeout) {
  srv_cfg_t cfg = {0};
  cfg.hs_timeout = 200;
  start_server_cfg(&cfg);
  raw_t r;
  memset(&r, 0, sizeof r);
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", sj_server_port(srv), &sa);
  uv_tcp_init(loop, &r.tcp);
  r.tcp.data = &r;
  r.creq.data = &r;
  ck_assert_int_eq(uv_tcp_connect(&r.creq, &r.tcp, (struct sockaddr *)&sa, raw_connected), 0);
  ck_assert(run_until(&r.connected, 1, 2000));
  sj_server_stats_t st;
  run_for(50);
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_open, 1);
  ck_assert_msg(run_until(&r.eof, 1, 3000), "the server kept a silent connection");
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_open, 0);
  uv_close((uv_handle_t *)&r.tcp, raw_closed);
  ck_assert(run_until(&r.closed, 1, 1000));
  /* A completed handshake is not cut: a client idle for longer than the timeout still works. */
  sj_client_t *c = trusting_client();
  result_t res;
  do_request(c, "/hello/a", &res);
  sj_buf_deinit(&res.body);
  run_for(500);
  do_request(c, "/hello/b", &res);
  ck_assert_int_eq(res.status, 200);
  sj_buf_deinit(&res.body);
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_accepted, 2); /* the raw one and the client's single connection */
}
END_TEST

/* ---- Tests: configuration errors ------------------------------------------------------------- */

static int server_new_with(const char *cert, const char *key, const char *ca, int require) {
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.tls_client_ca_file = ca;
  o.tls_require_client_cert = require;
  sj_server_t *s = NULL;
  int rv = sj_server_new(loop, &o, &s);
  if (rv == 0) {
    int closed = 0;
    sj_server_close(s, 0, on_closed_count, &closed);
    ck_assert(run_until(&closed, 1, 1000));
  }
  return rv;
}

static int client_new_with(const char *url, const char *ca, const char *cert, const char *key) {
  sj_client_opts_t o;
  sj_client_opts_default(&o);
  o.tls_ca_file = ca;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  sj_client_t *c = NULL;
  int rv = sj_client_new(loop, url, &o, &c);
  if (rv == 0) {
    int closed = 0;
    sj_client_close(c, on_closed_count, &closed);
    ck_assert(run_until(&closed, 1, 1000));
  }
  return rv;
}

START_TEST(test_configuration_errors) {
  ck_assert_int_eq(server_new_with(path("srv.pem"), path("srv.key"), NULL, 0), 0);
  ck_assert_int_eq(server_new_with(path("missing.pem"), path("srv.key"), NULL, 0), -ENOENT);
  ck_assert_int_eq(server_new_with(path("srv.pem"), path("missing.key"), NULL, 0), -ENOENT);
  ck_assert_int_eq(server_new_with(path("junk.pem"), path("srv.key"), NULL, 0), SJ_EFORMAT);
  ck_assert_int_eq(server_new_with(path("srv.pem"), path("junk.pem"), NULL, 0), SJ_EFORMAT);
  ck_assert_int_eq(server_new_with(path("srv.pem"), path("cli.key"), NULL, 0), SJ_EINVAL);
  ck_assert_int_eq(server_new_with(path("srv.pem"), NULL, NULL, 0), SJ_EINVAL);
  ck_assert_int_eq(server_new_with(NULL, path("srv.key"), NULL, 0), SJ_EINVAL);
  ck_assert_int_eq(server_new_with(path("srv.pem"), path("srv.key"), NULL, 1), SJ_EINVAL);
  ck_assert_int_eq(server_new_with(NULL, NULL, path("ca.pem"), 0), SJ_EINVAL);
  ck_assert_int_eq(server_new_with(path("srv.pem"), path("srv.key"), path("missing.pem"), 1),
                   -ENOENT);
  ck_assert_int_eq(server_new_with(path("srv.pem"), path("srv.key"), path("ca.pem"), 1), 0);

  ck_assert_int_eq(client_new_with("https://127.0.0.1:1", path("ca.pem"), NULL, NULL), 0);
  ck_assert_int_eq(client_new_with("https://127.0.0.1:1", NULL, NULL, NULL), 0);
  ck_assert_int_eq(client_new_with("https://127.0.0.1:1", path("missing.pem"), NULL, NULL),
                   -ENOENT);
  ck_assert_int_eq(client_new_with("https://h:1", path("ca.pem"), path("cli.pem"), NULL),
                   SJ_EINVAL);
  ck_assert_int_eq(client_new_with("https://h:1", path("ca.pem"), path("cli.pem"), path("srv.key")),
                   SJ_EINVAL);
  ck_assert_int_eq(client_new_with("http://h:1", path("ca.pem"), NULL, NULL), SJ_EINVAL);
  ck_assert_int_eq(client_new_with("ftp://h:1", NULL, NULL, NULL), SJ_EINVAL);
  ck_assert_int_eq(client_new_with("https://[::1]:443", NULL, NULL, NULL), 0);
}
END_TEST

/* ---- Tests: external clients and the synchronous helper -------------------------------------- */

START_TEST(test_curl_negotiates_h2) {
  start_server();
  unsigned port = sj_server_port(srv);
  int st;
  char *out = run_cmd(&st,
                      "curl -s --http2 --cacert %s -w ' %%{http_version}' --max-time 10 "
                      "https://127.0.0.1:%u/hello/curl 2>&1",
                      path("ca.pem"), port);
  ck_assert_msg(st == 0, "curl failed: %s", out);
  ck_assert_str_eq(out, "hello curl over https 2");
  free(out);
  /* Without our CA curl refuses the certificate (exit 60). */
  out = run_cmd(&st, "curl -s --http2 --max-time 10 https://127.0.0.1:%u/hello/x", port);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 60, "curl exit %d: %s", st, out);
  free(out);
  /* HTTP/1.1 only (ALPN without h2): the handshake is refused (curl's exit 35). */
  out = run_cmd(&st, "curl -s --http1.1 --cacert %s --max-time 10 https://127.0.0.1:%u/hello/x",
                path("ca.pem"), port);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 35, "curl exit %d: %s", st, out);
  free(out);
  /* Mutual TLS with curl's client certificate is covered in test_curl_client_cert. */
  out = run_cmd(&st, "h2load -n 2000 -c 4 -m 10 https://127.0.0.1:%u/hello/load 2>&1", port);
  ck_assert_msg(st == 0, "h2load failed: %s", out);
  ck_assert_msg(
      strstr(out, "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed") !=
          NULL,
      "got: %s", out);
  ck_assert_msg(strstr(out, "TLS Protocol: TLSv1.3") != NULL, "got: %s", out);
  ck_assert_msg(strstr(out, "Application protocol: h2") != NULL, "got: %s", out);
  free(out);
}
END_TEST

START_TEST(test_curl_client_cert) {
  srv_cfg_t cfg = {0};
  cfg.client_ca = path("ca.pem");
  cfg.require = 1;
  start_server_cfg(&cfg);
  unsigned port = sj_server_port(srv);
  int st;
  char *out = run_cmd(&st,
                      "curl -s --http2 --cacert %s --cert %s --key %s --max-time 10 "
                      "https://127.0.0.1:%u/whoami 2>&1",
                      path("ca.pem"), path("cli.pem"), path("cli.key"), port);
  ck_assert_msg(st == 0, "curl failed: %s", out);
  ck_assert_str_eq(out, "320000");
  free(out);
  out = run_cmd(&st, "curl -s --http2 --cacert %s --max-time 10 https://127.0.0.1:%u/whoami",
                path("ca.pem"), port);
  ck_assert_msg(st != 0, "curl without a certificate got: %s", out);
  free(out);
}
END_TEST

/* sj_http_fetch runs its own loop: the server runs on this one, fetch on a helper thread. */
typedef struct {
  char url[128];
  int with_ca, rv, status;
  char ca[600];
  sj_buf_t body;
} fetch_t;

static void fetch_main(void *arg) {
  fetch_t *f = arg;
  sj_client_opts_t o;
  sj_client_opts_default(&o);
  o.tls_ca_file = f->ca;
  f->rv = f->with_ca
              ? sj_http_fetch_with(&o, f->url, "GET", NULL, 0, NULL, 0, 5000, &f->status, &f->body,
                                   NULL)
              : sj_http_fetch(f->url, "GET", NULL, 0, NULL, 0, 5000, &f->status, &f->body, NULL);
}

static int fetch(const char *url, int with_ca, int *status, sj_buf_t *body) {
  fetch_t f = {.with_ca = with_ca};
  snprintf(f.url, sizeof f.url, "%s", url);
  snprintf(f.ca, sizeof f.ca, "%s", path("ca.pem"));
  sj_buf_init(&f.body);
  ck_assert(sj_test_job_finish(&tl, sj_test_job_start(&tl, fetch_main, &f), 10000));
  *status = f.status;
  sj_buf_reset(body);
  sj_buf_append(body, f.body.p, f.body.n);
  sj_buf_deinit(&f.body);
  return f.rv;
}

START_TEST(test_http_fetch_https) {
  start_server();
  char url[128];
  snprintf(url, sizeof url, "https://127.0.0.1:%u/hello/fetch", sj_server_port(srv));
  int status = 0;
  sj_buf_t body;
  sj_buf_init(&body);
  ck_assert_int_eq(fetch(url, 1, &status, &body), 0);
  ck_assert_int_eq(status, 200);
  ck_assert(body.n == 22 && memcmp(body.p, "hello fetch over https", 22) == 0);
  /* The default store does not know our CA ... */
  ck_assert_int_eq(fetch(url, 0, &status, &body), SJ_EVERIFY);
  /* ... unless SSL_CERT_FILE names it (OpenSSL's default store honours it). */
  setenv("SSL_CERT_FILE", path("ca.pem"), 1);
  int rv = fetch(url, 0, &status, &body);
  unsetenv("SSL_CERT_FILE");
  ck_assert_int_eq(rv, 0);
  ck_assert_int_eq(status, 200);
  sj_buf_deinit(&body);
}
END_TEST

/* ---- Tests: lifecycle ------------------------------------------------------------------------ */

START_TEST(test_graceful_shutdown_over_tls) {
  start_server();
  sj_client_t *c = trusting_client();
  result_t r[4];
  int count = 0;
  g_slow_started = 0;
  for (int i = 0; i < 4; i++) {
    request_on(c, "GET", "/slow", NULL, 0, &r[i]);
    r[i].counter = &count;
  }
  ck_assert(run_until(&g_slow_started, 4, 5000));
  int closed = 0;
  sj_server_close(srv, 5000, on_closed_count, &closed);
  srv = NULL;
  ck_assert(run_until(&count, 4, 5000));
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(r[i].err, 0);
    ck_assert_int_eq(r[i].status, 200);
    ck_assert(sj_test_body_is(&r[i], "slow"));
    sj_buf_deinit(&r[i].body);
  }
  ck_assert_msg(run_until(&closed, 1, 5000), "the server did not finish closing");
}
END_TEST

/* ---- Suite ----------------------------------------------------------------------------------- */

static Suite *tls_suite(void) {
  Suite *s = suite_create("tls");
  const sj_test_case_t cases[] = {
      {"client_server", test_client_server_many_streams_large_bodies},
      {"backpressure", test_streamed_reply_drains_and_queue_stays_bounded},
      {"verify_server", test_server_certificate_and_name_verified},
      {"verify_ip", test_ip_not_in_certificate_refused},
      {"mtls_required", test_mutual_tls_required},
      {"mtls_optional", test_mutual_tls_optional},
      {"cleartext_on_tls", test_cleartext_client_on_tls_port_fails_cleanly},
      {"tls_on_cleartext", test_tls_client_on_cleartext_port_fails_cleanly},
      {"handshake_timeout", test_handshake_timeout},
      {"config_errors", test_configuration_errors},
      {"curl_h2load", test_curl_negotiates_h2},
      {"curl_client_cert", test_curl_client_cert},
      {"fetch", test_http_fetch_https},
      {"shutdown", test_graceful_shutdown_over_tls},
  };
  sj_test_add_cases(s, cases, sizeof cases / sizeof *cases, setup, teardown, 60);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as every program using net must (libuv writes to sockets) */
  sj_log_set_level(getenv("SJ_TEST_LOG") ? SJ_LOG_LEVEL_INFO : SJ_LOG_LEVEL_ERR);
  const char *base = getenv("SJ_TMPDIR");
  snprintf(certs_dir, sizeof certs_dir, "%s/tls-certs-XXXXXX", base ? base : "/tmp");
  if (!mkdtemp(certs_dir) || make_certs() < 0)
    return EXIT_FAILURE;
  int rv = sj_test_run_suite(tls_suite());
  if (sj_test_rmtree(certs_dir) != 0)
    rv = EXIT_FAILURE;
  return rv;
}
