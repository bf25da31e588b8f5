/* node/cache.c — the lookup response cache (cache.h): a chained hash table of answers bounded in
 * entries and bytes, evicted by CLOCK, with generation-checked dependencies and per-entry expiry.
 *
 * Layout: buckets[] heads singly linked chains (XXH3 of the key, masked); ring[] is the clock, one
 * slot per entry allowed, NULL where free. Slots freed by removals are reused through a stack
 * (free_slots); slots never used yet are handed out from `used` upwards, so the ring and stack
 * need no initialisation and the kernel backs only the part actually used. */
#include "node/cache.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define GEN_SLOTS (1u << 16)
/* What the allocator keeps beside each block (glibc: one size word, 16-byte granularity). */
#define ALLOC_OVERHEAD 16u

typedef struct ent {
  struct ent *next;    /* the next entry in its bucket's chain */
  uint64_t hash;       /* XXH3 of the key */
  uint64_t epoch;      /* the cache's epoch when filled */
  uint64_t expires_ms; /* valid while the loop clock is before this */
  uint32_t ndeps;      /* dependencies: dep_t at the start of data */
  uint32_t ring;       /* its slot in the clock ring */
  int status;
  uint8_t ref;       /* used since the clock hand last passed */
  const char *ctype; /* static */
  size_t keylen, len;
  char data[]; /* ndeps dep_t, the key, then the body */
} ent_t;

/* A dependency: a slot of gens and its value when the entry was filled. */
typedef struct {
  uint64_t gen;
  uint64_t slot;
} dep_t;
_Static_assert(offsetof(ent_t, data) % _Alignof(dep_t) == 0, "dep_t alignment in ent_t.data");

static dep_t *ent_deps(const ent_t *e) {
  return (dep_t *)(uintptr_t)e->data;
}
static char *ent_key(const ent_t *e) {
  return (char *)(uintptr_t)e->data + e->ndeps * sizeof(dep_t);
}

struct sj_cache {
  ent_t **buckets;      /* chain heads; bmask + 1 of them */
  size_t bmask;         /* 0 with buckets == NULL: the cache is off */
  ent_t **ring;         /* the clock: cap slots, the first `used` handed out at least once */
  uint32_t *free_slots; /* ring slots freed by removals, a stack of nfree */
  size_t cap, used, nfree, hand;
  size_t max_bytes;
  uint64_t *gens;      /* GEN_SLOTS generation counters */
  uint64_t epoch;      /* bumped by sj_cache_invalidate_all */
  sj_cache_stats_t st; /* st.entries and st.bytes are kept current */
};

static size_t ent_cost(size_t ndeps, size_t keylen, size_t len) {
  return sizeof(ent_t) + ndeps * sizeof(dep_t) + keylen + len + ALLOC_OVERHEAD;
}

int sj_cache_new(size_t max_entries, size_t max_bytes, sj_cache_t **out) {
  sj_cache_t *c = calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->gens = calloc(GEN_SLOTS, sizeof *c->gens);
  if (!c->gens) {
    sj_cache_free(c);
    return -ENOMEM;
  }
  /* No more entries than the byte bound could ever hold (each costs at least ent_cost(0, 0)),
   * and ring slots are 32-bit. */
  size_t cap = max_entries, most = max_bytes / ent_cost(0, 0, 0);
  cap = cap < most ? cap : most;
  cap = cap < UINT32_MAX ? cap : UINT32_MAX;
  if (cap) {
    size_t nb = 1;
    while (nb < cap)
      nb <<= 1;
    c->buckets = calloc(nb, sizeof *c->buckets);
    c->ring = malloc(cap * sizeof *c->ring);
    c->free_slots = malloc(cap * sizeof *c->free_slots);
    if (!c->buckets || !c->ring || !c->free_slots) {
      sj_cache_free(c);
      return -ENOMEM;
    }
    c->bmask = nb - 1;
  }
  c->cap = cap;
  c->max_bytes = max_bytes;
  *out = c;
  return 0;
}

void sj_cache_free(sj_cache_t *c) {
  if (!c)
    return;
  for (size_t i = 0; c->ring && i < c->used; i++)
    free(c->ring[i]);
  free(c->buckets);
  free(c->ring);
  free(c->free_slots);
  free(c->gens);
  free(c);
}

static uint64_t key_hash(const char *key, size_t n) {
  return XXH3_64bits(key, n);
}

static ent_t *find(const sj_cache_t *c, uint64_t h, const char *key, size_t n) {
  for (ent_t *e = c->buckets[h & c->bmask]; e; e = e->next)
    if (e->hash == h && e->keylen == n && !memcmp(ent_key(e), key, n))
      return e;
  return NULL;
}

static int valid(const sj_cache_t *c, const ent_t *e, uint64_t now_ms) {
  if (e->epoch != c->epoch || now_ms >= e->expires_ms)
    return 0;
  const dep_t *d = ent_deps(e);
  for (uint32_t i = 0; i < e->ndeps; i++)
    if (d[i].gen != c->gens[d[i].slot])
      return 0;
  return 1;
}

/* Unlinks e from its chain and the ring, and frees it. */
static void remove_ent(sj_cache_t *c, ent_t *e) {
  ent_t **pp = &c->buckets[e->hash & c->bmask];
  while (*pp != e)
    pp = &(*pp)->next;
  *pp = e->next;
  c->ring[e->ring] = NULL;
  c->free_slots[c->nfree++] = e->ring;
  c->st.entries--;
  c->st.bytes -= ent_cost(e->ndeps, e->keylen, e->len);
  free(e);
}

/* Frees one entry: the first invalid one the hand meets, else the first not used since the hand
 * last passed (clearing the bits of those that were). Returns 0 when the cache holds none. Two
 * turns of the hand suffice: the first clears every bit. */
static int evict_one(sj_cache_t *c, uint64_t now_ms) {
  for (size_t steps = 0; c->st.entries && steps <= 2 * c->used; steps++) {
    ent_t *e = c->ring[c->hand];
    c->hand = c->hand + 1 < c->used ? c->hand + 1 : 0;
    if (!e)
      continue;
    if (valid(c, e, now_ms) && e->ref) {
      e->ref = 0;
      continue;
    }
    if (valid(c, e, now_ms))
      c->st.evictions++;
    remove_ent(c, e);
    return 1;
  }
  return 0;
}

int sj_cache_get(sj_cache_t *c, const char *key, size_t n, uint64_t now_ms, sj_cache_hit_t *hit) {
  ent_t *e = c->buckets ? find(c, key_hash(key, n), key, n) : NULL;
  if (e && !valid(c, e, now_ms)) {
    remove_ent(c, e);
    e = NULL;
  }
  if (!e) {
    c->st.misses++;
    return 0;
  }
  e->ref = 1;
  c->st.hits++;
  *hit = (sj_cache_hit_t){e->status, e->ctype, (const uint8_t *)ent_key(e) + e->keylen, e->len};
  return 1;
}

void sj_cache_put_deps(sj_cache_t *c, const char *key, size_t n, const uint64_t *dep_hashes,
                       size_t ndeps, int status, const char *ctype, const uint8_t *body, size_t len,
                       uint64_t now_ms, uint64_t expires_ms) {
  size_t cost = ent_cost(ndeps, n, len);
  if (!c->buckets || expires_ms <= now_ms || ndeps > SJ_CACHE_MAX_DEPS || cost > c->max_bytes)
    return;
  uint64_t h = key_hash(key, n);
  ent_t *old = find(c, h, key, n);
  if (old)
    remove_ent(c, old);
  while (c->st.entries == c->cap || c->st.bytes + cost > c->max_bytes)
    if (!evict_one(c, now_ms))
      return;
  ent_t *e = malloc(sizeof *e + ndeps * sizeof(dep_t) + n + len);
  if (!e)
    return;
  *e = (ent_t){.hash = h,
               .ndeps = (uint32_t)ndeps,
               .epoch = c->epoch,
               .expires_ms = expires_ms,
               .status = status,
               .ctype = ctype,
               .keylen = n,
               .len = len};
  dep_t *d = ent_deps(e);
  for (size_t i = 0; i < ndeps; i++) {
    d[i].slot = dep_hashes[i] % GEN_SLOTS;
    d[i].gen = c->gens[d[i].slot];
  }
  memcpy(ent_key(e), key, n);
  if (len)
    memcpy(ent_key(e) + n, body, len);
  e->ring = (uint32_t)(c->nfree ? c->free_slots[--c->nfree] : c->used++);
  c->ring[e->ring] = e;
  e->next = c->buckets[h & c->bmask];
  c->buckets[h & c->bmask] = e;
  c->st.entries++;
  c->st.bytes += cost;
  c->st.puts++;
}

void sj_cache_put(sj_cache_t *c, const char *key, size_t n, const uint8_t *dep, size_t depn,
                  int status, const char *ctype, const uint8_t *body, size_t len, uint64_t now_ms,
                  uint64_t expires_ms) {
  uint64_t h = sj_cache_dep_hash(dep, depn);
  sj_cache_put_deps(c, key, n, &h, 1, status, ctype, body, len, now_ms, expires_ms);
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
