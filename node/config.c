/* node/config.c — "key = value" config files and the flags that override them. */
#include "node/config.h"

#include "common/common.h"
#include "storage/storage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char sj_config_usage[] =
    "usage: sanjiao-node [--config FILE] --region CODE --data-dir DIR --key FILE\n"
    "                    [--listen HOST:PORT] [--tokens FILE] [--hmac-key FILE]\n"
    "                    [--log-level err|warn|info|debug] [--debug SUBSYSTEMS] [--backup-dir DIR]\n"
    "                    [--min-free-mb N] [--next-key FILE]\n"
    "                    [--token-rate REQ_PER_S] [--public-rate REQ_PER_S]\n"
    "                    [--max-conns-per-addr N] [--tls-listen HOST:PORT --tls-cert FILE\n"
    "                    --tls-key FILE [--tls-ca FILE] [--tls-require-client-cert 1]]\n"
    "                    [--block-cache-mb N] [--block-cache-warm FAMILIES] [--mmap-reads 0|1]\n"
    "                    [--max-body BYTES] [--max-group N]\n"
    "                    [--max-conns N] [--cache-entries N] [--cache-mb N]\n"
    "                    [--fold-cache-entries N] [--cache-ttl S] [--poll-ms MS]\n"
    "Flags override the config file; see docs/CONFIG.md.\n";

void sj_config_default(sj_config_t *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->listen, sizeof c->listen, "127.0.0.1:7300");
  snprintf(c->log_level, sizeof c->log_level, "info");
  c->block_cache_mb = 256;
  c->max_body = 16u << 20;
  c->max_group = 20000;
  c->max_conns = 4096;
  c->max_conns_per_addr = 128;
  c->cache_entries = 1048576;
  c->cache_mb = 1024;
  c->fold_cache_entries = 65536;
  c->cache_ttl = 3600;
  c->poll_ms = 5000;
  c->min_free_mb = 64;
  c->token_rate = 5000;
}

int sj_region_parse(const char *s, size_t n, uint32_t *out) {
  if (n != 6 || s[0] < '1' || s[0] > '9')
    return SJ_EINVAL;
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return SJ_EINVAL;
    v = v * 10 + (uint32_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

static int parse_size(const char *v, size_t *out) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-')
    return SJ_EINVAL;
  *out = (size_t)x;
  return 0;
}

/* "none", "all", or a comma-separated list of subjects, trace, tree, facts, entries. */
static int parse_families(const char *v, unsigned *out) {
  static const struct {
    const char *name;
    unsigned flag;
  } fams[] = {{"subjects", SJ_WARM_SUBJECTS},
              {"trace", SJ_WARM_TRACE},
              {"tree", SJ_WARM_TREE},
              {"facts", SJ_WARM_FACTS},
              {"entries", SJ_WARM_ENTRIES}};
  unsigned m = 0;
  if (!strcmp(v, "none")) {
    *out = 0;
    return 0;
  }
  if (!strcmp(v, "all")) {
    *out = SJ_WARM_SUBJECTS | SJ_WARM_TRACE | SJ_WARM_TREE | SJ_WARM_FACTS | SJ_WARM_ENTRIES;
    return 0;
  }
  for (const char *p = v;;) {
    size_t n = strcspn(p, ","), i;
    for (i = 0; i < sizeof fams / sizeof fams[0]; i++)
      if (strlen(fams[i].name) == n && !memcmp(p, fams[i].name, n))
        break;
    if (i == sizeof fams / sizeof fams[0])
      return SJ_EINVAL;
    m |= fams[i].flag;
    if (p[n] == 0)
      break;
    p += n + 1;
  }
  *out = m;
  return 0;
}

static int copy(char *dst, size_t cap, const char *v) {
  if (strlen(v) >= cap)
    return SJ_EINVAL;
  memcpy(dst, v, strlen(v) + 1);
  return 0;
}

/* Sets one node-level key. Returns 0, SJ_ENOTFOUND (unknown key) or SJ_EINVAL (bad value). */
static int set_key(sj_config_t *c, const char *k, const char *v) {
  if (!strcmp(k, "region"))
    return sj_region_parse(v, strlen(v), &c->region);
  if (!strcmp(k, "listen"))
    return copy(c->listen, sizeof c->listen, v);
  if (!strcmp(k, "tls-listen") || !strcmp(k, "tls_listen"))
    return copy(c->tls_listen, sizeof c->tls_listen, v);
  if (!strcmp(k, "tls-cert") || !strcmp(k, "tls_cert"))
    return copy(c->tls_cert, sizeof c->tls_cert, v);
  if (!strcmp(k, "tls-key") || !strcmp(k, "tls_key"))
    return copy(c->tls_key, sizeof c->tls_key, v);
  if (!strcmp(k, "tls-ca") || !strcmp(k, "tls_ca"))
    return copy(c->tls_ca, sizeof c->tls_ca, v);
  if (!strcmp(k, "tls-require-client-cert") || !strcmp(k, "tls_require_client_cert")) {
    size_t b = 0;
    int rv = parse_size(v, &b);
    c->tls_require_client_cert = b != 0;
    return rv;
  }
  if (!strcmp(k, "data-dir") || !strcmp(k, "data_dir"))
    return copy(c->data_dir, sizeof c->data_dir, v);
  if (!strcmp(k, "key"))
    return copy(c->key_file, sizeof c->key_file, v);
  if (!strcmp(k, "next-key") || !strcmp(k, "next_key"))
    return copy(c->next_key_file, sizeof c->next_key_file, v);
  if (!strcmp(k, "backup-dir") || !strcmp(k, "backup_dir"))
    return copy(c->backup_dir, sizeof c->backup_dir, v);
  if (!strcmp(k, "tokens"))
    return copy(c->tokens_file, sizeof c->tokens_file, v);
  if (!strcmp(k, "hmac-key") || !strcmp(k, "hmac_key"))
    return copy(c->hmac_key_file, sizeof c->hmac_key_file, v);
  if (!strcmp(k, "log-level") || !strcmp(k, "log_level"))
    return copy(c->log_level, sizeof c->log_level, v);
  if (!strcmp(k, "debug"))
    return copy(c->debug, sizeof c->debug, v);
  if (!strcmp(k, "block-cache-mb") || !strcmp(k, "block_cache_mb"))
    return parse_size(v, &c->block_cache_mb);
  if (!strcmp(k, "block-cache-warm") || !strcmp(k, "block_cache_warm"))
    return parse_families(v, &c->block_cache_warm);
  if (!strcmp(k, "mmap-reads") || !strcmp(k, "mmap_reads")) {
    size_t b = 0;
    int rv = parse_size(v, &b);
    if (rv == 0 && b > 1)
      rv = SJ_EINVAL;
    c->mmap_reads = (int)b;
    return rv;
  }
  if (!strcmp(k, "max-body") || !strcmp(k, "max_body"))
    return parse_size(v, &c->max_body);
  if (!strcmp(k, "max-group") || !strcmp(k, "max_group"))
    return parse_size(v, &c->max_group);
  if (!strcmp(k, "max-conns") || !strcmp(k, "max_conns"))
    return parse_size(v, &c->max_conns);
  if (!strcmp(k, "cache-entries") || !strcmp(k, "cache_entries"))
    return parse_size(v, &c->cache_entries);
  if (!strcmp(k, "cache-mb") || !strcmp(k, "cache_mb"))
    return parse_size(v, &c->cache_mb);
  if (!strcmp(k, "fold-cache-entries") || !strcmp(k, "fold_cache_entries"))
    return parse_size(v, &c->fold_cache_entries);
  if (!strcmp(k, "cache-ttl") || !strcmp(k, "cache_ttl")) {
    size_t s = 0;
    int rv = parse_size(v, &s);
    c->cache_ttl = s;
    return rv;
  }
  if (!strcmp(k, "token-rate") || !strcmp(k, "token_rate"))
    return parse_size(v, &c->token_rate);
  if (!strcmp(k, "public-rate") || !strcmp(k, "public_rate"))
    return parse_size(v, &c->public_rate);
  if (!strcmp(k, "max-conns-per-addr") || !strcmp(k, "max_conns_per_addr"))
    return parse_size(v, &c->max_conns_per_addr);
  if (!strcmp(k, "min-free-mb") || !strcmp(k, "min_free_mb"))
    return parse_size(v, &c->min_free_mb);
  if (!strcmp(k, "poll-ms") || !strcmp(k, "poll_ms")) {
    size_t ms = 0;
    int rv = parse_size(v, &ms);
    c->poll_ms = ms ? ms : 1;
    return rv;
  }
  return SJ_ENOTFOUND;
}

/* Sets one key of a [peer REGION] section. */
static int set_peer_key(sj_peer_conf_t *p, const char *k, const char *v) {
  if (!strcmp(k, "origin"))
    return copy(p->origin, sizeof p->origin, v);
  if (!strcmp(k, "vkey"))
    return copy(p->vkey, sizeof p->vkey, v);
  if (!strcmp(k, "token-file") || !strcmp(k, "token_file"))
    return copy(p->token_file, sizeof p->token_file, v);
  if (!strcmp(k, "url")) {
    if (p->nurls == SJ_MAX_PEER_URLS)
      return SJ_EINVAL;
    return copy(p->urls[p->nurls++], sizeof p->urls[0], v);
  }
  return SJ_ENOTFOUND;
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
    s[--n] = 0;
  return s;
}

static int start_peer(sj_config_t *c, char *sect, sj_peer_conf_t **cur) {
  uint32_t region;
  char *arg = trim(sect + 4);
  if (c->npeers == SJ_MAX_PEERS || sj_region_parse(arg, strlen(arg), &region))
    return SJ_EINVAL;
  *cur = &c->peers[c->npeers++];
  (*cur)->region = region;
  return 0;
}

int sj_config_load(sj_config_t *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -errno;
  }
  char line[1024];
  int lineno = 0, rv = 0;
  sj_peer_conf_t *peer = NULL;
  while (rv == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line), *eq;
    if (*s == 0 || *s == '#')
      continue;
    if (*s == '[') {
      char *close = strchr(s, ']');
      rv = close && !close[1] && !strncmp(s, "[peer ", 6) ? (*close = 0, start_peer(c, s + 1, &peer))
                                                            : SJ_EINVAL;
    } else if ((eq = strchr(s, '=')) != NULL) {
      *eq = 0;
      char *k = trim(s), *v = trim(eq + 1);
      rv = peer ? set_peer_key(peer, k, v) : set_key(c, k, v);
    } else {
      rv = SJ_EINVAL;
    }
  }
  fclose(f);
  if (rv) {
    snprintf(err, errlen, "%s:%d: %s", path, lineno,
             rv == SJ_ENOTFOUND ? "unknown setting" : "invalid line or value");
    return SJ_EFORMAT;
  }
  return 0;
}

int sj_config_from_args(sj_config_t *c, int argc, char **argv, char *err, size_t errlen) {
  for (int i = 1; i < argc; i++) { /* the file first, so flags win wherever they appear */
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
      return 1;
    if (!strcmp(argv[i], "--config") && i + 1 < argc) {
      int rv = sj_config_load(c, argv[i + 1], err, errlen);
      if (rv)
        return SJ_EINVAL;
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) || i + 1 >= argc) {
      snprintf(err, errlen, "unexpected argument '%s' (or missing value)", a);
      return SJ_EINVAL;
    }
    const char *v = argv[++i];
    if (!strcmp(a, "--config"))
      continue;
    int rv = set_key(c, a + 2, v);
    if (rv) {
      if (rv == SJ_ENOTFOUND)
        snprintf(err, errlen, "unknown flag %s", a);
      else
        snprintf(err, errlen, "invalid value for %s: '%s'", a, v);
      return SJ_EINVAL;
    }
  }
  return 0;
}

int sj_config_check(const sj_config_t *c, char *err, size_t errlen) {
  const char *missing = !c->region ? "--region" : !c->data_dir[0] ? "--data-dir"
                                                : !c->key_file[0] ? "--key" : NULL;
  if (missing) {
    snprintf(err, errlen, "missing required setting %s", missing);
    return SJ_EINVAL;
  }

  if (c->tls_listen[0] && (!c->tls_cert[0] || !c->tls_key[0])) {
    snprintf(err, errlen, "tls-listen needs tls-cert and tls-key");
    return SJ_EINVAL;
  }
  for (size_t i = 0; i < c->npeers; i++) {
    const sj_peer_conf_t *p = &c->peers[i];
    if (!p->vkey[0] || !p->nurls) {
      snprintf(err, errlen, "[peer %06u] needs vkey and at least one url", p->region);
      return SJ_EINVAL;
    }
  }
  return 0;
}
