/* tests/test_net.c — the net module against itself, curl and h2load, on 127.0.0.1 port 0.
 * Every test runs a real loop and ends with uv_loop_close(loop) == 0 (no handle leaked). */
#include "net/net.h"
#include "tests/support.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- Harness --------------------------------------------------------------------------------- */

static sj_test_loop_t tl; /* the loop under test and its guard timer */
static uv_loop_t *const loop = &tl.loop;
static sj_server_t *srv;
static sj_client_t *cl;

static void setup(void) {
  sj_test_loop_init(&tl);
  srv = NULL;
  cl = NULL;
}

static void on_closed_flag(void *arg) {
  *(int *)arg = 1;
}

/* Runs the loop until *flag >= target or ms elapsed; returns whether the target was met. */
static int run_until(const int *flag, int target, uint64_t ms) {
  return sj_test_loop_run_until(&tl, flag, target, ms);
}

static void run_for(uint64_t ms) {
  sj_test_loop_run_for(&tl, ms);
}

static void on_closed_count(void *arg) {
  (*(int *)arg)++;
}

static void teardown(void) {
  int closed = 0, want = 0;
  if (cl) {
    sj_client_close(cl, on_closed_count, &closed);
    want++;
  }
  if (srv) {
    sj_server_close(srv, 0, on_closed_count, &closed);
    want++;
  }
  sj_test_loop_finish(&tl, &closed, want);
}

static void start_server(const sj_server_opts_t *o) {
  ck_assert_int_eq(sj_server_new(loop, o, &srv), 0);
}

static void listen_and_connect(void) {
  ck_assert_int_eq(sj_server_listen(srv, "127.0.0.1", 0), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", sj_server_port(srv));
  ck_assert_int_eq(sj_client_new(loop, url, NULL, &cl), 0);
}

typedef sj_test_result_t result_t; /* one client request's outcome */

static void request_on(sj_client_t *c, const char *method, const char *path, const sj_header_t *h,
                       size_t nh, const void *body, size_t n, uint64_t timeout, result_t *res) {
  sj_call_req_t r = {method, path, h, nh, body, n, timeout};
  sj_test_request(c, &r, res);
}

/* Sends one request on the shared client and waits for it. */
static void do_request(const char *method, const char *path, const sj_header_t *h, size_t nh,
                       const void *body, size_t n, result_t *res) {
  request_on(cl, method, path, h, nh, body, n, 0, res);
  ck_assert_msg(run_until(&res->done, 1, 10000), "request %s %s did not finish", method, path);
}

/* ---- Handlers -------------------------------------------------------------------------------- */

static const char *or_null(const char *s) {
  return s ? s : "(null)";
}

/* Echoes parameters, query values and a header as text. */
static void h_params(sj_req_t *req, void *arg) {
  (void)arg;
  char out[512];
  size_t hl = 0;
  const char *xt = sj_req_header(req, "x-test", &hl);
  snprintf(out, sizeof out, "region=%s seq=%s rest=%s index=%s name=%s flag=%s x-test=%s/%zu",
           or_null(sj_req_param(req, "region")), or_null(sj_req_param(req, "seq")),
           or_null(sj_req_param(req, "rest")), or_null(sj_req_query(req, "index")),
           or_null(sj_req_query(req, "name")), or_null(sj_req_query(req, "flag")), or_null(xt), hl);
  sj_header_t h[] = {{"content-type", "text/plain"}};
  ck_assert_int_eq(sj_req_respond(req, 200, h, 1, out, strlen(out)), 0);
  /* A second reply is a caller error, not a crash. */
  ck_assert_int_eq(sj_req_respond(req, 200, NULL, 0, "x", 1), SJ_EINVAL);
}

static void h_text(sj_req_t *req, void *arg) {
  const char *text = arg;
  ck_assert_int_eq(sj_req_respond(req, 200, NULL, 0, text, strlen(text)), 0);
}

static void h_echo(sj_req_t *req, void *arg) {
  (void)arg;
  size_t n;
  const uint8_t *b = sj_req_body(req, &n);
  uint8_t *copy = malloc(n ? n : 1);
  memcpy(copy, b, n);
  ck_assert_int_eq(sj_req_respond_owned(req, 200, NULL, 0, copy, n, free), 0);
}

static void h_meta(sj_req_t *req, void *arg) {
  (void)arg;
  char out[256];
  static int marker;
  sj_req_set_data(req, &marker);
  snprintf(out, sizeof out, "%s %s %s %d %d", sj_req_method(req), sj_req_path(req),
           sj_req_peer(req), (int)sj_req_stream_id(req), sj_req_data(req) == &marker);
  sj_req_respond(req, 200, NULL, 0, out, strlen(out));
}

/* ---- Routing, parameters, query -------------------------------------------------------------- */

static void add_param_routes(void) {
  ck_assert_int_eq(sj_server_route(srv, "GET", "/v1/records/{region}/{seq}", NULL, h_params, NULL),
                   0);
  ck_assert_int_eq(
      sj_server_route(srv, "GET", "/v1/logs/{region}/proof/inclusion", NULL, h_text, "inclusion"),
      0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/v1/logs/{region}/{what}", NULL, h_text, "generic"),
                   0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/static/{rest*}", NULL, h_params, NULL), 0);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/meta", NULL, h_meta, NULL), 0);
  /* Bad patterns and duplicates are refused. */
  ck_assert_int_eq(sj_server_route(srv, "GET", "/v1/records/{a}/{b}", NULL, h_params, NULL),
                   SJ_EINVAL);
  ck_assert_int_eq(sj_server_route(srv, "GET", "no-slash", NULL, h_params, NULL), SJ_EINVAL);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/a/{x*}/b", NULL, h_params, NULL), SJ_EINVAL);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/a/{}", NULL, h_params, NULL), SJ_EINVAL);
}

START_TEST(test_routes_params_and_query) {
  start_server(NULL);
  add_param_routes();
  listen_and_connect();
  result_t r;
  sj_header_t xh[] = {{"x-test", "hello"}};
  do_request("GET", "/v1/records/310000/42?index=5&name=a+b%21&flag", xh, 1, NULL, 0, &r);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(r.status, 200);
  ck_assert_str_eq(r.ctype, "text/plain");
  ck_assert_msg(sj_test_body_is(
                    &r, "region=310000 seq=42 rest=(null) index=5 name=a b! flag= x-test=hello/5"),
                "got %.*s", (int)r.body.n, r.body.p);
  sj_buf_deinit(&r.body);

  do_request("GET", "/v1/records/31%2F00/4%202+1", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_msg(sj_test_body_is(&r, "region=31/00 seq=4 2+1 rest=(null) index=(null) name=(null) "
                                    "flag=(null) x-test=(null)/0"),
                "got %.*s", (int)r.body.n, r.body.p);
  sj_buf_deinit(&r.body);

  do_request("GET", "/v1/logs/320000/proof/inclusion", NULL, 0, NULL, 0, &r);
  ck_assert(sj_test_body_is(&r, "inclusion")); /* the literal segment beats {what} */
  sj_buf_deinit(&r.body);
  do_request("GET", "/v1/logs/320000/checkpoint", NULL, 0, NULL, 0, &r);
  ck_assert(sj_test_body_is(&r, "generic"));
  sj_buf_deinit(&r.body);
  do_request("GET", "/static/css/site%20a.css", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_msg(strstr((char *)r.body.p, "rest=css/site a.css") != NULL, "got %s", r.body.p);
  sj_buf_deinit(&r.body);

  do_request("GET", "/meta", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_msg(strncmp((char *)r.body.p, "GET /meta 127.0.0.1:", 20) == 0, "got %s", r.body.p);
  ck_assert_msg(r.body.n > 2 && memcmp(r.body.p + r.body.n - 2, " 1", 2) == 0, "user pointer");
  sj_buf_deinit(&r.body);
}
END_TEST

START_TEST(test_routes_errors) {
  start_server(NULL);
  add_param_routes();
  ck_assert_int_eq(
      sj_server_route(srv, "DELETE", "/v1/records/{region}/{seq}", NULL, h_params, NULL), 0);
  listen_and_connect();
  result_t r;
  do_request("GET", "/nope", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 404);
  ck_assert_str_eq(r.ctype, "application/json");
  ck_assert(sj_test_body_is(&r, "{\"error\":\"not found\"}"));
  sj_buf_deinit(&r.body);
  do_request("GET", "/v1/records/310000", NULL, 0, NULL, 0, &r); /* too few segments */
  ck_assert_int_eq(r.status, 404);
  sj_buf_deinit(&r.body);
  do_request("GET", "/v1/records/310000/1/2", NULL, 0, NULL, 0, &r); /* too many */
  ck_assert_int_eq(r.status, 404);
  sj_buf_deinit(&r.body);
  do_request("POST", "/v1/records/310000/1", NULL, 0, "x", 1, &r);
  ck_assert_int_eq(r.status, 405);
  ck_assert_str_eq(r.allow, "GET, DELETE");
  sj_buf_deinit(&r.body);
  const char *bad[] = {"/v1/records/31%zz/1",        "/v1/records/31%0/1",
                       "/v1/records/31%00/1",        "/v1/records/310000/1?index=%G1",
                       "/v1/records/310000/1?a=%00", "/v1/records/310000/1?a=%"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    do_request("GET", bad[i], NULL, 0, NULL, 0, &r);
    ck_assert_msg(r.status == 400, "%s -> %d", bad[i], r.status);
    sj_buf_deinit(&r.body);
  }
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_accepted, 1); /* all on one connection */
  ck_assert_uint_eq(st.requests, 4 + sizeof bad / sizeof bad[0]);
}
END_TEST

/* ---- Bodies ---------------------------------------------------------------------------------- */

static uint8_t *pattern_bytes(size_t n) {
  uint8_t *p = malloc(n);
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 31 + (i >> 11));
  return p;
}

START_TEST(test_bodies_small_and_large) {
  start_server(NULL);
  sj_route_opts_t ro = {8 << 20, 0};
  ck_assert_int_eq(sj_server_route(srv, "POST", "/echo", &ro, h_echo, NULL), 0);
  listen_and_connect();
  result_t r;
  do_request("POST", "/echo", NULL, 0, "hello", 5, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "hello"));
  sj_buf_deinit(&r.body);
  do_request("POST", "/echo", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_eq(r.body.n, 0);
  sj_buf_deinit(&r.body);
  size_t n = 5 << 20;
  uint8_t *big = pattern_bytes(n);
  do_request("POST", "/echo", NULL, 0, big, n, &r);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_eq(r.body.n, n);
  ck_assert(memcmp(r.body.p, big, n) == 0);
  sj_buf_deinit(&r.body);
  free(big);
}
END_TEST

START_TEST(test_body_too_large_413) {
  start_server(NULL);
  sj_route_opts_t ro = {1024, 0};
  ck_assert_int_eq(sj_server_route(srv, "POST", "/small", &ro, h_echo, NULL), 0);
  listen_and_connect();
  result_t r;
  uint8_t *big = pattern_bytes(300000);
  do_request("POST", "/small", NULL, 0, big, 300000, &r);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(r.status, 413);
  ck_assert(sj_test_body_is(&r, "{\"error\":\"request body too large\"}"));
  sj_buf_deinit(&r.body);
  /* The connection survives (the stream was reset, not the session). */
  do_request("POST", "/small", NULL, 0, big, 1024, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert_uint_eq(r.body.n, 1024);
  sj_buf_deinit(&r.body);
  free(big);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_accepted, 1);
}
END_TEST

/* Body-streaming route: counts chunks and bytes, answers at the end. */
typedef struct {
  size_t bytes;
  int chunks, ends;
} upload_t;

static void up_chunk(sj_req_t *req, const uint8_t *p, size_t n, int end, void *arg) {
  upload_t *u = arg;
  (void)p;
  u->bytes += n;
  u->chunks += n > 0;
  if (!end)
    return;
  u->ends++;
  char out[64];
  snprintf(out, sizeof out, "%zu", u->bytes);
  sj_req_respond(req, 200, NULL, 0, out, strlen(out));
}

static void h_upload(sj_req_t *req, void *arg) {
  size_t n;
  sj_req_body(req, &n);
  ck_assert_uint_eq(n, 0); /* nothing collected for streaming routes */
  sj_req_set_body_cb(req, up_chunk, arg);
}

START_TEST(test_streamed_request_body) {
  start_server(NULL);
  upload_t u = {0};
  sj_route_opts_t ro = {64 << 20, 1};
  ck_assert_int_eq(sj_server_route(srv, "PUT", "/upload", &ro, h_upload, &u), 0);
  listen_and_connect();
  size_t n = 3 << 20;
  uint8_t *big = pattern_bytes(n);
  result_t r;
  do_request("PUT", "/upload", NULL, 0, big, n, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "3145728"));
  ck_assert_uint_eq(u.bytes, n);
  ck_assert_int_gt(u.chunks, 1);
  ck_assert_int_eq(u.ends, 1);
  sj_buf_deinit(&r.body);
  memset(&u, 0, sizeof u);
  do_request("PUT", "/upload", NULL, 0, NULL, 0, &r); /* no body: end arrives at once */
  ck_assert(sj_test_body_is(&r, "0"));
  ck_assert_int_eq(u.ends, 1);
  sj_buf_deinit(&r.body);
  free(big);
}
END_TEST

/* ---- Streamed responses ---------------------------------------------------------------------- */

typedef struct {
  uv_timer_t timer;
  sj_req_t *req;
  int sent;
  int closed_err;
  int closed;
} pusher_t;

static pusher_t g_push;

static void push_close_cb(sj_req_t *req, int err, void *arg) {
  (void)req;
  pusher_t *p = arg;
  p->closed = 1;
  p->closed_err = err;
}

static void push_tick(uv_timer_t *t) {
  pusher_t *p = t->data;
  char chunk[32];
  snprintf(chunk, sizeof chunk, "chunk%d;", p->sent);
  ck_assert_int_eq(sj_req_stream_write(p->req, chunk, strlen(chunk)), 0);
  if (++p->sent < 5)
    return;
  ck_assert_int_eq(sj_req_stream_end(p->req), 0);
  ck_assert_int_eq(sj_req_stream_write(p->req, "x", 1), SJ_EINVAL); /* after end */
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, NULL);
  sj_req_unref(p->req);
}

static void h_push(sj_req_t *req, void *arg) {
  pusher_t *p = arg;
  sj_header_t h[] = {{"content-type", "application/x-ndjson"}};
  ck_assert_int_eq(sj_req_stream_start(req, 200, h, 1), 0);
  sj_req_ref(req);
  sj_req_set_on_close(req, push_close_cb, p);
  p->req = req;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, push_tick, 10, 10);
}

typedef struct {
  int headers, status, chunks;
  sj_buf_t data;
  result_t res;
} stream_rx_t;

static int rx_headers(const sj_resp_t *resp, void *arg) {
  stream_rx_t *s = arg;
  s->headers++;
  s->status = resp->status;
  return 0;
}

static int rx_data(const uint8_t *p, size_t n, void *arg) {
  stream_rx_t *s = arg;
  s->chunks++;
  sj_buf_append(&s->data, p, n);
  return 0;
}

static void rx_done(int err, const sj_resp_t *resp, void *arg) {
  stream_rx_t *s = arg;
  sj_test_result_done(err, resp, &s->res);
}

START_TEST(test_streamed_response_from_timer) {
  start_server(NULL);
  memset(&g_push, 0, sizeof g_push);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/follow", NULL, h_push, &g_push), 0);
  listen_and_connect();
  stream_rx_t s;
  memset(&s, 0, sizeof s);
  sj_call_req_t r = {"GET", "/follow", NULL, 0, NULL, 0, 0};
  sj_call_cbs_t cbs = {rx_headers, rx_data, rx_done, &s};
  ck_assert_int_eq(sj_client_request(cl, &r, &cbs, NULL), 0);
  ck_assert(run_until(&s.res.done, 1, 5000));
  ck_assert_int_eq(s.res.err, 0);
  ck_assert_int_eq(s.headers, 1);
  ck_assert_int_eq(s.status, 200);
  ck_assert_int_ge(s.chunks, 2); /* pushed over time, not in one piece */
  ck_assert_str_eq((char *)s.data.p, "chunk0;chunk1;chunk2;chunk3;chunk4;");
  ck_assert(run_until(&g_push.closed, 1, 1000));
  ck_assert_int_eq(g_push.closed_err, 0);
  sj_buf_deinit(&s.data);
}
END_TEST

/* Drain-driven producer: writes 64 KiB whenever the stream's queue empties, 4 MiB in all. */
typedef struct {
  size_t sent;
  int drains;
} producer_t;

static void produce(sj_req_t *req, void *arg) {
  producer_t *p = arg;
  static uint8_t block[65536];
  p->drains++;
  if (p->sent >= (4u << 20)) {
    sj_req_stream_end(req);
    return;
  }
  sj_req_stream_write(req, block, sizeof block);
  p->sent += sizeof block;
  ck_assert_uint_eq(sj_req_stream_pending(req), sizeof block);
}

static void h_produce(sj_req_t *req, void *arg) {
  sj_req_stream_start(req, 200, NULL, 0);
  sj_req_set_on_drain(req, produce, arg);
  produce(req, arg);
}

START_TEST(test_streamed_response_drain_backpressure) {
  start_server(NULL);
  producer_t p = {0};
  ck_assert_int_eq(sj_server_route(srv, "GET", "/bulk", NULL, h_produce, &p), 0);
  listen_and_connect();
  stream_rx_t s;
  memset(&s, 0, sizeof s);
  sj_call_req_t r = {"GET", "/bulk", NULL, 0, NULL, 0, 0};
  sj_call_cbs_t cbs = {NULL, rx_data, rx_done, &s};
  ck_assert_int_eq(sj_client_request(cl, &r, &cbs, NULL), 0);
  ck_assert(run_until(&s.res.done, 1, 10000));
  ck_assert_int_eq(s.res.err, 0);
  ck_assert_uint_eq(s.data.n, 4u << 20);
  ck_assert_int_ge(p.drains, 64);
  sj_buf_deinit(&s.data);
}
END_TEST

/* ---- Asynchronous completion ----------------------------------------------------------------- */

typedef struct {
  uv_timer_t timer;
  sj_req_t *req;
  int rv; /* what the late reply returned */
  int replied;
  int closed, close_err;
  int timer_closed;
} later_t;

static void later_timer_closed(uv_handle_t *h) {
  ((later_t *)h->data)->timer_closed = 1;
}

static void later_close_cb(sj_req_t *req, int err, void *arg) {
  (void)req;
  later_t *l = arg;
  l->closed = 1;
  l->close_err = err;
}

static void later_fire(uv_timer_t *t) {
  later_t *l = t->data;
  l->rv = sj_req_respond(l->req, 200, NULL, 0, "later", 5);
  l->replied = 1;
  sj_req_unref(l->req);
  uv_close((uv_handle_t *)t, later_timer_closed);
}

static void h_later(sj_req_t *req, void *arg) {
  later_t *l = arg;
  sj_req_ref(req);
  l->req = req;
  sj_req_set_on_close(req, later_close_cb, l);
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, later_fire, 100, 0);
}

START_TEST(test_async_reply_from_timer_and_after_reset) {
  start_server(NULL);
  later_t l;
  memset(&l, 0, sizeof l);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/later", NULL, h_later, &l), 0);
  listen_and_connect();
  result_t r;
  do_request("GET", "/later", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "later"));
  ck_assert_int_eq(l.rv, 0);
  sj_buf_deinit(&r.body);
  ck_assert(run_until(&l.closed, 1, 1000));
  ck_assert_int_eq(l.close_err, 0);
  ck_assert(run_until(&l.timer_closed, 1, 1000)); /* before l is reused */

  /* The client gives up (resets the stream) before the handler answers. */
  memset(&l, 0, sizeof l);
  request_on(cl, "GET", "/later", NULL, 0, NULL, 0, 30, &r);
  ck_assert(run_until(&r.done, 1, 5000));
  ck_assert_int_eq(r.err, SJ_ETIMEDOUT);
  ck_assert(run_until(&l.replied, 1, 5000));
  ck_assert_int_eq(l.rv, SJ_ECLOSED); /* harmless */
  ck_assert_int_eq(l.closed, 1);
  ck_assert_int_eq(l.close_err, SJ_ECLOSED);
  ck_assert(run_until(&l.timer_closed, 1, 1000)); /* l lives on this stack frame */
  sj_buf_deinit(&r.body);
}
END_TEST

/* A worker thread finishes the work and posts back through its own uv_async. */
typedef struct {
  uv_async_t async;
  pthread_t th;
  sj_req_t *req;
  char answer[32];
} worker_t;

static void worker_closed(uv_handle_t *h) {
  free(h->data);
}

static void worker_back(uv_async_t *a) {
  worker_t *w = a->data;
  pthread_join(w->th, NULL);
  ck_assert_int_eq(sj_req_respond(w->req, 200, NULL, 0, w->answer, strlen(w->answer)), 0);
  sj_req_unref(w->req);
  uv_close((uv_handle_t *)a, worker_closed);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  snprintf(w->answer, sizeof w->answer, "from thread");
  uv_async_send(&w->async);
  return NULL;
}

static void h_thread(sj_req_t *req, void *arg) {
  (void)arg;
  worker_t *w = calloc(1, sizeof *w);
  w->req = req;
  sj_req_ref(req);
  uv_async_init(loop, &w->async, worker_back);
  w->async.data = w;
  ck_assert_int_eq(pthread_create(&w->th, NULL, worker_main, w), 0);
}

START_TEST(test_async_reply_from_thread) {
  start_server(NULL);
  ck_assert_int_eq(sj_server_route(srv, "POST", "/work", NULL, h_thread, NULL), 0);
  listen_and_connect();
  result_t r[8];
  int count = 0;
  for (int i = 0; i < 8; i++) {
    request_on(cl, "POST", "/work", NULL, 0, "job", 3, 0, &r[i]);
    r[i].counter = &count;
  }
  ck_assert(run_until(&count, 8, 5000));
  for (int i = 0; i < 8; i++) {
    ck_assert_int_eq(r[i].status, 200);
    ck_assert(sj_test_body_is(&r[i], "from thread"));
    sj_buf_deinit(&r[i].body);
  }
}
END_TEST

/* ---- Limits and timeouts --------------------------------------------------------------------- */

static sj_req_t *g_held;

static void h_never(sj_req_t *req, void *arg) {
  (void)arg;
  sj_req_ref(req);
  g_held = req;
}

START_TEST(test_request_timeout) {
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  o.request_timeout_ms = 100;
  start_server(&o);
  g_held = NULL;
  ck_assert_int_eq(sj_server_route(srv, "GET", "/slow", NULL, h_never, NULL), 0);
  listen_and_connect();
  result_t r;
  do_request("GET", "/slow", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 503);
  ck_assert(sj_test_body_is(&r, "{\"error\":\"request timeout\"}"));
  ck_assert_ptr_nonnull(g_held);
  ck_assert_int_eq(sj_req_respond(g_held, 200, NULL, 0, "late", 4), SJ_ECLOSED);
  sj_req_unref(g_held);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.requests_timed_out, 1);
  sj_buf_deinit(&r.body);
}
END_TEST

START_TEST(test_idle_timeout_closes_connection) {
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  o.idle_timeout_ms = 100;
  start_server(&o);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/", NULL, h_text, "root"), 0);
  listen_and_connect();
  result_t r;
  do_request("GET", "/", NULL, 0, NULL, 0, &r);
  ck_assert(sj_test_body_is(&r, "root"));
  sj_buf_deinit(&r.body);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_open, 1);
  run_for(400);
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_idle_closed, 1);
  ck_assert_uint_eq(st.conns_open, 0);
  /* The client reconnects on its next request. */
  do_request("GET", "/", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.status, 200);
  sj_buf_deinit(&r.body);
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_accepted, 2);
}
END_TEST

START_TEST(test_max_connections) {
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  o.max_connections = 2;
  start_server(&o);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/", NULL, h_text, "root"), 0);
  listen_and_connect();
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", sj_server_port(srv));
  sj_client_t *c2, *c3;
  ck_assert_int_eq(sj_client_new(loop, url, NULL, &c2), 0);
  ck_assert_int_eq(sj_client_new(loop, url, NULL, &c3), 0);
  result_t r1, r2, r3;
  do_request("GET", "/", NULL, 0, NULL, 0, &r1);
  request_on(c2, "GET", "/", NULL, 0, NULL, 0, 0, &r2);
  ck_assert(run_until(&r2.done, 1, 5000));
  request_on(c3, "GET", "/", NULL, 0, NULL, 0, 0, &r3);
  ck_assert(run_until(&r3.done, 1, 5000));
  ck_assert_int_eq(r1.status, 200);
  ck_assert_int_eq(r2.status, 200);
  ck_assert_int_eq(r3.err, SJ_ECLOSED);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_refused, 1);
  ck_assert_uint_eq(st.conns_open, 2);
  int d2 = 0, d3 = 0;
  sj_client_close(c2, on_closed_flag, &d2);
  sj_client_close(c3, on_closed_flag, &d3);
  ck_assert(run_until(&d2, 1, 2000));
  ck_assert(run_until(&d3, 1, 2000));
  sj_buf_deinit(&r1.body);
  sj_buf_deinit(&r2.body);
}
END_TEST

/* Answers after 30 ms and records how many requests were in the handler at once. */
typedef struct {
  int inflight, max_inflight, handled;
} conc_t;

typedef struct {
  uv_timer_t t;
  sj_req_t *req;
  conc_t *c;
} delayed_t;

static void delayed_fire(uv_timer_t *t) {
  delayed_t *d = t->data;
  d->c->inflight--;
  sj_req_respond(d->req, 200, NULL, 0, "ok", 2);
  sj_req_unref(d->req);
  uv_close((uv_handle_t *)t, worker_closed);
}

static void h_delayed(sj_req_t *req, void *arg) {
  conc_t *c = arg;
  delayed_t *d = calloc(1, sizeof *d);
  d->req = req;
  d->c = c;
  sj_req_ref(req);
  c->handled++;
  if (++c->inflight > c->max_inflight)
    c->max_inflight = c->inflight;
  uv_timer_init(loop, &d->t);
  d->t.data = d;
  uv_timer_start(&d->t, delayed_fire, 30, 0);
}

START_TEST(test_too_many_streams) {
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  o.max_concurrent_streams = 4;
  start_server(&o);
  conc_t c = {0};
  ck_assert_int_eq(sj_server_route(srv, "GET", "/d", NULL, h_delayed, &c), 0);
  listen_and_connect();
  /* 20 requests leave before the server's SETTINGS arrive: the server refuses the excess with
   * REFUSED_STREAM and the client resends them; all succeed, never more than 4 at once. */
  result_t r[20];
  int count = 0;
  for (int i = 0; i < 20; i++) {
    request_on(cl, "GET", "/d", NULL, 0, NULL, 0, 0, &r[i]);
    r[i].counter = &count;
  }
  ck_assert(run_until(&count, 20, 10000));
  for (int i = 0; i < 20; i++)
    ck_assert_msg(r[i].err == 0 && r[i].status == 200, "%d: err %d status %d", i, r[i].err,
                  r[i].status);
  ck_assert_int_le(c.max_inflight, 4);
  ck_assert_int_eq(c.handled, 20);
  for (int i = 0; i < 20; i++)
    sj_buf_deinit(&r[i].body);

  /* Without retries the refused ones are reported as SJ_EBUSY. */
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%u", sj_server_port(srv));
  sj_client_opts_t co;
  sj_client_opts_default(&co);
  co.retry_refused = 0;
  sj_client_t *c2;
  ck_assert_int_eq(sj_client_new(loop, url, &co, &c2), 0);
  count = 0;
  memset(&c, 0, sizeof c);
  for (int i = 0; i < 20; i++) {
    request_on(c2, "GET", "/d", NULL, 0, NULL, 0, 0, &r[i]);
    r[i].counter = &count;
  }
  ck_assert(run_until(&count, 20, 10000));
  int ok = 0, busy = 0;
  for (int i = 0; i < 20; i++) {
    ok += r[i].err == 0 && r[i].status == 200;
    busy += r[i].err == SJ_EBUSY;
    sj_buf_deinit(&r[i].body);
  }
  ck_assert_int_eq(ok + busy, 20);
  ck_assert_int_ge(busy, 1);
  ck_assert_int_le(c.max_inflight, 4);
  int d2 = 0;
  sj_client_close(c2, on_closed_flag, &d2);
  ck_assert(run_until(&d2, 1, 2000));
}
END_TEST

START_TEST(test_oversize_headers_rejected) {
  start_server(NULL); /* 16 KiB header list */
  ck_assert_int_eq(sj_server_route(srv, "GET", "/", NULL, h_text, "root"), 0);
  listen_and_connect();
  char *big = malloc(20000);
  memset(big, 'a', 19999);
  big[19999] = 0;
  sj_header_t h[] = {{"x-big", big}};
  result_t r;
  do_request("GET", "/", h, 1, NULL, 0, &r);
  ck_assert_int_eq(r.status, 431);
  sj_buf_deinit(&r.body);
  big[10000] = 0; /* under the limit */
  do_request("GET", "/", h, 1, NULL, 0, &r);
  ck_assert_int_eq(r.status, 200);
  sj_buf_deinit(&r.body);
  free(big);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_accepted, 1); /* a stream error, not a connection error */
}
END_TEST

/* ---- Client ---------------------------------------------------------------------------------- */

START_TEST(test_client_100_concurrent_streams) {
  start_server(NULL);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/v1/records/{region}/{seq}", NULL, h_params, NULL),
                   0);
  listen_and_connect();
  enum { N = 100 };
  result_t *r = calloc(N, sizeof *r);
  int count = 0;
  char path[64];
  for (int i = 0; i < N; i++) {
    snprintf(path, sizeof path, "/v1/records/310000/%d", i);
    request_on(cl, "GET", path, NULL, 0, NULL, 0, 0, &r[i]);
    r[i].counter = &count;
  }
  ck_assert(run_until(&count, N, 10000));
  char want[64];
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(r[i].status, 200);
    snprintf(want, sizeof want, "region=310000 seq=%d ", i);
    ck_assert(strncmp((char *)r[i].body.p, want, strlen(want)) == 0);
    sj_buf_deinit(&r[i].body);
  }
  free(r);
  sj_server_stats_t st;
  sj_server_stats(srv, &st);
  ck_assert_uint_eq(st.conns_accepted, 1);
}
END_TEST

START_TEST(test_client_reconnects_after_server_restart) {
  start_server(NULL);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/", NULL, h_text, "one"), 0);
  listen_and_connect();
  uint16_t port = sj_server_port(srv);
  result_t r;
  do_request("GET", "/", NULL, 0, NULL, 0, &r);
  ck_assert(sj_test_body_is(&r, "one"));
  sj_buf_deinit(&r.body);
  int closed = 0;
  sj_server_close(srv, 1000, on_closed_flag, &closed);
  srv = NULL;
  ck_assert(run_until(&closed, 1, 5000));
  /* Nobody listens now: the request fails with the connect error. */
  do_request("GET", "/", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.err, -ECONNREFUSED);
  start_server(NULL);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/", NULL, h_text, "two"), 0);
  ck_assert_int_eq(sj_server_listen(srv, "127.0.0.1", port), 0);
  do_request("GET", "/", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.err, 0);
  ck_assert(sj_test_body_is(&r, "two"));
  sj_buf_deinit(&r.body);
}
END_TEST

START_TEST(test_client_cancel_and_connect_errors) {
  start_server(NULL);
  later_t l;
  memset(&l, 0, sizeof l);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/later", NULL, h_later, &l), 0);
  listen_and_connect();
  result_t r;
  memset(&r, 0, sizeof r);
  sj_call_req_t rq = {"GET", "/later", NULL, 0, NULL, 0, 0};
  sj_call_cbs_t cbs = {NULL, NULL, sj_test_result_done, &r};
  sj_call_t *call;
  ck_assert_int_eq(sj_client_request(cl, &rq, &cbs, &call), 0);
  run_for(30);
  sj_call_cancel(call);
  ck_assert_int_eq(r.done, 1);
  ck_assert_int_eq(r.err, SJ_ECLOSED);
  ck_assert(run_until(&l.timer_closed, 1, 5000));
  ck_assert_int_eq(l.rv, SJ_ECLOSED);
  /* Bad arguments fail synchronously, without callback. */
  sj_call_req_t bad = {"GET", "no-slash", NULL, 0, NULL, 0, 0};
  ck_assert_int_eq(sj_client_request(cl, &bad, &cbs, NULL), SJ_EINVAL);
  sj_client_t *c2;
  ck_assert_int_eq(sj_client_new(loop, "ftp://127.0.0.1:1", NULL, &c2), SJ_EINVAL);
  ck_assert_int_eq(sj_client_new(loop, "http://", NULL, &c2), SJ_EINVAL);
  ck_assert_int_eq(sj_client_new(loop, "http://h:99999", NULL, &c2), SJ_EINVAL);
  /* Name resolution: localhost works through getaddrinfo. */
  char url[64];
  snprintf(url, sizeof url, "http://localhost:%u/ignored", sj_server_port(srv));
  ck_assert_int_eq(sj_client_new(loop, url, NULL, &c2), 0);
  memset(&l, 0, sizeof l);
  request_on(c2, "GET", "/later", NULL, 0, NULL, 0, 0, &r);
  ck_assert(run_until(&r.done, 1, 5000));
  /* localhost may resolve to ::1 first, where nobody listens: either way it is reported. */
  ck_assert(r.err == 0 ? r.status == 200 : r.err == -ECONNREFUSED);
  int d = 0;
  sj_client_close(c2, on_closed_flag, &d);
  ck_assert(run_until(&d, 1, 2000));
  sj_buf_deinit(&r.body);
  if (l.req)
    ck_assert(run_until(&l.timer_closed, 1, 2000));
}
END_TEST

/* ---- Shutdown -------------------------------------------------------------------------------- */

START_TEST(test_graceful_shutdown_finishes_in_flight) {
  start_server(NULL);
  later_t l;
  memset(&l, 0, sizeof l);
  ck_assert_int_eq(sj_server_route(srv, "GET", "/later", NULL, h_later, &l), 0);
  listen_and_connect();
  result_t r;
  request_on(cl, "GET", "/later", NULL, 0, NULL, 0, 0, &r);
  run_for(30); /* the request is in the handler */
  int closed = 0;
  sj_server_close(srv, 2000, on_closed_flag, &closed);
  srv = NULL;
  ck_assert(run_until(&r.done, 1, 5000));
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(r.status, 200); /* in flight: answered despite the shutdown */
  ck_assert(run_until(&closed, 1, 5000));
  sj_buf_deinit(&r.body);
}
END_TEST

static int g_shutdown_closed;

static void h_shutdown(sj_req_t *req, void *arg) {
  (void)arg;
  /* Closing the server from inside its own callback chain, then answering. */
  sj_server_close(srv, 1000, on_closed_flag, &g_shutdown_closed);
  srv = NULL;
  ck_assert_int_eq(sj_req_respond(req, 200, NULL, 0, "bye", 3), 0);
}

START_TEST(test_shutdown_from_handler) {
  start_server(NULL);
  g_shutdown_closed = 0;
  ck_assert_int_eq(sj_server_route(srv, "POST", "/shutdown", NULL, h_shutdown, NULL), 0);
  listen_and_connect();
  result_t r;
  do_request("POST", "/shutdown", NULL, 0, NULL, 0, &r);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(r.status, 200);
  ck_assert(sj_test_body_is(&r, "bye"));
  ck_assert(run_until(&g_shutdown_closed, 1, 5000));
  sj_buf_deinit(&r.body);
}
END_TEST

START_TEST(test_shutdown_deadline_cuts_streams) {
  start_server(NULL);
  memset(&g_push, 0, sizeof g_push);
  g_held = NULL;
  ck_assert_int_eq(sj_server_route(srv, "GET", "/never", NULL, h_never, NULL), 0);
  listen_and_connect();
  result_t r;
  request_on(cl, "GET", "/never", NULL, 0, NULL, 0, 0, &r);
  run_for(30);
  ck_assert_ptr_nonnull(g_held);
  int closed = 0;
  sj_server_close(srv, 50, on_closed_flag, &closed);
  srv = NULL;
  ck_assert(run_until(&closed, 1, 5000));
  ck_assert(run_until(&r.done, 1, 5000));
  ck_assert_int_eq(r.err, SJ_ECLOSED);
  /* The handler still holds its request: valid, but answers go nowhere. */
  ck_assert_str_eq(sj_req_path(g_held), "/never");
  ck_assert_int_eq(sj_req_respond(g_held, 200, NULL, 0, NULL, 0), SJ_ECLOSED);
  sj_req_unref(g_held);
}
END_TEST

/* ---- External clients: curl, h2load, sj_http_fetch (server on its own thread) ---------------- */

typedef struct {
  pthread_t th;
  uv_loop_t loop;
  sj_server_t *srv;
  uv_async_t stop;
  uint16_t port;
  int ready, close_rv;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} bg_t;

static void bg_h_text(sj_req_t *req, void *arg) {
  const char *text = arg;
  sj_header_t h[] = {{"content-type", "text/plain"}};
  sj_req_respond(req, 200, h, 1, text, strlen(text));
}

static void bg_stop(uv_async_t *a) {
  bg_t *b = a->data;
  sj_server_close(b->srv, 100, NULL, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void *bg_main(void *arg) {
  bg_t *b = arg;
  uv_loop_init(&b->loop);
  sj_server_new(&b->loop, NULL, &b->srv);
  sj_route_opts_t small = {1024, 0};
  sj_server_route(b->srv, "GET", "/hello/{name}", NULL, bg_h_text, "hello from sanjiao\n");
  sj_server_route(b->srv, "PUT", "/small", &small, bg_h_text, "stored\n");
  sj_server_listen(b->srv, "127.0.0.1", 0);
  uv_async_init(&b->loop, &b->stop, bg_stop);
  b->stop.data = b;
  pthread_mutex_lock(&b->mu);
  b->port = sj_server_port(b->srv);
  b->ready = 1;
  pthread_cond_signal(&b->cv);
  pthread_mutex_unlock(&b->mu);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  b->close_rv = uv_loop_close(&b->loop);
  return NULL;
}

static void bg_start(bg_t *b) {
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  ck_assert_int_eq(pthread_create(&b->th, NULL, bg_main, b), 0);
  pthread_mutex_lock(&b->mu);
  while (!b->ready)
    pthread_cond_wait(&b->cv, &b->mu);
  pthread_mutex_unlock(&b->mu);
  ck_assert_uint_gt(b->port, 0);
}

static void bg_stop_join(bg_t *b) {
  uv_async_send(&b->stop);
  pthread_join(b->th, NULL);
  ck_assert_int_eq(b->close_rv, 0);
  pthread_mutex_destroy(&b->mu);
  pthread_cond_destroy(&b->cv);
}

START_TEST(test_curl_prior_knowledge) {
  bg_t b;
  bg_start(&b);
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd,
           "curl -s -i --http2-prior-knowledge --max-time 10 http://127.0.0.1:%u/hello/world 2>&1",
           b.port);
  char *out = sj_test_popen(cmd, &st);
  ck_assert_msg(st == 0, "curl failed: %s", out);
  ck_assert_msg(strncmp(out, "HTTP/2 200", 10) == 0, "got: %s", out);
  ck_assert_msg(strstr(out, "content-type: text/plain") != NULL, "got: %s", out);
  ck_assert_msg(strstr(out, "content-length: 19") != NULL, "got: %s", out);
  ck_assert_msg(strstr(out, "\r\n\r\nhello from sanjiao\n") != NULL, "got: %s", out);
  free(out);
  snprintf(cmd, sizeof cmd,
           "curl -s -o /dev/null -w '%%{http_code}' --http2-prior-knowledge --max-time 10 "
           "http://127.0.0.1:%u/nothing-here 2>&1",
           b.port);
  out = sj_test_popen(cmd, &st);
  ck_assert_str_eq(out, "404");
  free(out);
  /* Uploads over the route's limit: announced (content-length) and counted (from a pipe). */
  const char *src[] = {"-T /dev/stdin -H 'content-length: 200000'", "-T -"};
  for (int i = 0; i < 2; i++) {
    snprintf(cmd, sizeof cmd,
             "head -c 200000 /dev/zero | curl -s -w ' %%{http_code}' --http2-prior-knowledge "
             "--max-time 10 %s http://127.0.0.1:%u/small 2>&1",
             src[i], b.port);
    out = sj_test_popen(cmd, &st);
    ck_assert_msg(strcmp(out, "{\"error\":\"request body too large\"} 413") == 0, "got: %s", out);
    free(out);
  }
  bg_stop_join(&b);
}
END_TEST

START_TEST(test_h2load_no_failures) {
  bg_t b;
  bg_start(&b);
  char cmd[512];
  int st;
  snprintf(cmd, sizeof cmd, "h2load -n 2000 -c 4 -m 10 http://127.0.0.1:%u/hello/load 2>&1",
           b.port);
  char *out = sj_test_popen(cmd, &st);
  ck_assert_msg(st == 0, "h2load failed: %s", out);
  ck_assert_msg(
      strstr(out, "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed") !=
          NULL,
      "got: %s", out);
  ck_assert_msg(strstr(out, "status codes: 2000 2xx") != NULL, "got: %s", out);
  free(out);
  bg_stop_join(&b);
}
END_TEST

START_TEST(test_http_fetch_sync) {
  bg_t b;
  bg_start(&b);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%u/hello/fetch?x=1", b.port);
  int status = 0;
  sj_buf_t body, ct;
  sj_buf_init(&body);
  sj_buf_init(&ct);
  ck_assert_int_eq(sj_http_fetch(url, "GET", NULL, 0, NULL, 0, 5000, &status, &body, &ct), 0);
  ck_assert_int_eq(status, 200);
  ck_assert_str_eq((char *)body.p, "hello from sanjiao\n");
  ck_assert_str_eq((char *)ct.p, "text/plain");
  snprintf(url, sizeof url, "http://127.0.0.1:%u?x=1#frag", b.port); /* target "/?x=1" */
  ck_assert_int_eq(sj_http_fetch(url, "GET", NULL, 0, NULL, 0, 5000, &status, &body, NULL), 0);
  ck_assert_int_eq(status, 404);
  snprintf(url, sizeof url, "http://127.0.0.1:%u/missing", b.port);
  ck_assert_int_eq(sj_http_fetch(url, "GET", NULL, 0, NULL, 0, 5000, &status, &body, NULL), 0);
  ck_assert_int_eq(status, 404);
  ck_assert_int_eq(
      sj_http_fetch("http://127.0.0.1:1/", "GET", NULL, 0, NULL, 0, 2000, &status, &body, NULL),
      -ECONNREFUSED);
  ck_assert_int_eq(sj_http_fetch("ftp://x/", "GET", NULL, 0, NULL, 0, 0, &status, &body, NULL),
                   SJ_EINVAL);
  sj_buf_deinit(&body);
  sj_buf_deinit(&ct);
  bg_stop_join(&b);
}
END_TEST

/* ---- Suite ----------------------------------------------------------------------------------- */

static Suite *net_suite(void) {
  Suite *s = suite_create("net");
  const sj_test_case_t cases[] = {
      {"routes", test_routes_params_and_query},
      {"route_errors", test_routes_errors},
      {"bodies", test_bodies_small_and_large},
      {"body_413", test_body_too_large_413},
      {"body_stream", test_streamed_request_body},
      {"stream_reply", test_streamed_response_from_timer},
      {"stream_drain", test_streamed_response_drain_backpressure},
      {"async_timer", test_async_reply_from_timer_and_after_reset},
      {"async_thread", test_async_reply_from_thread},
      {"request_timeout", test_request_timeout},
      {"idle_timeout", test_idle_timeout_closes_connection},
      {"max_connections", test_max_connections},
      {"max_streams", test_too_many_streams},
      {"header_limit", test_oversize_headers_rejected},
      {"client_concurrency", test_client_100_concurrent_streams},
      {"client_reconnect", test_client_reconnects_after_server_restart},
      {"client_cancel", test_client_cancel_and_connect_errors},
      {"shutdown_graceful", test_graceful_shutdown_finishes_in_flight},
      {"shutdown_deadline", test_shutdown_deadline_cuts_streams},
      {"shutdown_from_handler", test_shutdown_from_handler},
      {"curl", test_curl_prior_knowledge},
      {"h2load", test_h2load_no_failures},
      {"fetch", test_http_fetch_sync},
  };
  sj_test_add_cases(s, cases, sizeof cases / sizeof *cases, setup, teardown, 60);
  return s;
}

int main(void) {
  sj_log_set_level(SJ_LOG_LEVEL_WARN);
  return sj_test_run_suite(net_suite());
}
