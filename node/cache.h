/* node/cache — a response cache for public GET answers (subject lookups and reports, trace lookups
 * and journeys) with exact invalidation on append and an expiry given per answer.
 *
 * Entries are keyed by the request's path and query (XXH3 to find the bucket of a chained hash
 * table, the full key compared behind it) and depend on one index key (or several). Every append bumps a
 * generation counter for each index key its entries carry; an entry filled under an older
 * generation of its dependency is a miss. Generations live in a fixed table indexed by XXH3 of the
 * index key: two keys sharing a slot only cause extra misses, never a stale answer, so an
 * adversary choosing collisions can at worst lower the hit rate.
 *
 * What changes with time alone (publication windows ending, minors turning 18) is the caller's to
 * know: each put carries the entry's expiry, an absolute loop-clock instant (uv_now) at which the
 * answer may first differ; node/disclosure.c derives it from the subject's fold (docs/CONFIG.md
 * `cache-ttl`, docs/DISCLOSURE.md).
 *
 * Bounded two ways: at most max_entries answers and at most max_bytes bytes, counting each
 * answer's key, body and per-entry overhead (the entry struct and an allocator word); the fixed
 * tables (a bucket head and a clock slot per entry allowed, ~20 bytes each) come on top. Over
 * either bound the CLOCK hand evicts: every hit sets an entry's reference bit, the hand clears set
 * bits and evicts the first entry without one (and any expired or invalidated entry it passes), so
 * entries used since the hand last passed stay. CLOCK rather than LRU: a hit only sets a bit
 * (no list to relink), and its hit rate under Zipf and uniform load is within a point of LRU's
 * (bench/results/cache-notes.md).
 *
 * Loop thread only; not thread-safe. */
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

/* max_entries: the most answers kept (0 = the response cache is off: every get misses, puts are
 * dropped; the dependency generations are kept all the same). max_bytes: the most bytes the
 * answers take (keys, bodies, per-entry overhead). Errors: -ENOMEM. */
int sj_cache_new(size_t max_entries, size_t max_bytes, sj_cache_t **out);
void sj_cache_free(sj_cache_t *c);
/* Returns 1 and fills hit when a valid entry for key exists at loop time now_ms: filled under the
 * current generation of its dependency and epoch, and now_ms < its expiry. An entry found invalid
 * is freed at once. */
int sj_cache_get(sj_cache_t *c, const char *key, size_t n, uint64_t now_ms, sj_cache_hit_t *hit);
/* Stores a copy of key and body (replacing any entry for key), depending on the index key dep,
 * valid while the loop clock is before expires_ms (absolute, uv_now's clock). Evicts as needed to
 * stay within both bounds; silently skips when the answer alone exceeds max_bytes, when
 * expires_ms <= now_ms, or on no memory. ctype must be a static string. */
void sj_cache_put(sj_cache_t *c, const char *key, size_t n, const uint8_t *dep, size_t depn,
                  int status, const char *ctype, const uint8_t *body, size_t len, uint64_t now_ms,
                  uint64_t expires_ms);
/* The same with several dependencies, given as their sj_cache_dep_hash values (e.g. every trace
 * code a journey read): the entry is valid while none of them changed. More than
 * SJ_CACHE_MAX_DEPS: not stored. None: valid until its expiry or sj_cache_invalidate_all. */
#define SJ_CACHE_MAX_DEPS 256
void sj_cache_put_deps(sj_cache_t *c, const char *key, size_t n, const uint64_t *dep_hashes,
                       size_t ndeps, int status, const char *ctype, const uint8_t *body, size_t len,
                       uint64_t now_ms, uint64_t expires_ms);
/* An entry carrying index key dep was committed. */
void sj_cache_invalidate(sj_cache_t *c, const uint8_t *dep, size_t depn);
/* The same in two steps, for callers that collect dependencies before their commit lands. */
uint64_t sj_cache_dep_hash(const uint8_t *dep, size_t depn);
void sj_cache_invalidate_hash(sj_cache_t *c, uint64_t dep_hash);
/* The current generation of dependency dep: it changes whenever an entry carrying dep is
 * committed (or everything is invalidated). Other per-subject caches key on it. */
uint64_t sj_cache_dep_gen(const sj_cache_t *c, const uint8_t *dep, size_t depn);
/* Makes every entry invalid (when the dependencies of a commit could not be recorded); they are
 * freed as they are met. */
void sj_cache_invalidate_all(sj_cache_t *c);

typedef struct {
  uint64_t hits, misses, puts, invalidations;
  uint64_t evictions; /* entries dropped to make room (not counting expired or invalidated ones) */
  uint64_t entries;   /* answers held now (some may be invalid, not yet met) */
  uint64_t bytes;     /* bytes they take, as counted against max_bytes */
} sj_cache_stats_t;
void sj_cache_stats(const sj_cache_t *c, sj_cache_stats_t *out);

#endif
