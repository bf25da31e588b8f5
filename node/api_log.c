/* node/api_log.c — the transparency-log endpoints (checkpoint, proofs, raw entries, keys) and the
 * operational ones (healthz, metrics, openapi.json). */
#include "node/node_int.h"

#include <stdlib.h>
#include <string.h>

#define ENTRIES_LIMIT_DEFAULT 1000
#define ENTRIES_LIMIT_MAX 10000

extern const unsigned char sj_openapi_json[];
extern const size_t sj_openapi_json_len;

/* A region this node holds; answers 404 otherwise. */
static int held_region(sj_node_t *n, sj_req_t *req, int route, uint32_t *region, uint64_t *size) {
  if (api_region_param(n, req, route, region))
    return -1;
  sj_store_head(n->store, *region, size, NULL, NULL);
  if (*size == 0) {
    api_problem(n, req, route, 404, "Not Found", "this node holds no entries of that region", NULL);
    return -1;
  }
  return 0;
}

static void get_checkpoint(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us(), size;
  uint32_t region;
  if (held_region(n, req, R_CHECKPOINT, &region, &size))
    return;
  sj_buf_t note = {0};
  uint64_t k = 0;
  const char *cos = sj_req_query(req, "cosigned");
  if (cos && parse_u64(cos, &k)) {
    api_bad_param(n, req, R_CHECKPOINT, "cosigned", "PARAM_INVALID", "cosigned must be an integer");
    return;
  }
  int rv = k == 0 ? sj_store_checkpoint_latest(n->store, region, &size, &note)
           : region != n->cfg.region || api_cosigned_size(n, k, &size) ? SJ_ENOTFOUND
                                                                     : sj_store_checkpoint_get(n->store, region, size, &note);
  if (rv)
    api_problem(n, req, R_CHECKPOINT, rv == SJ_ENOTFOUND ? 404 : 500, "No checkpoint",
                sj_strerror(rv), NULL);
  else
    api_reply(n, req, R_CHECKPOINT, 200, "text/plain; charset=utf-8", &note, t0);
  sj_buf_deinit(&note);
}

static void path_json(sj_buf_t *b, uint8_t path[][SJ_HASH_LEN], size_t len) {
  sj_buf_append_u8(b, '[');
  for (size_t i = 0; i < len; i++) {
    if (i)
      sj_buf_append_u8(b, ',');
    json_b64(b, path[i], SJ_HASH_LEN);
  }
  sj_buf_append_u8(b, ']');
}

/* Reads a required integer query parameter; answers 400 when absent or invalid. */
static int query_u64(sj_node_t *n, sj_req_t *req, int route, const char *name, uint64_t *out) {
  if (parse_u64(sj_req_query(req, name), out) == 0)
    return 0;
  char msg[96];
  snprintf(msg, sizeof msg, "query parameter '%s' must be a non-negative decimal integer", name);
  api_bad_param(n, req, route, name, "PARAM_INVALID", msg);
  return -1;
}

static void get_inclusion(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us(), size, index, tsize;
  uint32_t region;
  if (held_region(n, req, R_INCLUSION, &region, &size) ||
      query_u64(n, req, R_INCLUSION, "index", &index) ||
      query_u64(n, req, R_INCLUSION, "size", &tsize))
    return;
  if (tsize == 0 || tsize > size || index >= tsize) {
    api_bad_param(n, req, R_INCLUSION, "size", "PROOF_RANGE",
                  "need index < size <= the log's current size");
    return;
  }
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  size_t len = 0;
  int rv = sj_store_prove_inclusion(n->store, region, index, tsize, path, &len);
  if (rv) {
    api_problem(n, req, R_INCLUSION, 500, "Proof failed", sj_strerror(rv), NULL);
    return;
  }
  sj_buf_t b = {0};
  sj_buf_printf(&b, "{\"leaf_index\":%llu,\"tree_size\":%llu,\"audit_path\":",
                (unsigned long long)index, (unsigned long long)tsize);
  path_json(&b, path, len);
  sj_buf_append_u8(&b, '}');
  api_reply(n, req, R_INCLUSION, 200, "application/json", &b, t0);
}

static void get_consistency(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us(), size, first, second;
  uint32_t region;
  if (held_region(n, req, R_CONSISTENCY, &region, &size) ||
      query_u64(n, req, R_CONSISTENCY, "first", &first) ||
      query_u64(n, req, R_CONSISTENCY, "second", &second))
    return;
  if (first == 0 || first > second || second > size) {
    api_bad_param(n, req, R_CONSISTENCY, "second", "PROOF_RANGE",
                  "need 0 < first <= second <= the log's current size");
    return;
  }
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  size_t len = 0;
  int rv = sj_store_prove_consistency(n->store, region, first, second, path, &len);
  if (rv) {
    api_problem(n, req, R_CONSISTENCY, 500, "Proof failed", sj_strerror(rv), NULL);
    return;
  }
  sj_buf_t b = {0};
  sj_buf_printf(&b, "{\"first\":%llu,\"second\":%llu,\"consistency\":", (unsigned long long)first,
                (unsigned long long)second);
  path_json(&b, path, len);
  sj_buf_append_u8(&b, '}');
  api_reply(n, req, R_CONSISTENCY, 200, "application/json", &b, t0);
}

/* sj_store_get_entries callback of get_entries: one frame per entry. */
typedef struct {
  sj_node_t *n;
  const caller_t *c;
  sj_buf_t *out;
} frames_ctx_t;

static int append_frame(void *ctx, size_t i, const sj_store_entry_t *e) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  frames_ctx_t *F = ctx;
  sj_entry_header_t h;
  (void)i;
  if (!e->found)
    return SJ_ESTORE; /* below the committed size: must be there */
  int rv = sj_entry_decode(e->header, e->hn, &h, keys, SJ_ENTRY_MAX_KEYS);
  if (rv)
    return rv;
  int show = e->has_body && api_body_visible(F->n, F->c, &h, e->body, e->bn);
  return sj_frame_append(F->out, e->header, e->hn, e->body, show ? e->bn : 0, show);
}

/* Raw entries as frames (docs/FORMAT.md); bodies the caller may not see are withheld. The
 * entries are read with batched MultiGets (sj_store_get_entries): a catch-up chunk of 10,000
 * entries took ~145 ms of the serving loop with one point read each (session 7). */
static void get_entries(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us(), size, start, limit = ENTRIES_LIMIT_DEFAULT;
  uint32_t region;
  caller_t c;
  const char *follow = sj_req_query(req, "follow");
  if (api_caller(n, req, R_ENTRIES, &c))
    return;
  if (follow && !strcmp(follow, "1")) { /* a region not held yet is fine: entries come later */
    if (api_region_param(n, req, R_ENTRIES, &region) ||
        query_u64(n, req, R_ENTRIES, "start", &start))
      return;
    int rv = api_follow_start(n, req, &c, region, start);
    if (rv)
      api_problem(n, req, R_ENTRIES, 500, "Follow failed", sj_strerror(rv), NULL);
    return;
  }
  if (held_region(n, req, R_ENTRIES, &region, &size) ||
      query_u64(n, req, R_ENTRIES, "start", &start))
    return;
  if (sj_req_query(req, "limit") &&
      (query_u64(n, req, R_ENTRIES, "limit", &limit) || limit == 0 || limit > ENTRIES_LIMIT_MAX)) {
    if (limit == 0 || limit > ENTRIES_LIMIT_MAX)
      api_bad_param(n, req, R_ENTRIES, "limit", "LIMIT_INVALID", "limit must be 1..10000");
    return;
  }
  sj_buf_t out = {0};
  size_t cnt = start < size ? (size - start < limit ? (size_t)(size - start) : (size_t)limit) : 0;
  sj_entry_ref_t *refs = cnt ? malloc(cnt * sizeof *refs) : NULL;
  int rv = cnt && !refs ? -ENOMEM : 0;
  for (size_t i = 0; refs && i < cnt; i++)
    refs[i] = (sj_entry_ref_t){region, start + i};
  frames_ctx_t F = {n, &c, &out};
  if (rv == 0 && cnt)
    rv = sj_store_get_entries(n->store, refs, cnt, SJ_GET_ENTRY, append_frame, &F);
  free(refs);
  if (rv)
    api_problem(n, req, R_ENTRIES, 500, "Storage error", sj_strerror(rv), NULL);
  else
    api_reply(n, req, R_ENTRIES, 200, "application/octet-stream", &out, t0);
  sj_buf_deinit(&out);
}

/* GET /v1/logs/{region}/key-rotation: the region's rotation note (own or relayed), text/plain. */
static void get_rotation(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint32_t region;
  sj_buf_t note = {0};
  if (api_region_param(n, req, R_CHECKPOINT, &region))
    return;
  if (repl_rotation_note(n, region, &note))
    api_problem(n, req, R_CHECKPOINT, 404, "Not Found", "no key rotation announced", NULL);
  else
    api_reply(n, req, R_CHECKPOINT, 200, "text/plain; charset=utf-8", &note, api_now_us());
  sj_buf_deinit(&note);
}

static void get_keys(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t t0 = api_now_us();
  sj_buf_t b = {0};
  sj_buf_printf(&b, "{\"keys\":[{\"region\":\"%s\",\"origin\":", n->region_str);
  json_str(&b, sj_signer_name(n->signer), strlen(sj_signer_name(n->signer)));
  sj_buf_append_str(&b, ",\"vkey\":");
  json_str(&b, (const char *)n->vkey.p, n->vkey.n);
  if (n->next_signer) {
    sj_buf_t vk = {0};
    sj_signer_vkey(n->next_signer, SJ_KEY_ED25519, &vk);
    sj_buf_append_str(&b, ",\"next_vkey\":");
    json_str(&b, (const char *)vk.p, vk.n);
    sj_buf_deinit(&vk);
  }
  sj_buf_append_u8(&b, '}');
  for (size_t i = 0; i < n->cfg.npeers; i++) {
    const sj_peer_conf_t *p = &n->cfg.peers[i];
    sj_buf_printf(&b, ",{\"region\":\"%06u\",\"origin\":", p->region);
    json_str(&b, p->origin, strlen(p->origin));
    sj_buf_append_str(&b, ",\"vkey\":");
    json_str(&b, p->vkey, strlen(p->vkey));
    sj_buf_append_u8(&b, '}');
  }
  sj_buf_append_str(&b, "]}");
  api_reply(n, req, R_KEYS, 200, "application/json", &b, t0);
}

static void get_healthz(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  uint64_t size;
  sj_store_head(n->store, n->cfg.region, &size, NULL, NULL);
  sj_buf_t b = {0};
  sj_buf_printf(&b, "{\"status\":\"ok\",\"region\":\"%s\",\"tree_size\":%llu}", n->region_str,
                (unsigned long long)size);
  api_reply(n, req, R_HEALTHZ, 200, "application/json", &b, 0);
}

static void writer_metrics(sj_node_t *n, sj_buf_t *b) {
  const sj_writer_stats_t *w = sj_writer_stats(n->writer);
  static const char *le[] = {"1", "9", "99", "999", "9999", "99999", "999999", "+Inf"};
  sj_buf_printf(b,
                "# TYPE sanjiao_appends_total counter\nsanjiao_appends_total %llu\n"
                "# TYPE sanjiao_group_commits_total counter\nsanjiao_group_commits_total %llu\n"
                "# TYPE sanjiao_group_commit_failures_total counter\n"
                "sanjiao_group_commit_failures_total %llu\n"
                "# TYPE sanjiao_commit_seconds_total counter\nsanjiao_commit_seconds_total %.6f\n"
                "# TYPE sanjiao_group_size histogram\n",
                (unsigned long long)w->records, (unsigned long long)w->commits,
                (unsigned long long)w->failures, (double)w->commit_ns / 1e9);
  uint64_t cum = 0;
  for (int i = 0; i < 8; i++) {
    cum += w->group_hist[i];
    sj_buf_printf(b, "sanjiao_group_size_bucket{le=\"%s\"} %llu\n", le[i], (unsigned long long)cum);
  }
  sj_buf_printf(b, "sanjiao_group_size_count %llu\n", (unsigned long long)cum);
}

static void get_metrics(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  sj_buf_t b = {0};
  uint32_t regions[64];
  size_t nr = 0;
  sj_metrics_render(n->metrics, &b);
  writer_metrics(n, &b);
  repl_metrics(n, &b);
  sj_buf_append_str(&b, "# TYPE sanjiao_log_size gauge\n");
  sj_store_regions(n->store, regions, 64, &nr);
  for (size_t i = 0; i < nr && i < 64; i++) {
    uint64_t size;
    sj_store_head(n->store, regions[i], &size, NULL, NULL);
    sj_buf_printf(&b, "sanjiao_log_size{region=\"%06u\"} %llu\n", regions[i],
                  (unsigned long long)size);
  }
  sj_cache_stats_t cs;
  sj_cache_stats(n->cache, &cs);
  sj_buf_printf(&b,
                "# TYPE sanjiao_cache_hits_total counter\nsanjiao_cache_hits_total %llu\n"
                "# TYPE sanjiao_cache_misses_total counter\nsanjiao_cache_misses_total %llu\n"
                "# TYPE sanjiao_cache_invalidations_total counter\n"
                "sanjiao_cache_invalidations_total %llu\n"
                "# TYPE sanjiao_cache_evictions_total counter\n"
                "sanjiao_cache_evictions_total %llu\n"
                "# TYPE sanjiao_cache_entries gauge\nsanjiao_cache_entries %llu\n"
                "# TYPE sanjiao_cache_bytes gauge\nsanjiao_cache_bytes %llu\n",
                (unsigned long long)cs.hits, (unsigned long long)cs.misses,
                (unsigned long long)cs.invalidations, (unsigned long long)cs.evictions,
                (unsigned long long)cs.entries, (unsigned long long)cs.bytes);
  uint64_t fh, ff, fe;
  api_folds_stats(n->folds, &fh, &ff, &fe);
  sj_buf_printf(&b,
                "# TYPE sanjiao_fold_cache_hits_total counter\nsanjiao_fold_cache_hits_total %llu\n"
                "# TYPE sanjiao_folds_total counter\nsanjiao_folds_total %llu\n"
                "# TYPE sanjiao_fold_cache_entries gauge\nsanjiao_fold_cache_entries %llu\n",
                (unsigned long long)fh, (unsigned long long)ff, (unsigned long long)fe);
  size_t bc_usage = 0, bc_cap = 0;
  sj_store_block_cache_usage(n->store, &bc_usage, &bc_cap);
  sj_buf_printf(&b,
                "# TYPE sanjiao_block_cache_bytes gauge\nsanjiao_block_cache_bytes %zu\n"
                "# TYPE sanjiao_block_cache_capacity_bytes gauge\n"
                "sanjiao_block_cache_capacity_bytes %zu\n"
                "# TYPE sanjiao_block_cache_warming gauge\nsanjiao_block_cache_warming %d\n",
                bc_usage, bc_cap, n->warm.running);
  sj_server_stats_t st;
  sj_server_stats(n->server, &st);
  sj_buf_printf(&b, "# TYPE sanjiao_connections_open gauge\nsanjiao_connections_open %llu\n"
                    "# TYPE sanjiao_posts_inflight gauge\nsanjiao_posts_inflight %llu\n",
                (unsigned long long)st.conns_open, (unsigned long long)n->posts_inflight);
  api_reply(n, req, R_METRICS, 200, "text/plain; version=0.0.4", &b, 0);
}

static void get_openapi(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  sj_header_t h[1] = {{"content-type", "application/json"}};
  sj_req_respond_owned(req, 200, h, 1, (void *)sj_openapi_json, sj_openapi_json_len, NULL);
  sj_metrics_request(n->metrics, n->route_ids[R_OPENAPI], 200, 0);
}

void api_register_log(sj_node_t *n) {
  sj_server_t *s = n->server;
  sj_server_route(s, "GET", "/v1/logs/{region}/checkpoint", NULL, get_checkpoint, n);
  sj_server_route(s, "GET", "/v1/logs/{region}/proof/inclusion", NULL, get_inclusion, n);
  sj_server_route(s, "GET", "/v1/logs/{region}/proof/consistency", NULL, get_consistency, n);
  sj_server_route(s, "GET", "/v1/logs/{region}/entries", NULL, get_entries, n);
  sj_server_route(s, "GET", "/v1/keys", NULL, get_keys, n);
  sj_server_route(s, "GET", "/v1/logs/{region}/key-rotation", NULL, get_rotation, n);
  sj_server_route(s, "GET", "/healthz", NULL, get_healthz, n);
  sj_server_route(s, "GET", "/metrics", NULL, get_metrics, n);
  sj_server_route(s, "GET", "/openapi.json", NULL, get_openapi, n);
}
