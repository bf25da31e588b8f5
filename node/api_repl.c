/* node/api_repl.c — the replication endpoints a region serves besides its log: cosignatures sent
 * by the other regions (witnessing), the status of every region this node holds, and alerts
 * (equivocation evidence and recent verification failures). */
#include "node/node_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COSIGS 32

/* Counts signature lines after the first (the origin's own signature). */
static size_t count_cosigs(const sj_buf_t *note, size_t sigs_off) {
  size_t lines = 0;
  for (size_t i = sigs_off; i < note->n; i++)
    lines += note->p[i] == '\n';
  return lines ? lines - 1 : 0;
}

/* Rebuilds note with line added, replacing an older line by the same signer (same name). */
static int add_line(const sj_buf_t *note, size_t sigs_off, const char *line, size_t len,
                    sj_buf_t *out) {
  const char *name = line + 4; /* "— " is four bytes */
  const char *sp = memchr(name, ' ', len - 4);
  if (!sp)
    return SJ_EFORMAT;
  size_t nl = (size_t)(sp - name) + 1; /* name and its following space */
  int rv = sj_buf_append(out, note->p, sigs_off);
  for (size_t i = sigs_off; rv == 0 && i < note->n;) {
    const uint8_t *e = memchr(note->p + i, '\n', note->n - i);
    size_t l = e ? (size_t)(e - (note->p + i)) + 1 : note->n - i;
    int same = l > 4 + nl && !memcmp(note->p + i + 4, name, nl);
    if (!same)
      rv = sj_buf_append(out, note->p + i, l);
    i += l;
  }
  if (rv == 0)
    rv = sj_buf_append(out, line, len);
  if (rv == 0 && line[len - 1] != '\n')
    rv = sj_buf_append_u8(out, '\n');
  return rv;
}

static void remember_cosigned(sj_node_t *n, uint64_t size, size_t k) {
  char key[32], val[24];
  for (size_t j = 1; j <= k && j <= MAX_COSIGS; j++) {
    if (n->cosigned[j] >= size)
      continue;
    n->cosigned[j] = size;
    snprintf(key, sizeof key, "cosigned/%zu", j);
    snprintf(val, sizeof val, "%llu", (unsigned long long)size);
    sj_store_meta_put(n->store, key, val, strlen(val));
  }
}

/* POST /v1/logs/{region}/cosignatures?size=N (role peer): one cosignature/v1 line by the peer's
 * key over our checkpoint of size N. */
static void post_cosignature(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us(), size;
  uint32_t region, peer;
  caller_t c;
  if (api_caller(n, req, R_COSIGNATURES, &c) || api_region_param(n, req, R_COSIGNATURES, &region))
    return;
  if (c.role != SJ_ROLE_PEER || sj_region_parse(c.tok->arg, strlen(c.tok->arg), &peer)) {
    api_problem(n, req, R_COSIGNATURES, c.role ? 403 : 401, "Forbidden",
                "cosignatures come from peer regions (role peer)", NULL);
    return;
  }
  if (region != n->cfg.region) {
    api_problem(n, req, R_COSIGNATURES, 404, "Not Found",
                "cosignatures go to the origin of the log", NULL);
    return;
  }
  if (parse_u64(sj_req_query(req, "size"), &size)) {
    api_bad_param(n, req, R_COSIGNATURES, "size", "PARAM_INVALID", "size must be an integer");
    return;
  }
  size_t len = 0, tl, so;
  const uint8_t *line = sj_req_body(req, &len);
  sj_buf_t note = {0}, out = {0};
  int rv = sj_store_checkpoint_get(n->store, region, size, &note);
  if (rv == 0)
    rv = sj_note_split((char *)note.p, note.n, &tl, &so);
  if (rv == 0 && (len < 6 || len > 512))
    rv = SJ_EFORMAT;
  if (rv == 0)
    rv = repl_cosig_verify(n, peer, (char *)note.p, tl, (const char *)line, len);
  if (rv == 0)
    rv = add_line(&note, so, (const char *)line, len, &out);
  if (rv == 0)
    rv = sj_store_checkpoint_put(n->store, region, size, (char *)out.p, out.n);
  if (rv) {
    int status = rv == SJ_ENOTFOUND ? 404 : rv == SJ_ESTORE ? 500 : 400;
    api_problem(n, req, R_COSIGNATURES, status, "Cosignature refused", sj_strerror(rv), NULL);
  } else {
    remember_cosigned(n, size, count_cosigs(&out, so));
    sj_buf_t b = {0};
    sj_buf_printf(&b, "{\"size\":%llu,\"cosignatures\":%zu}", (unsigned long long)size,
                  count_cosigs(&out, so));
    api_reply(n, req, R_COSIGNATURES, 200, "application/json", &b, t0);
  }
  sj_buf_deinit(&note);
  sj_buf_deinit(&out);
}

static void get_status(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  sj_buf_t b = {0};
  repl_status_json(n, &b);
  api_reply(n, req, R_STATUS, 200, "application/json", &b, api_now_us());
}

static void get_alerts(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  sj_buf_t b = {0};
  repl_alerts_json(n, &b);
  api_reply(n, req, R_ALERTS, 200, "application/json", &b, api_now_us());
}

/* Loads the cosigned sizes remembered across restarts. */
static void load_cosigned(sj_node_t *n) {
  char key[32];
  sj_buf_t v = {0};
  for (size_t j = 1; j <= MAX_COSIGS; j++) {
    snprintf(key, sizeof key, "cosigned/%zu", j);
    if (sj_store_meta_get(n->store, key, &v) == 0)
      n->cosigned[j] = strtoull((char *)v.p, NULL, 10);
  }
  sj_buf_deinit(&v);
}

int api_cosigned_size(sj_node_t *n, uint64_t k, uint64_t *size) {
  if (k == 0 || k > MAX_COSIGS || n->cosigned[k] == 0)
    return SJ_ENOTFOUND;
  *size = n->cosigned[k];
  return 0;
}

void api_register_repl(sj_node_t *n) {
  load_cosigned(n);
  sj_route_opts_t ro = {.max_body = 4096, .stream_body = 0};
  sj_server_route(n->server, "POST", "/v1/logs/{region}/cosignatures", &ro, post_cosignature, n);
  sj_server_route(n->server, "GET", "/v1/status", NULL, get_status, n);
  sj_server_route(n->server, "GET", "/v1/alerts", NULL, get_alerts, n);
}
