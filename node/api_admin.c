/* node/api_admin.c — operations, role authority, each on libuv's thread pool so the loop keeps
 * serving: POST /v1/admin/backup takes an online backup of the store (a RocksDB checkpoint) into
 * the configured backup directory (restore is starting a node on it); POST /v1/admin/compact
 * compacts the index families after a bulk load (docs/OPERATIONS.md). */
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

static void post_backup(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  caller_t c;
  if (api_caller(n, req, R_ADMIN, &c))
    return;
  if (c.role != SJ_ROLE_AUTHORITY) {
    api_problem(n, req, R_ADMIN, c.role ? 403 : 401, "Forbidden", "backups need an authority token",
                NULL);
    return;
  }
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
  if (rv == 0)
    n->store_jobs++;
  if (rv) {
    sj_req_unref(req);
    free(b);
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", uv_strerror(rv), NULL);
  }
}

typedef struct {
  uv_work_t work;
  sj_node_t *n;
  sj_req_t *req;
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
  if (status || c->rv) {
    api_problem(n, c->req, R_ADMIN, 500, "Compaction failed", sj_strerror(status ? status : c->rv),
                NULL);
  } else {
    sj_buf_t out = {0};
    uint64_t ms = (api_now_us() - c->t0) / 1000;
    SJ_LOG_INFO("admin",
                "index compacted in %llu ms: table files above the last level %llu -> %llu",
                (unsigned long long)ms, (unsigned long long)c->upper_before,
                (unsigned long long)c->upper_after);
    sj_buf_printf(&out,
                  "{\"region\":\"%s\",\"families\":[\"subjects\",\"trace\"],"
                  "\"upper_files_before\":%llu,\"upper_files_after\":%llu,\"ms\":%llu}",
                  n->region_str, (unsigned long long)c->upper_before,
                  (unsigned long long)c->upper_after, (unsigned long long)ms);
    api_reply(n, c->req, R_ADMIN, 200, "application/json", &out, c->t0);
  }
  sj_req_unref(c->req);
  free(c);
  store_job_done(n);
}

static void post_compact(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  caller_t who;
  if (api_caller(n, req, R_ADMIN, &who))
    return;
  if (who.role != SJ_ROLE_AUTHORITY) {
    api_problem(n, req, R_ADMIN, who.role ? 403 : 401, "Forbidden",
                "compaction needs an authority token", NULL);
    return;
  }
  compact_t *c = calloc(1, sizeof *c);
  if (!c) {
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", "out of memory", NULL);
    return;
  }
  c->n = n;
  c->req = req;
  c->t0 = api_now_us();
  c->work.data = c;
  sj_req_ref(req);
  int rv = uv_queue_work(n->loop, &c->work, do_compact, after_compact);
  if (rv == 0)
    n->store_jobs++;
  if (rv) {
    sj_req_unref(req);
    free(c);
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", uv_strerror(rv), NULL);
  }
}

void api_register_admin(sj_node_t *n) {
  sj_server_route(n->server, "POST", "/v1/admin/backup", NULL, post_backup, n);
  sj_server_route(n->server, "POST", "/v1/admin/compact", NULL, post_compact, n);
}
