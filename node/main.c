/* node/main.c — `sanjiao-node`: reads the configuration, runs a region node on one libuv loop
 * until SIGINT/SIGTERM, reloads tokens on SIGHUP. */
#include "common/common.h"
#include "node/node.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

typedef struct {
  uv_signal_t sigint, sigterm, sighup;
  sj_node_t *node;
} main_t;

static void on_closed_all(void *arg) {
  main_t *m = arg;
  uv_close((uv_handle_t *)&m->sigint, NULL);
  uv_close((uv_handle_t *)&m->sigterm, NULL);
  uv_close((uv_handle_t *)&m->sighup, NULL);
}

static void on_stop(uv_signal_t *s, int signum) {
  main_t *m = s->data;
  SJ_LOG_INFO("node", "signal %d: stopping", signum);
  if (m->node)
    sj_node_close(m->node, on_closed_all, m);
  m->node = NULL;
}

static void on_hup(uv_signal_t *s, int signum) {
  main_t *m = s->data;
  (void)signum;
  if (m->node && sj_node_reload(m->node))
    SJ_LOG_WARN("node", "SIGHUP: tokens not reloaded; the old ones stay in force");
}

static void set_logging(const sj_config_t *c) {
  static const char *levels[] = {"err", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (!strcmp(c->log_level, levels[i]))
      sj_log_set_level((sj_log_level_t)i);
  if (c->debug[0])
    sj_log_set_debug(c->debug);
}

int main(int argc, char **argv) {
  sj_config_t cfg;
  char err[600] = "";
  sj_config_default(&cfg);
  int rv = sj_config_from_args(&cfg, argc, argv, err, sizeof err);
  if (rv == 1) {
    fputs(sj_config_usage, stdout);
    return 0;
  }
  if (rv || sj_config_check(&cfg, err, sizeof err)) {
    fprintf(stderr, "sanjiao-node: %s\n%s", err, sj_config_usage);
    return 2;
  }
  set_logging(&cfg);
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t *loop = uv_default_loop();
  main_t m = {0};
  rv = sj_node_open(loop, &cfg, &m.node);
  if (rv) {
    fprintf(stderr, "sanjiao-node: cannot start: %s\n", sj_strerror(rv));
    uv_run(loop, UV_RUN_DEFAULT); /* let closing handles finish */
    return 1;
  }
  uv_signal_init(loop, &m.sigint);
  uv_signal_init(loop, &m.sigterm);
  uv_signal_init(loop, &m.sighup);
  m.sigint.data = m.sigterm.data = m.sighup.data = &m;
  uv_signal_start(&m.sigint, on_stop, SIGINT);
  uv_signal_start(&m.sigterm, on_stop, SIGTERM);
  uv_signal_start(&m.sighup, on_hup, SIGHUP);
  uv_run(loop, UV_RUN_DEFAULT);
  rv = uv_loop_close(loop);
  SJ_LOG_INFO("node", "stopped%s", rv ? " (handles left open)" : "");
  return 0;
}
