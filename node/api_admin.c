/* node/api_admin.c — operations, role authority, each on libuv's thread pool so the loop keeps
 * serving: POST /v1/admin/backup takes an online backup of the store (a RocksDB checkpoint) into
 * the configured backup directory (restore is starting a node on it); POST /v1/admin/compact
 * starts compacting the index families after a bulk load, GET /v1/admin/compact tells how it
 * goes (docs/OPERATIONS.md). */
#include "node/node_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* A store job ended (its reply written); the node may have been waiting for it to close. */
static void store_job_done(sj_node_t *n) {
  if (--n->store_jobs == 0 && n->close_deferred)
    node_close_finish(n);
}

typedef struct {
  uv_work_t work;
  sj_node_t *n;
  sj_req_t *req;
  char dir[1024];
  uint64_t size; /* own log size when the backup started */
  int rv;
  uint64_t t0;
} backup_t;

static void do_backup(uv_work_t *w) {
  backup_t *b = w->data;
  b->rv = sj_store_backup(b->n->store, b->dir);
}

static void after_backup(uv_work_t *w, int status) {
  backup_t *b = w->data;
  sj_node_t *n = b->n;
  if (status || b->rv) {
    SJ_LOG_ERR("admin", "backup to %s failed: %s (%s)", b->dir,
               sj_strerror(status ? status : b->rv), sj_store_last_error());
    api_problem(n, b->req, R_ADMIN, b->rv == SJ_ENOSPACE ? 507 : 500, "Backup failed",
                sj_strerror(status ? status : b->rv), NULL);
  } else {
    sj_buf_t out = {0};
    SJ_LOG_INFO("admin", "backup written to %s (own log size %llu)", b->dir,
                (unsigned long long)b->size);
    sj_buf_append_str(&out, "{\"backup\":");
    json_str(&out, b->dir, strlen(b->dir));
    sj_buf_printf(&out, ",\"region\":\"%s\",\"tree_size_at_start\":%llu}", n->region_str,
                  (unsigned long long)b->size);
    api_reply(n, b->req, R_ADMIN, 201, "application/json", &out, b->t0);
  }
  sj_req_unref(b->req);
  free(b);
  store_job_done(n);
}

/* 0 when the caller holds an authority token; otherwise answers 401/403 and returns -1. */
static int require_authority(sj_node_t *n, sj_req_t *req, const char *what) {
  caller_t who;
  if (api_caller(n, req, R_ADMIN, &who))
    return -1;
  if (who.role != SJ_ROLE_AUTHORITY) {
    api_problem(n, req, R_ADMIN, who.role ? 403 : 401, "Forbidden", what, NULL);
    return -1;
  }
  return 0;
}

static void post_backup(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  if (require_authority(n, req, "backups need an authority token"))
    return;
  backup_t *b = calloc(1, sizeof *b);
  if (!b) {
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", "out of memory", NULL);
    return;
  }
  char stamp[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  mkdir(n->cfg.backup_dir, 0700);
  snprintf(b->dir, sizeof b->dir, "%s/%s-%s-%llu", n->cfg.backup_dir, n->region_str, stamp,
           (unsigned long long)(uv_hrtime() % 1000000));
  b->n = n;
  b->req = req;
  b->t0 = api_now_us();
  b->work.data = b;
  sj_store_head(n->store, n->cfg.region, &b->size, NULL, NULL);
  sj_req_ref(req);
  int rv = uv_queue_work(n->loop, &b->work, do_backup, after_backup);
  if (rv) {
    sj_req_unref(req);
    free(b);
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", uv_strerror(rv), NULL);
    return;
  }
  n->store_jobs++;
}

/* Compaction runs longer than a request may (30 s at 10^7 entries is common): POST starts it and
 * answers 202; GET reports whether one runs and how the last one ended. One at a time per node
 * (n->compaction, loop thread only: after_compact copies the job's result in). */
typedef struct {
  uv_work_t work;
  sj_node_t *n;
  uint64_t upper_before, upper_after, t0;
  int rv;
} compact_t;

static void do_compact(uv_work_t *w) {
  compact_t *c = w->data;
  c->rv = sj_store_compact_index(c->n->store, &c->upper_before, &c->upper_after);
}

static void after_compact(uv_work_t *w, int status) {
  compact_t *c = w->data;
  sj_node_t *n = c->n;
  n->compaction.running = 0;
  n->compaction.runs++;
  n->compaction.rv = status ? status : c->rv;
  n->compaction.upper_before = c->upper_before;
  n->compaction.upper_after = c->upper_after;
  n->compaction.ms = (api_now_us() - c->t0) / 1000;
  n->compaction.finished_ms = (uint64_t)time(NULL) * 1000;
  if (n->compaction.rv)
    SJ_LOG_ERR("admin", "index compaction failed: %s", sj_strerror(n->compaction.rv));
  else
    SJ_LOG_INFO("admin",
                "index compacted in %llu ms: table files above the last level %llu -> %llu",
                (unsigned long long)n->compaction.ms, (unsigned long long)c->upper_before,
                (unsigned long long)c->upper_after);
  free(c);
  store_job_done(n);
}


static void compaction_json(sj_node_t *n, sj_buf_t *out) {
  sj_buf_printf(out, "{\"region\":\"%s\",\"families\":[\"subjects\",\"trace\"],\"running\":%s",
                n->region_str, n->compaction.running ? "true" : "false");
  if (n->compaction.running)
    sj_buf_printf(out, ",\"started_ms\":%llu", (unsigned long long)n->compaction.started_ms);
  sj_buf_printf(out, ",\"runs\":%llu", (unsigned long long)n->compaction.runs);
  if (n->compaction.runs)
    sj_buf_printf(
        out,
        ",\"last\":{\"ok\":%s,\"upper_files_before\":%llu,\"upper_files_after\":%llu,"
        "\"ms\":%llu,\"finished_ms\":%llu}",
        n->compaction.rv ? "false" : "true", (unsigned long long)n->compaction.upper_before,
        (unsigned long long)n->compaction.upper_after, (unsigned long long)n->compaction.ms,
        (unsigned long long)n->compaction.finished_ms);
  sj_buf_append_str(out, "}");
}

static void get_compact(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  if (require_authority(n, req, "compaction needs an authority token"))
    return;
  sj_buf_t out = {0};
  compaction_json(n, &out);
  api_reply(n, req, R_ADMIN, 200, "application/json", &out, api_now_us());
}

static void post_compact(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  if (require_authority(n, req, "compaction needs an authority token"))
    return;
  sj_buf_t out = {0};
  if (n->compaction.running) { /* the one running does what a second would */
    compaction_json(n, &out);
    api_reply(n, req, R_ADMIN, 202, "application/json", &out, api_now_us());
    return;
  }
  compact_t *c = calloc(1, sizeof *c);
  if (!c) {
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", "out of memory", NULL);
    return;
  }
  c->n = n;
  c->t0 = api_now_us();
  c->work.data = c;
  int rv = uv_queue_work(n->loop, &c->work, do_compact, after_compact);
  if (rv) {
    free(c);
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", uv_strerror(rv), NULL);
    return;
  }
  n->store_jobs++;
  n->compaction.running = 1;
  n->compaction.started_ms = (uint64_t)time(NULL) * 1000;
  compaction_json(n, &out);
  api_reply(n, req, R_ADMIN, 202, "application/json", &out, api_now_us());
}

/* The block cache warm-up (cfg.block_cache_warm): a node whose block cache is sized to what its
 * reads touch would otherwise read and decompress each block from the table files at its first
 * use, long after the start (docs/CONFIG.md). Lookups are served meanwhile. */
typedef struct {
  uv_work_t work;
  sj_node_t *n;
  sj_store_warm_stats_t st;
  uint64_t t0;
  int rv;
} warm_t;

static void do_warm(uv_work_t *w) {
  warm_t *c = w->data;
  c->rv = sj_store_warm_cache(c->n->store, c->n->cfg.block_cache_warm, &c->n->warm.stop, &c->st);
}

static void after_warm(uv_work_t *w, int status) {
  warm_t *c = w->data;
  sj_node_t *n = c->n;
  size_t usage = 0, cap = 0;
  n->warm.running = 0;
  n->warm.ms = (api_now_us() - c->t0) / 1000;
  sj_store_block_cache_usage(n->store, &usage, &cap);
  if (status || c->rv) {
    SJ_LOG_ERR("node", "block cache warm-up failed: %s (%s)", sj_strerror(status ? status : c->rv),
               sj_store_last_error());
  } else {
    n->warm.bytes = c->st.bytes_read;
    SJ_LOG_INFO("node", "block cache warmed in %llu ms: %llu MB read, cache %zu of %zu MB%s",
                (unsigned long long)n->warm.ms, (unsigned long long)(c->st.bytes_read >> 20),
                usage >> 20, cap >> 20,
                c->st.stopped      ? " (stopped)"
                : c->st.cache_full ? " (full before every family was read)"
                                   : "");
  }
  free(c);
  store_job_done(n);
}

int api_warm_start(sj_node_t *n) {
  if (n->cfg.block_cache_warm == 0)
    return 0;
  warm_t *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->n = n;
  c->t0 = api_now_us();
  c->work.data = c;
  int rv = uv_queue_work(n->loop, &c->work, do_warm, after_warm);
  if (rv) {
    free(c);
    return rv;
  }
  n->store_jobs++;
  n->warm.running = 1;
  return 0;
}

void api_register_admin(sj_node_t *n) {
  sj_server_route(n->server, "POST", "/v1/admin/backup", NULL, post_backup, n);
  sj_server_route(n->server, "POST", "/v1/admin/compact", NULL, post_compact, n);
  sj_server_route(n->server, "GET", "/v1/admin/compact", NULL, get_compact, n);
}
