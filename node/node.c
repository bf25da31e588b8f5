/* node/node.c — a region node's lifecycle: open the store, load the key, the personal-identifier
 * HMAC key and the tokens, start the writer thread and the HTTP/2 API; close it all gracefully. */
#include "node/node_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *route_labels[R_COUNT] = {
    "POST /v1/records", "GET /v1/records", "GET /v1/subjects", "GET /v1/trace",
    "GET checkpoint",   "GET inclusion",   "GET consistency",  "GET entries",
    "GET /v1/keys",     "GET /healthz",    "GET /metrics",     "GET /openapi.json",
    "GET report",       "GET audit",       "GET journey",      "POST epcis capture",
    "GET epcis events", "GET /v1/status",  "GET /v1/alerts",   "POST cosignatures",
    "POST admin",       "GET web"};

/* Reads a small secret file; refuses one that group or others may read. */
static int read_secret(const char *path, char *out, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return -errno;
  struct stat st;
  int rv = fstat(fd, &st) ? -errno : (st.st_mode & 077) ? SJ_EPERM : 0;
  ssize_t got = rv ? 0 : read(fd, out, cap - 1);
  close(fd);
  if (rv)
    return rv;
  if (got < 0)
    return -EIO;
  out[got] = 0;
  return 0;
}

static int load_signer(const char *path, sj_signer_t **out) {
  char *text = sodium_malloc(4096);
  if (!text)
    return -ENOMEM;
  int rv = read_secret(path, text, 4096);
  if (rv == SJ_EPERM)
    SJ_LOG_ERR("node", "key file %s is readable by group or others: chmod 600 it", path);
  else if (rv)
    SJ_LOG_ERR("node", "cannot read key file %s: %s", path, sj_strerror(rv));
  if (rv == 0 && (rv = sj_signer_parse(text, strlen(text), out)) != 0)
    SJ_LOG_ERR("node", "key file %s is not a C2SP private key: %s", path, sj_strerror(rv));
  sodium_free(text);
  return rv == SJ_EPERM ? SJ_EPERM : rv ? SJ_EINVAL : 0;
}

/* The region's key and, during a rotation, the next one (same origin name). */
static int load_key(sj_node_t *n) {
  int rv = load_signer(n->cfg.key_file, &n->signer);
  if (rv == 0)
    rv = sj_signer_vkey(n->signer, SJ_KEY_ED25519, &n->vkey);
  if (rv == 0 && n->cfg.next_key_file[0]) {
    rv = load_signer(n->cfg.next_key_file, &n->next_signer);
    if (rv == 0 && strcmp(sj_signer_name(n->signer), sj_signer_name(n->next_signer))) {
      SJ_LOG_ERR("node", "next-key %s is for origin %s, not %s", n->cfg.next_key_file,
                 sj_signer_name(n->next_signer), sj_signer_name(n->signer));
      rv = SJ_EINVAL;
    }
  }
  return rv;
}

/* Announces the next key: a note naming it, signed by the current key and the next one, kept in
 * meta so that it is still served after the rotation completes. */
static int announce_rotation(sj_node_t *n) {
  sj_buf_t vk = {0}, text = {0}, note = {0};
  char key[32];
  const sj_signer_t *both[2] = {n->signer, n->next_signer};
  int rv = sj_signer_vkey(n->next_signer, SJ_KEY_ED25519, &vk);
  if (rv == 0)
    rv = sj_buf_printf(&text, "sanjiao key-rotation/v1\n%s\n%s\n", sj_signer_name(n->signer),
                       (char *)vk.p);
  if (rv == 0)
    rv = sj_note_sign((char *)text.p, text.n, both, 2, &note);
  snprintf(key, sizeof key, "rotation/%06u", n->cfg.region);
  if (rv == 0)
    rv = sj_store_meta_put(n->store, key, note.p, note.n);
  if (rv == 0)
    SJ_LOG_INFO("node", "key rotation announced: checkpoints are signed by %s as well",
                (char *)vk.p);
  sj_buf_deinit(&vk);
  sj_buf_deinit(&text);
  sj_buf_deinit(&note);
  return rv;
}

/* The regions share one HMAC key for personal identifiers (ARCHITECTURE §2). Without a configured
 * one, a node makes its own in the data directory: fine alone, but person lookups then do not
 * match across regions. */
static int load_hmac_key(sj_node_t *n) {
  char path[600], hex[160];
  const char *p = n->cfg.hmac_key_file;
  if (!p[0]) {
    snprintf(path, sizeof path, "%s/hmac.key", n->cfg.data_dir);
    p = path;
    if (access(p, F_OK) != 0) {
      uint8_t k[32];
      randombytes_buf(k, sizeof k);
      sj_hex_encode(k, sizeof k, hex);
      int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
      if (fd < 0 || write(fd, hex, 64) != 64 || fsync(fd)) {
        if (fd >= 0)
          close(fd);
        SJ_LOG_ERR("node", "cannot create %s: %s", p, strerror(errno));
        return SJ_EINVAL;
      }
      close(fd);
      SJ_LOG_WARN("node", "no hmac-key configured: created %s; person lookups will not match "
                          "other regions' unless they share it", p);
    }
  }
  int rv = read_secret(p, hex, sizeof hex);
  if (rv == 0) {
    hex[strcspn(hex, " \r\n\t")] = 0;
    rv = sj_hex_decode(hex, strlen(hex), n->hmac_key, sizeof n->hmac_key);
  }
  if (rv)
    SJ_LOG_ERR("node", "hmac key %s: %s (need 64 hex digits, mode 0600)", p, sj_strerror(rv));
  sodium_memzero(hex, sizeof hex);
  return rv ? SJ_EINVAL : 0;
}

static int load_tokens(const char *path, sj_tokens_t **out) {
  if (!path[0])
    return sj_tokens_empty(out);
  int line = 0, rv = sj_tokens_load(path, out, &line);
  if (rv == SJ_EFORMAT)
    SJ_LOG_ERR("node", "tokens file %s:%d: expected '<role> <sha256-hex> [arg] [label]'", path,
               line);
  else if (rv)
    SJ_LOG_ERR("node", "cannot read tokens file %s: %s", path, sj_strerror(rv));
  return rv ? SJ_EINVAL : 0;
}

static int parse_listen(const char *s, char *host, size_t cap, uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s)
    return SJ_EINVAL;
  size_t hl = (size_t)(colon - s);
  if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']')
    s++, hl -= 2;
  uint64_t p;
  if (hl >= cap || parse_u64(colon + 1, &p) || p > 65535)
    return SJ_EINVAL;
  memcpy(host, s, hl);
  host[hl] = 0;
  *port = (uint16_t)p;
  return 0;
}

static void register_routes(sj_node_t *n) {
  api_register_write(n);
  api_register_read(n);
  api_register_log(n);
  api_register_credit(n);
  api_register_trace(n);
  api_register_repl(n);
  api_register_admin(n);
  api_register_web(n);
}

static int listen_on(sj_node_t *n, sj_server_t *s, const char *addr) {
  char host[128];
  uint16_t port;
  if (parse_listen(addr, host, sizeof host, &port)) {
    SJ_LOG_ERR("node", "listen address '%s' is not HOST:PORT", addr);
    return SJ_EINVAL;
  }
  int rv = sj_server_listen(s, host, port);
  if (rv)
    SJ_LOG_ERR("node", "cannot listen on %s: %s", addr, sj_strerror(rv));
  (void)n;
  return rv;
}

/* The HTTPS listener: the same routes on a second server (a server has one transport). */
static int start_tls(sj_node_t *n, const sj_server_opts_t *base) {
  sj_server_opts_t so = *base;
  so.tls_cert_file = n->cfg.tls_cert;
  so.tls_key_file = n->cfg.tls_key;
  so.tls_client_ca_file = n->cfg.tls_ca[0] ? n->cfg.tls_ca : NULL;
  so.tls_require_client_cert = n->cfg.tls_require_client_cert;
  int rv = sj_server_new(n->loop, &so, &n->tls_server);
  if (rv) {
    SJ_LOG_ERR("node", "TLS certificate %s / key %s: %s", n->cfg.tls_cert, n->cfg.tls_key,
               sj_strerror(rv));
    return rv;
  }
  if (n->public_limit)
    sj_server_set_gate(n->tls_server, tokens_public_gate, n);
  sj_server_t *primary = n->server;
  n->server = n->tls_server;
  register_routes(n);
  n->server = primary;
  return listen_on(n, n->tls_server, n->cfg.tls_listen);
}

/* A peer region may identify itself by its client certificate (CN = region code) instead of a
 * token; it then has the same rights as a peer token for that region. */
static void init_mtls_peers(sj_node_t *n) {
  for (size_t i = 0; i < n->cfg.npeers; i++) {
    sj_token_t *t = &n->mtls_peers[i];
    t->role = SJ_ROLE_PEER;
    snprintf(t->arg, sizeof t->arg, "%06u", n->cfg.peers[i].region);
    snprintf(t->label, sizeof t->label, "mtls-%06u", n->cfg.peers[i].region);
  }
}

static int start_api(sj_node_t *n) {
  init_mtls_peers(n);
  sj_server_opts_t so;
  sj_server_opts_default(&so);
  so.max_connections = (uint32_t)n->cfg.max_conns;
  so.max_conns_per_addr = (uint32_t)n->cfg.max_conns_per_addr;
  so.max_body = n->cfg.max_body;
  int rv = sj_server_new(n->loop, &so, &n->server);
  if (rv)
    return rv;
  if (n->cfg.public_rate && (rv = sj_addr_limiter_new((double)n->cfg.public_rate,
                                                      &n->public_limit)) != 0)
    return rv;
  if (n->public_limit)
    sj_server_set_gate(n->server, tokens_public_gate, n);
  for (int i = 0; i < R_COUNT; i++)
    n->route_ids[i] = sj_metrics_route(n->metrics, route_labels[i]);
  register_routes(n);
  rv = listen_on(n, n->server, n->cfg.listen);
  if (rv == 0 && n->cfg.tls_listen[0])
    rv = start_tls(n, &so);
  return rv;
}

static int open_store(sj_node_t *n) {
  sj_store_opts_t so;
  sj_store_opts_default(&so);
  so.block_cache_mb = n->cfg.block_cache_mb;
  so.mmap_reads = n->cfg.mmap_reads;
  so.annotate = sj_credit_annotate; /* per-entry disclosure facts (node/disclosure.c reads them) */
  int rv = sj_store_open(n->cfg.data_dir, &so, &n->store);
  if (rv)
    SJ_LOG_ERR("node", "cannot open store in %s: %s (%s)", n->cfg.data_dir, sj_strerror(rv),
               sj_store_last_error());
  return rv;
}

/* The trail of non-public reads, <data-dir>/audit.log, flushed every 200 ms (docs/DISCLOSURE.md). */
static int open_audit(sj_node_t *n) {
  char path[600];
  snprintf(path, sizeof path, "%.580s/audit.log", n->cfg.data_dir);
  int rv = sj_audit_open(path, 0, &n->audit);
  if (rv)
    SJ_LOG_ERR("node", "cannot open the audit trail %s: %s", path, sj_strerror(rv));
  return rv;
}

static void free_node(sj_node_t *n) {
  repl_free(n);
  sj_audit_close(n->audit); /* flushes: nothing queued is lost on a clean stop */
  sj_store_close(n->store);
  sj_signer_free(n->signer);
  sj_signer_free(n->next_signer);
  sj_buf_deinit(&n->vkey);
  sj_tokens_free(n->tokens);
  sj_addr_limiter_free(n->public_limit);
  sj_metrics_free(n->metrics);
  sj_cache_free(n->cache);
  api_folds_free(n->folds);
  sodium_memzero(n->hmac_key, sizeof n->hmac_key);
  free(n);
}

int sj_node_open(uv_loop_t *loop, const sj_config_t *cfg, sj_node_t **out) {
  sj_node_t *n = calloc(1, sizeof *n);
  if (!n)
    return -ENOMEM;
  n->loop = loop;
  n->cfg = *cfg;
  snprintf(n->region_str, sizeof n->region_str, "%06u", cfg->region);
  if (!n->cfg.backup_dir[0])
    snprintf(n->cfg.backup_dir, sizeof n->cfg.backup_dir, "%.500s.backups", cfg->data_dir);
  mkdir(cfg->data_dir, 0700);
  int rv = sj_crypto_init();
  rv = rv ? rv : load_key(n);
  rv = rv ? rv : load_hmac_key(n);
  rv = rv ? rv : load_tokens(cfg->tokens_file, &n->tokens);
  rv = rv ? rv : sj_metrics_new(&n->metrics);
  /* Invalidation is exact on append; each answer's expiry is given with it (api_read.c). */
  size_t cache_bytes = cfg->cache_mb > SIZE_MAX >> 20 ? SIZE_MAX : cfg->cache_mb << 20;
  rv = rv ? rv : sj_cache_new(cfg->cache_entries, cache_bytes, &n->cache);
  rv = rv ? rv : api_folds_new(cfg->fold_cache_entries, &n->folds);
  rv = rv ? rv : open_store(n);
  rv = rv ? rv : open_audit(n);
  rv = rv ? rv : sj_writer_start(loop, n->store, cfg->region, n->signer, cfg->max_group, &n->writer);
  if (rv) {
    free_node(n);
    return rv;
  }
  sj_writer_set_space_check(n->writer, cfg->data_dir, (uint64_t)cfg->min_free_mb << 20);
  if (n->next_signer) {
    sj_writer_set_next_signer(n->writer, n->next_signer);
    rv = announce_rotation(n);
  }
  if (rv == 0)
    rv = start_api(n);
  if (rv == 0)
    rv = api_warm_start(n);
  if (rv == 0)
    rv = repl_start(n);
  if (rv) {
    sj_node_close(n, NULL, NULL);
    return rv;
  }
  uint64_t size;
  sj_store_head(n->store, cfg->region, &size, NULL, NULL);
  SJ_LOG_INFO("node", "region %s (%s) listening on %s%s%s, log size %llu, %zu tokens",
              n->region_str, sj_signer_name(n->signer), cfg->listen,
              cfg->tls_listen[0] ? " and https://" : "", cfg->tls_listen,
              (unsigned long long)size, sj_tokens_count(n->tokens));
  *out = n;
  return 0;
}

uint16_t sj_node_port(const sj_node_t *n) {
  return sj_server_port(n->server);
}

int sj_node_reload(sj_node_t *n) {
  sj_tokens_t *t = NULL;
  int rv = load_tokens(n->cfg.tokens_file, &t);
  if (rv)
    return rv;
  sj_tokens_free(n->tokens);
  n->tokens = t;
  SJ_LOG_INFO("node", "reloaded %zu tokens from %s", sj_tokens_count(t), n->cfg.tokens_file);
  return 0;
}

void node_close_finish(sj_node_t *n) {
  void (*done)(void *) = n->close_done;
  void *done_arg = n->close_arg;
  sj_writer_stop(n->writer);
  free_node(n);
  if (done)
    done(done_arg);
}

/* The server is closed (in-flight requests answered); now drain the writer and close the store,
 * unless a backup or compaction still uses it on the thread pool: the store must outlive it. */
static void on_server_closed(void *arg) {
  sj_node_t *n = arg;
  if (n->store_jobs > 0) {
    SJ_LOG_INFO("node", "waiting for %d store job(s) (backup, compaction, warm-up) to finish",
                n->store_jobs);
    sj_store_cancel_compaction(n->store);
    atomic_store(&n->warm.stop, 1);
    n->close_deferred = 1;
    return;
  }
  node_close_finish(n);
}

static void on_one_server_closed(void *arg) {
  sj_node_t *n = arg;
  if (--n->servers_open == 0)
    on_server_closed(n);
}

void sj_node_close(sj_node_t *n, void (*done)(void *arg), void *arg) {
  if (n->closing)
    return;
  n->closing = 1;
  n->close_done = done;
  n->close_arg = arg;
  repl_stop(n);
  api_follow_close_all(n);
  n->servers_open = (n->server != NULL) + (n->tls_server != NULL);
  if (n->tls_server)
    sj_server_close(n->tls_server, 5000, on_one_server_closed, n);
  if (n->server)
    sj_server_close(n->server, 5000, on_one_server_closed, n);
  if (n->servers_open == 0)
    on_server_closed(n);
}
