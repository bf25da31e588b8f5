/* fuzz_h2server — the HTTP/2 server end to end (net/conn.c, session.c, h2_server.c, req.c): a
 * real sj_server on a loop in this thread, fed each input over a fresh TCP connection on
 * 127.0.0.1 after the client connection preface, then half-closed. The routes cover collected
 * and streamed request bodies, parameters and query strings, a reply larger than the flow
 * control window and a reply from a later loop iteration.
 *
 * Properties: no crash, leak or undefined behaviour in our code (nghttp2 is not instrumented,
 * our callbacks are); the server closes every connection once its peer has gone (no connection
 * or stream is left behind: conns_open and streams_open return to 0); the server never stalls. */
#include "net/net.h"
#include "tests/fuzz/fuzz.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static uv_loop_t loop;
static sj_server_t *srv;
static uint16_t port;
static uv_timer_t later; /* /later replies from here */
static sj_req_t *pending;

static void h_hello(sj_req_t *req, void *arg) {
  (void)arg;
  sj_req_respond(req, 200, NULL, 0, "hi\n", 3);
}

/* Echoes the parameters, a query value and the body length. */
static void h_echo(sj_req_t *req, void *arg) {
  (void)arg;
  size_t n;
  sj_req_body(req, &n);
  const char *a = sj_req_param(req, "a"), *b = sj_req_param(req, "b"), *q = sj_req_query(req, "q");
  sj_buf_t out = {0};
  sj_buf_printf(&out, "%s|%s|%s|%zu", a ? a : "-", b ? b : "-", q ? q : "-", n);
  sj_req_respond(req, 200, NULL, 0, out.p, out.n);
  sj_buf_deinit(&out);
}

static void on_chunk(sj_req_t *req, const uint8_t *p, size_t n, int end, void *arg) {
  (void)p;
  (void)n;
  (void)arg;
  if (end)
    sj_req_respond(req, 204, NULL, 0, NULL, 0);
}

static void h_stream(sj_req_t *req, void *arg) {
  (void)arg;
  sj_req_set_body_cb(req, on_chunk, NULL);
}

static void h_big(sj_req_t *req, void *arg) {
  (void)arg;
  static uint8_t big[200000];
  sj_header_t h = {"content-type", "application/octet-stream"};
  sj_req_respond(req, 200, &h, 1, big, sizeof big);
}

static void on_later(uv_timer_t *t) {
  (void)t;
  if (!pending)
    return;
  sj_req_respond(pending, 200, NULL, 0, "later\n", 6); /* SJ_ECLOSED if gone: harmless */
  sj_req_unref(pending);
  pending = NULL;
}

static void h_later(sj_req_t *req, void *arg) {
  (void)arg;
  if (pending) {
    sj_req_respond(req, 503, NULL, 0, NULL, 0);
    return;
  }
  sj_req_ref(req);
  pending = req;
  uv_timer_start(&later, on_later, 0, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN); /* as every program using net must (libuv writes to sockets) */
  FUZZ_CHECK(uv_loop_init(&loop) == 0);
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  o.max_concurrent_streams = 16;
  o.max_header_list_size = 4096;
  o.max_body = 8192;
  o.max_write_queue = 65536;
  o.idle_timeout_ms = 0; /* timeouts are the sweep timer's business, not this harness's */
  o.request_timeout_ms = 0;
  FUZZ_CHECK(sj_server_new(&loop, &o, &srv) == 0);
  sj_route_opts_t stream = {4096, 1};
  FUZZ_CHECK(sj_server_route(srv, "GET", "/hello", NULL, h_hello, NULL) == 0);
  FUZZ_CHECK(sj_server_route(srv, "POST", "/echo", NULL, h_echo, NULL) == 0);
  FUZZ_CHECK(sj_server_route(srv, "GET", "/p/{a}/{b*}", NULL, h_echo, NULL) == 0);
  FUZZ_CHECK(sj_server_route(srv, "POST", "/stream", &stream, h_stream, NULL) == 0);
  FUZZ_CHECK(sj_server_route(srv, "GET", "/big", NULL, h_big, NULL) == 0);
  FUZZ_CHECK(sj_server_route(srv, "GET", "/later", NULL, h_later, NULL) == 0);
  FUZZ_CHECK(sj_server_listen(srv, "127.0.0.1", 0) == 0);
  port = sj_server_port(srv);
  uv_timer_init(&loop, &later);
  sj_log_set_level(SJ_LOG_LEVEL_ERR); /* every input ends in a logged close otherwise */
  return 0;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until the server has no connection left; 0 if it never got there. Bounded in
 * wall time, not iterations, so that a loaded machine does not look like a stalled server: our
 * side is cut after 1 s if the server has not closed it, and the server must be done by 3 s. */
static int settle(int fd) {
  sj_server_stats_t st;
  uint8_t buf[65536];
  uint64_t t0 = now_ms();
  for (;;) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (fd >= 0) {
      ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT); /* keep the server's output moving */
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
        close(fd);
        fd = -1;
      }
    }
    sj_server_stats(srv, &st);
    if (fd < 0 && st.conns_open == 0 && st.streams_open == 0 && !pending)
      return 1;
    uint64_t el = now_ms() - t0;
    if (el > 1000 && fd >= 0) { /* the server kept it open after our half-close: cut it */
      fprintf(stderr, "the server did not close a half-closed connection in 1 s\n");
      close(fd);
      fd = -1;
    }
    if (el > 3000)
      return 0;
  }
}

/* libFuzzer's timeout alarm (SIGALRM) interrupts blocking calls: a connect that returns EINTR
 * goes on in the background (wait for it), a send is resumed. */
static int connect_retry(int fd, const struct sockaddr_in *sa) {
  if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
    return 0;
  if (errno != EINTR)
    return -errno;
  struct pollfd pf = {fd, POLLOUT, 0};
  while (poll(&pf, 1, 5000) < 0 && errno == EINTR)
    ;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return -err;
}

static int send_all(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    b += k;
    n -= (size_t)k;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 60000) /* must fit the socket buffers: nothing reads before we half-close */
    return 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  FUZZ_CHECK(fd >= 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* Close with RST (linger 0), not FIN: a FIN-closed client port waits in TIME_WAIT for 60 s,
   * and hundreds of executions a second would run out of ephemeral ports. */
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  int rv = connect_retry(fd, &sa);
  if (rv != 0)
    fprintf(stderr, "connect: %s\n", strerror(-rv));
  FUZZ_CHECK(rv == 0);
  FUZZ_CHECK(send_all(fd, PREFACE, sizeof PREFACE - 1) == 0);
  FUZZ_CHECK(send_all(fd, data, size) == 0);
  shutdown(fd, SHUT_WR);
  if (!settle(fd)) {
    sj_server_stats_t st;
    sj_server_stats(srv, &st);
    fprintf(stderr, "server kept %llu connections, %llu streams\n",
            (unsigned long long)st.conns_open, (unsigned long long)st.streams_open);
    FUZZ_CHECK(0);
  }
  return 0;
}
