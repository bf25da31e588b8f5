/* node/cache.c — direct-mapped response cache with generation-checked dependencies (cache.h). */
#include "node/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define GEN_SLOTS (1u << 16)

typedef struct {
  uint64_t hash;     /* XXH3 of key; 0 = empty */
  char *key;         /* owned */
  size_t keylen;
  uint32_t dep_slot; /* index into gens */
  uint64_t dep_gen;  /* gens[dep_slot] when filled */
  uint64_t epoch;    /* the cache's epoch when filled */
  uint64_t expires_ms;
  int status;
  const char *ctype;
  uint8_t *body; /* owned */
  size_t len;
} slot_t;

struct sj_cache {
  slot_t *slots;
  size_t mask;
  uint64_t ttl_ms;
  uint64_t *gens; /* GEN_SLOTS generation counters */
  uint64_t epoch; /* bumped by sj_cache_invalidate_all */
  sj_cache_stats_t st;
};

int sj_cache_new(size_t slots, uint64_t ttl_ms, sj_cache_t **out) {
  sj_cache_t *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  size_t n = 1;
  while (slots && n < slots)
    n <<= 1;
  c->ttl_ms = ttl_ms;
  c->gens = calloc(GEN_SLOTS, sizeof *c->gens);
  if (slots)
    c->slots = calloc(n, sizeof *c->slots);
  if (!c->gens || (slots && !c->slots)) {
    sj_cache_free(c);
    return -ENOMEM;
  }
  c->mask = slots ? n - 1 : 0;
  *out = c;
  return 0;
}

static void slot_clear(slot_t *s) {
  free(s->key);
  free(s->body);
  memset(s, 0, sizeof *s);
}

void sj_cache_free(sj_cache_t *c) {
  if (!c)
    return;
  for (size_t i = 0; c->slots && i <= c->mask; i++)
    slot_clear(&c->slots[i]);
  free(c->slots);
  free(c->gens);
  free(c);
}

static uint64_t key_hash(const char *key, size_t n) {
  uint64_t h = XXH3_64bits(key, n);
  return h ? h : 1; /* 0 marks an empty slot */
}

int sj_cache_get(sj_cache_t *c, const char *key, size_t n, uint64_t now_ms, sj_cache_hit_t *hit) {
  if (!c->slots)
    return 0;
  uint64_t h = key_hash(key, n);
  slot_t *s = &c->slots[h & c->mask];
  if (s->hash != h || s->keylen != n || memcmp(s->key, key, n) ||
      s->dep_gen != c->gens[s->dep_slot] || s->epoch != c->epoch || now_ms >= s->expires_ms) {
    c->st.misses++;
    return 0;
  }
  c->st.hits++;
  *hit = (sj_cache_hit_t){s->status, s->ctype, s->body, s->len};
  return 1;
}

void sj_cache_put(sj_cache_t *c, const char *key, size_t n, const uint8_t *dep, size_t depn,
                  int status, const char *ctype, const uint8_t *body, size_t len, uint64_t now_ms) {
  if (!c->slots)
    return;
  uint64_t h = key_hash(key, n);
  slot_t *s = &c->slots[h & c->mask];
  slot_clear(s);
  s->key = malloc(n ? n : 1);
  s->body = malloc(len ? len : 1);
  if (!s->key || !s->body) {
    slot_clear(s);
    return;
  }
  memcpy(s->key, key, n);
  memcpy(s->body, body, len);
  s->hash = h;
  s->keylen = n;
  s->len = len;
  s->status = status;
  s->ctype = ctype;
  s->dep_slot = (uint32_t)(XXH3_64bits(dep, depn) % GEN_SLOTS);
  s->dep_gen = c->gens[s->dep_slot];
  s->epoch = c->epoch;
  s->expires_ms = now_ms + c->ttl_ms;
  c->st.puts++;
}

uint64_t sj_cache_dep_gen(const sj_cache_t *c, const uint8_t *dep, size_t depn) {
  return c->gens[XXH3_64bits(dep, depn) % GEN_SLOTS] + (c->epoch << 40);
}

uint64_t sj_cache_dep_hash(const uint8_t *dep, size_t depn) {
  return XXH3_64bits(dep, depn);
}

void sj_cache_invalidate_hash(sj_cache_t *c, uint64_t dep_hash) {
  c->gens[dep_hash % GEN_SLOTS]++;
  c->st.invalidations++;
}

void sj_cache_invalidate_all(sj_cache_t *c) {
  c->epoch++;
  c->st.invalidations++;
}

void sj_cache_invalidate(sj_cache_t *c, const uint8_t *dep, size_t depn) {
  sj_cache_invalidate_hash(c, sj_cache_dep_hash(dep, depn));
}

void sj_cache_stats(const sj_cache_t *c, sj_cache_stats_t *out) {
  *out = c->st;
}
