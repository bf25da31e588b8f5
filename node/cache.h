/* node/cache — a response cache for public lookups (GET /v1/subjects/{id}, GET /v1/trace/{code})
 * with exact invalidation on append.
 *
 * Entries are keyed by the request's path and query (XXH3 to find the slot, the full key compared
 * behind it) and depend on one index key. Every append bumps a generation counter for each index
 * key its entries carry; an entry filled under an older generation of its dependency is a miss.
 * Generations live in a fixed table indexed by XXH3 of the index key: two keys sharing a slot
 * only cause extra misses, never a stale answer, so an adversary choosing collisions can at worst
 * lower the hit rate. A short TTL bounds what changes with time alone (publication windows).
 *
 * Loop thread only. */
#ifndef SJ_NODE_CACHE_H
#define SJ_NODE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sj_cache sj_cache_t;

typedef struct {
  int status;
  const char *ctype;   /* static string */
  const uint8_t *body; /* borrowed until the next cache call */
  size_t len;
} sj_cache_hit_t;

/* slots: rounded up to a power of two (0 = the response cache is off: every get misses; the
 * dependency generations are kept all the same). */
int sj_cache_new(size_t slots, uint64_t ttl_ms, sj_cache_t **out);
void sj_cache_free(sj_cache_t *c);
/* Returns 1 and fills hit when a valid entry for key exists. */
int sj_cache_get(sj_cache_t *c, const char *key, size_t n, uint64_t now_ms, sj_cache_hit_t *hit);
/* Stores a copy of body for key, depending on the index key dep. Silently skips on no memory. */
void sj_cache_put(sj_cache_t *c, const char *key, size_t n, const uint8_t *dep, size_t depn,
                  int status, const char *ctype, const uint8_t *body, size_t len, uint64_t now_ms);
/* An entry carrying index key dep was committed. */
void sj_cache_invalidate(sj_cache_t *c, const uint8_t *dep, size_t depn);
/* The same in two steps, for callers that collect dependencies before their commit lands. */
uint64_t sj_cache_dep_hash(const uint8_t *dep, size_t depn);
void sj_cache_invalidate_hash(sj_cache_t *c, uint64_t dep_hash);
/* The current generation of dependency dep: it changes whenever an entry carrying dep is
 * committed (or everything is invalidated). Other per-subject caches key on it. */
uint64_t sj_cache_dep_gen(const sj_cache_t *c, const uint8_t *dep, size_t depn);
/* Drops every entry (when the dependencies of a commit could not be recorded). */
void sj_cache_invalidate_all(sj_cache_t *c);

typedef struct {
  uint64_t hits, misses, puts, invalidations;
} sj_cache_stats_t;
void sj_cache_stats(const sj_cache_t *c, sj_cache_stats_t *out);

#endif
