/* node/api_admin.c — operations: POST /v1/admin/backup (role authority) takes an online backup of
 * the store (a RocksDB checkpoint) into the configured backup directory, on libuv's thread pool
 * so the loop keeps serving. Restore is starting a node on the backup (docs/OPERATIONS.md). */
#include "node/node_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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
  if (rv) {
    sj_req_unref(req);
    free(b);
    api_problem(n, req, R_ADMIN, 503, "Service Unavailable", uv_strerror(rv), NULL);
  }
}

void api_register_admin(sj_node_t *n) {
  sj_server_route(n->server, "POST", "/v1/admin/backup", NULL, post_backup, n);
}
