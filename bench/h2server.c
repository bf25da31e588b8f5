/* bench/h2server.c — sjbench-h2server: the net module's HTTP/2 server answering every GET with
 * the same N-byte body, to compare against nghttpd (bench/h2-vs-nghttpd).
 *
 *   sjbench-h2server --listen HOST:PORT [--body-size N] [--max-streams N]
 *                    [--cert CHAIN.pem --key KEY.pem]
 *
 * With --cert and --key it serves HTTP/2 over TLS 1.3 (ALPN h2) instead of cleartext h2, for
 * the TLS cost in docs/TLS.md.
 *
 * The body is built once and handed to each reply without copying (sj_req_respond_owned with no
 * free function). SIGINT/SIGTERM shut the server down gracefully. */
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *g_body;
static size_t g_body_len = 300;
static sj_server_t *g_srv;
static uv_signal_t g_sigint, g_sigterm;

static void on_get(sj_req_t *req, void *arg) {
  (void)arg;
  static const sj_header_t h[] = {{"content-type", "application/octet-stream"}};
  sj_req_respond_owned(req, 200, h, 1, g_body, g_body_len, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  uv_close((uv_handle_t *)&g_sigint, NULL);
  uv_close((uv_handle_t *)&g_sigterm, NULL);
  sj_server_close(g_srv, 1000, NULL, NULL);
}

static int usage(void) {
  fprintf(stderr, "usage: sjbench-h2server --listen HOST:PORT [--body-size N] [--max-streams N] "
                  "[--cert CHAIN.pem --key KEY.pem]\n");
  return 2;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into host (copied into h) and port. */
static int split_hostport(const char *s, char *h, size_t cap, uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s)
    return -1;
  const char *hs = s, *he = colon;
  if (*hs == '[' && he[-1] == ']') {
    hs++;
    he--;
  }
  size_t n = (size_t)(he - hs);
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (!n || n >= cap || *end || p < 0 || p > 65535)
    return -1;
  memcpy(h, hs, n);
  h[n] = 0;
  *port = (uint16_t)p;
  return 0;
}

int main(int argc, char **argv) {
  char host[128] = "";
  uint16_t port = 0;
  sj_server_opts_t o;
  sj_server_opts_default(&o);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      if (split_hostport(argv[++i], host, sizeof host, &port) < 0)
        return usage();
    } else if (strcmp(argv[i], "--body-size") == 0 && i + 1 < argc) {
      g_body_len = strtoull(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--max-streams") == 0 && i + 1 < argc) {
      o.max_concurrent_streams = (uint32_t)strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
      o.tls_cert_file = argv[++i];
    } else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
      o.tls_key_file = argv[++i];
    } else {
      return usage();
    }
  }
  if (!host[0])
    return usage();
  g_body = malloc(g_body_len ? g_body_len : 1);
  for (size_t i = 0; i < g_body_len; i++)
    g_body[i] = (uint8_t)('a' + i % 26);
  uv_loop_t *loop = uv_default_loop();
  int rv = sj_server_new(loop, &o, &g_srv);
  if (rv == 0)
    rv = sj_server_route(g_srv, "GET", "/{path*}", NULL, on_get, NULL);
  if (rv == 0)
    rv = sj_server_listen(g_srv, host, port);
  if (rv < 0) {
    fprintf(stderr, "sjbench-h2server: %s\n", sj_strerror(rv));
    return 1;
  }
  uv_signal_init(loop, &g_sigint);
  uv_signal_init(loop, &g_sigterm);
  uv_signal_start(&g_sigint, on_signal, SIGINT);
  uv_signal_start(&g_sigterm, on_signal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  rv = uv_loop_close(loop);
  free(g_body);
  return rv == 0 ? 0 : 1;
}
