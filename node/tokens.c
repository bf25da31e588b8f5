/* node/tokens.c — loading the tokens file and finding a presented token in constant time; the
 * public's per-address rate limit (the token bucket of callers without a token) and the server
 * gate that applies it (docs/SECURITY.md, docs/CONFIG.md "public-rate"). */
#include "node/tokens.h"

#include "common/common.h"
#include "crypto/crypto.h"
#include "node/node_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sj_tokens {
  sj_token_t *v;
  size_t n, cap;
};

static const char *role_names[] = {"public", "submit", "authority", "subject", "peer"};

const char *sj_role_name(sj_role_t r) {
  return (unsigned)r < sizeof role_names / sizeof *role_names ? role_names[r] : "?";
}

int sj_role_parse(const char *s, sj_role_t *out) {
  for (int i = SJ_ROLE_SUBMIT; i <= SJ_ROLE_PEER; i++)
    if (strcmp(s, role_names[i]) == 0) {
      *out = (sj_role_t)i;
      return 0;
    }
  return SJ_EINVAL;
}

int sj_tokens_empty(sj_tokens_t **out) {
  sj_tokens_t *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  *out = t;
  return 0;
}

void sj_tokens_free(sj_tokens_t *t) {
  if (!t)
    return;
  free(t->v);
  free(t);
}

size_t sj_tokens_count(const sj_tokens_t *t) {
  return t->n;
}

/* Parses one non-comment line into tok. Returns 0 or SJ_EFORMAT. */
static int parse_line(char *line, sj_token_t *tok) {
  char *save = NULL, *role = strtok_r(line, " \t", &save), *hex = strtok_r(NULL, " \t", &save);
  if (!role || !hex || sj_role_parse(role, &tok->role) ||
      sj_hex_decode(hex, strlen(hex), tok->hash, 32))
    return SJ_EFORMAT;
  if (tok->role == SJ_ROLE_SUBJECT || tok->role == SJ_ROLE_PEER) {
    char *arg = strtok_r(NULL, " \t", &save);
    if (!arg || strlen(arg) >= sizeof tok->arg)
      return SJ_EFORMAT;
    snprintf(tok->arg, sizeof tok->arg, "%s", arg);
  }
  char *label = strtok_r(NULL, "", &save);
  while (label && (*label == ' ' || *label == '\t'))
    label++;
  snprintf(tok->label, sizeof tok->label, "%s", label ? label : "");
  return 0;
}

static int push(sj_tokens_t *t, const sj_token_t *tok) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    sj_token_t *v = realloc(t->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = *tok;
  return 0;
}

int sj_tokens_load(const char *path, sj_tokens_t **out, int *errline) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  sj_tokens_t *t = NULL;
  int rv = sj_tokens_empty(&t), lineno = 0;
  char line[512];
  while (rv == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\r\n")] = 0;
    char *p = line + strspn(line, " \t");
    if (*p == 0 || *p == '#')
      continue;
    sj_token_t tok;
    memset(&tok, 0, sizeof tok);
    rv = parse_line(p, &tok);
    if (rv == 0)
      rv = push(t, &tok);
  }
  fclose(f);
  if (rv) {
    if (errline)
      *errline = lineno;
    sj_tokens_free(t);
    return rv;
  }
  *out = t;
  return 0;
}

sj_token_t *sj_tokens_find(sj_tokens_t *t, const char *token, size_t n) {
  uint8_t h[32];
  sj_token_t *found = NULL;
  sj_sha256(token, n, h);
  for (size_t i = 0; i < t->n; i++) { /* no early exit: every line is compared */
    int eq = sodium_memcmp(h, t->v[i].hash, 32) == 0;
    found = eq ? &t->v[i] : found;
  }
  return found;
}

/* ---- The public's rate limit ------------------------------------------------------------------ */

#define ADDR_WAYS 4
#define ADDR_KEY_MAX 47

typedef struct {
  char key[ADDR_KEY_MAX + 1]; /* the address as text ("127.0.0.1", "[::1]"); "" = free */
  uint8_t klen;
  int refusing;     /* refused since the bucket last had room (log once per episode) */
  double bucket;    /* requests left */
  uint64_t last_us; /* when bucket was last refilled */
} addr_slot_t;

struct sj_addr_limiter {
  double rate, burst;
  uint8_t hkey[crypto_shorthash_KEYBYTES]; /* random: the set an address falls in is unguessable */
  addr_slot_t slot[SJ_ADDR_SLOTS];
};

int sj_addr_limiter_new(double rate, sj_addr_limiter_t **out) {
  sj_addr_limiter_t *l = calloc(1, sizeof *l);
  if (!l)
    return -ENOMEM;
  l->rate = rate;
  l->burst = 2 * rate;
  randombytes_buf(l->hkey, sizeof l->hkey);
  *out = l;
  return 0;
}

void sj_addr_limiter_free(sj_addr_limiter_t *l) {
  free(l);
}

/* The bucket's level at now, refilled since its last use. */
static double level(const sj_addr_limiter_t *l, const addr_slot_t *s, uint64_t now_us) {
  double b = s->bucket + (double)(now_us - s->last_us) * l->rate / 1e6;
  return b > l->burst ? l->burst : b;
}

/* addr's slot: its own, else a free or refilled one, else the least recently used of its set. */
static addr_slot_t *find_slot(sj_addr_limiter_t *l, const char *addr, size_t n, uint64_t now_us) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, (const unsigned char *)addr, n, l->hkey);
  uint64_t x;
  memcpy(&x, h, sizeof x);
  addr_slot_t *set = &l->slot[(x % (SJ_ADDR_SLOTS / ADDR_WAYS)) * ADDR_WAYS], *pick = NULL;
  for (int i = 0; i < ADDR_WAYS; i++)
    if (set[i].klen == n && memcmp(set[i].key, addr, n) == 0)
      return &set[i];
  for (int i = 0; i < ADDR_WAYS && !pick; i++)
    if (!set[i].klen || level(l, &set[i], now_us) >= l->burst)
      pick = &set[i];
  if (!pick) {
    pick = &set[0];
    for (int i = 1; i < ADDR_WAYS; i++)
      if (set[i].last_us < pick->last_us)
        pick = &set[i];
  }
  memcpy(pick->key, addr, n);
  pick->key[n] = 0;
  pick->klen = (uint8_t)n;
  pick->bucket = l->burst;
  pick->last_us = now_us;
  pick->refusing = 0;
  return pick;
}

unsigned sj_addr_limiter_take(sj_addr_limiter_t *l, const char *addr, size_t n, uint64_t now_us,
                              int *first) {
  if (n > ADDR_KEY_MAX)
    n = ADDR_KEY_MAX;
  addr_slot_t *s = find_slot(l, addr, n, now_us);
  s->bucket = level(l, s, now_us);
  s->last_us = now_us;
  if (s->bucket >= 1) {
    s->bucket -= 1;
    s->refusing = 0;
    return 0;
  }
  *first = !s->refusing;
  s->refusing = 1;
  double wait = (1 - s->bucket) / l->rate;
  return wait < 1 ? 1 : wait > 3600 ? 3600 : (unsigned)(wait + 0.999);
}

/* Whether req comes from someone the node knows: a valid token, or a peer region's verified
 * client certificate. The rest — no token, or one that is not in the tokens file — is the public.
 * (A known token is rate-limited per token later, in api_caller.) */
static int known_caller(sj_node_t *n, sj_req_t *req) {
  size_t len = 0;
  const char *auth = sj_req_header(req, "authorization", &len);
  if (auth && len > 7 && !strncasecmp(auth, "Bearer ", 7) &&
      sj_tokens_find(n->tokens, auth + 7, len - 7))
    return 1;
  const char *cn = n->tls_server && n->cfg.tls_ca[0] ? sj_req_peer_cert_cn(req) : NULL;
  for (size_t i = 0; cn && i < n->cfg.npeers; i++)
    if (!strcmp(n->mtls_peers[i].arg, cn))
      return 1;
  return 0;
}

/* The bucket's name for a peer "ip:port" / "[ip6]:port": the IPv4 address, or the /64 prefix of
 * an IPv6 one (a host usually has a whole /64). Returns its length in out. */
static size_t bucket_addr(const char *peer, char out[INET6_ADDRSTRLEN + 2]) {
  const char *colon = strrchr(peer, ':');
  size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
  struct in6_addr a6;
  char ip[INET6_ADDRSTRLEN];
  if (peer[0] == '[' && n >= 2 && n - 2 < sizeof ip) {
    memcpy(ip, peer + 1, n - 2);
    ip[n - 2] = 0;
    if (inet_pton(AF_INET6, ip, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
      memset(a6.s6_addr + 8, 0, 8);
      inet_ntop(AF_INET6, &a6, out, INET6_ADDRSTRLEN);
      return strlen(out);
    }
  }
  n = n < INET6_ADDRSTRLEN + 1 ? n : INET6_ADDRSTRLEN + 1;
  memcpy(out, peer, n);
  out[n] = 0;
  return n;
}

int tokens_public_gate(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  if (!n->public_limit || known_caller(n, req))
    return 0;
  const char *peer = sj_req_peer(req);
  char addr[INET6_ADDRSTRLEN + 2];
  size_t alen = bucket_addr(peer, addr);
  int first = 0;
  unsigned wait = sj_addr_limiter_take(n->public_limit, addr, alen, uv_hrtime() / 1000u, &first);
  if (!wait)
    return 0;
  if (first)
    SJ_LOG_WARN("api", "%s stream %d: over the public rate limit (%zu requests/s per address): "
                       "answering 429",
                peer, sj_req_stream_id(req), n->cfg.public_rate);
  char ra[16];
  snprintf(ra, sizeof ra, "%u", wait);
  sj_header_t h[2] = {{"content-type", "application/problem+json"}, {"retry-after", ra}};
  static const char body[] = "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\","
                             "\"status\":429,\"detail\":\"too many requests from this address "
                             "without a token\"}";
  sj_req_respond(req, 429, h, 2, body, sizeof body - 1);
  return 1;
}
