/* tests/test_cache.c — the lookup response cache (node/cache.c): bounds in entries and bytes,
 * CLOCK eviction, per-entry expiry, generation and epoch invalidation, colliding keys. */
#include "node/cache.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t DEP_A[] = "\x01"
                               "91310115MA1K00007Q";
static const uint8_t DEP_B[] = "\x01"
                               "91310115MA1K00008Y";

static void put(sj_cache_t *c, const char *key, const uint8_t *dep, const char *body, uint64_t now,
                uint64_t expires) {
  sj_cache_put(c, key, strlen(key), dep, sizeof DEP_A - 1, 200, "application/json",
               (const uint8_t *)body, strlen(body), now, expires);
}

/* 1 with the body compared when key is cached at now; 0 when it misses. */
static int has(sj_cache_t *c, const char *key, const char *body, uint64_t now) {
  sj_cache_hit_t hit;
  if (!sj_cache_get(c, key, strlen(key), now, &hit))
    return 0;
  ck_assert_int_eq(hit.status, 200);
  ck_assert_str_eq(hit.ctype, "application/json");
  ck_assert_uint_eq(hit.len, strlen(body));
  ck_assert(!memcmp(hit.body, body, hit.len));
  return 1;
}

static sj_cache_stats_t stats(const sj_cache_t *c) {
  sj_cache_stats_t st;
  sj_cache_stats(c, &st);
  return st;
}

START_TEST(an_answer_is_served_until_its_own_expiry) {
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(16, 1 << 20, &c), 0);
  put(c, "/v1/subjects/a", DEP_A, "{\"a\":1}", 1000, 5000);
  put(c, "/v1/subjects/b", DEP_B, "{\"b\":1}", 1000, 1000000);
  ck_assert(has(c, "/v1/subjects/a", "{\"a\":1}", 1000));
  ck_assert(has(c, "/v1/subjects/a", "{\"a\":1}", 4999));
  ck_assert(!has(c, "/v1/subjects/a", "{\"a\":1}", 5000)); /* its expiry, not b's */
  ck_assert(has(c, "/v1/subjects/b", "{\"b\":1}", 5000));
  ck_assert_uint_eq(stats(c).entries, 1);            /* the expired one was freed when met */
  put(c, "/v1/subjects/c", DEP_A, "{}", 1000, 1000); /* already expired: not kept */
  ck_assert(!has(c, "/v1/subjects/c", "{}", 1000));
  sj_cache_stats_t st = stats(c);
  ck_assert_uint_eq(st.hits, 3);
  ck_assert_uint_eq(st.misses, 2);
  ck_assert_uint_eq(st.puts, 2);
  sj_cache_free(c);
}
END_TEST

START_TEST(an_append_invalidates_its_dependents_and_invalidate_all_everything) {
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(16, 1 << 20, &c), 0);
  uint64_t gen = sj_cache_dep_gen(c, DEP_A, sizeof DEP_A - 1);
  put(c, "/v1/subjects/a", DEP_A, "a", 0, 100);
  put(c, "/v1/subjects/a?limit=1", DEP_A, "a1", 0, 100);
  put(c, "/v1/subjects/b", DEP_B, "b", 0, 100);
  sj_cache_invalidate(c, DEP_A, sizeof DEP_A - 1);
  ck_assert_uint_ne(sj_cache_dep_gen(c, DEP_A, sizeof DEP_A - 1), gen);
  ck_assert(!has(c, "/v1/subjects/a", "a", 1));
  ck_assert(!has(c, "/v1/subjects/a?limit=1", "a1", 1));
  ck_assert(has(c, "/v1/subjects/b", "b", 1));
  put(c, "/v1/subjects/a", DEP_A, "a2", 1, 100); /* filled again after the append: valid */
  ck_assert(has(c, "/v1/subjects/a", "a2", 2));
  /* the same in two steps */
  sj_cache_invalidate_hash(c, sj_cache_dep_hash(DEP_B, sizeof DEP_B - 1));
  ck_assert(!has(c, "/v1/subjects/b", "b", 2));
  ck_assert(has(c, "/v1/subjects/a", "a2", 2));
  gen = sj_cache_dep_gen(c, DEP_A, sizeof DEP_A - 1);
  sj_cache_invalidate_all(c);
  ck_assert_uint_ne(sj_cache_dep_gen(c, DEP_A, sizeof DEP_A - 1), gen);
  ck_assert(!has(c, "/v1/subjects/a", "a2", 3));
  put(c, "/v1/subjects/a", DEP_A, "a3", 3, 100);
  ck_assert(has(c, "/v1/subjects/a", "a3", 4));
  ck_assert_uint_eq(stats(c).invalidations, 3);
  sj_cache_free(c);
}
END_TEST

START_TEST(zero_entries_turns_the_cache_off_but_keeps_generations) {
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(0, 1 << 20, &c), 0);
  put(c, "/v1/subjects/a", DEP_A, "a", 0, 100);
  ck_assert(!has(c, "/v1/subjects/a", "a", 1));
  sj_cache_stats_t st = stats(c);
  ck_assert_uint_eq(st.puts, 0);
  ck_assert_uint_eq(st.entries, 0);
  ck_assert_uint_eq(st.bytes, 0);
  uint64_t gen = sj_cache_dep_gen(c, DEP_A, sizeof DEP_A - 1);
  sj_cache_invalidate(c, DEP_A, sizeof DEP_A - 1);
  ck_assert_uint_ne(sj_cache_dep_gen(c, DEP_A, sizeof DEP_A - 1), gen);
  sj_cache_free(c);
}
END_TEST

START_TEST(an_answer_with_several_dependencies_goes_when_any_of_them_changes) {
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(16, 1 << 20, &c), 0);
  static const uint8_t DEP_C[] = "\x03urn:epc:id:sscc:0614141.1234567890";
  uint64_t deps[3] = {sj_cache_dep_hash(DEP_A, sizeof DEP_A - 1),
                      sj_cache_dep_hash(DEP_B, sizeof DEP_B - 1),
                      sj_cache_dep_hash(DEP_C, sizeof DEP_C - 1)};
  const char *k = "/v1/trace/x/journey", *body = "{\"steps\":[]}";
  for (int which = 0; which < 3; which++) { /* invalidating any one of the three ends it */
    sj_cache_put_deps(c, k, strlen(k), deps, 3, 200, "application/json", (const uint8_t *)body,
                      strlen(body), 0, 100);
    ck_assert(has(c, k, body, 1));
    sj_cache_invalidate_hash(c, deps[which]);
    ck_assert(!has(c, k, body, 1));
  }
  /* One dependency more costs its slot and generation in the byte count. */
  sj_cache_put_deps(c, k, strlen(k), deps, 1, 200, "application/json", (const uint8_t *)body,
                    strlen(body), 0, 100);
  uint64_t one = stats(c).bytes;
  sj_cache_put_deps(c, k, strlen(k), deps, 3, 200, "application/json", (const uint8_t *)body,
                    strlen(body), 0, 100);
  ck_assert_uint_eq(stats(c).entries, 1);
  ck_assert_uint_eq(stats(c).bytes - one, 2 * 16);
  /* No dependency: only the expiry and the epoch end it. */
  sj_cache_put_deps(c, "/n", 2, NULL, 0, 200, "application/json", (const uint8_t *)"{}", 2, 0, 50);
  sj_cache_invalidate_hash(c, deps[0]);
  ck_assert(has(c, "/n", "{}", 49));
  ck_assert(!has(c, "/n", "{}", 50));
  /* Too many dependencies: not stored. */
  uint64_t many[SJ_CACHE_MAX_DEPS + 1];
  for (size_t i = 0; i <= SJ_CACHE_MAX_DEPS; i++)
    many[i] = i;
  sj_cache_put_deps(c, "/m", 2, many, SJ_CACHE_MAX_DEPS + 1, 200, "application/json",
                    (const uint8_t *)"{}", 2, 0, 100);
  ck_assert(!has(c, "/m", "{}", 1));
  sj_cache_put_deps(c, "/m", 2, many, SJ_CACHE_MAX_DEPS, 200, "application/json",
                    (const uint8_t *)"{}", 2, 0, 100);
  ck_assert(has(c, "/m", "{}", 1));
  sj_cache_invalidate_hash(c, many[SJ_CACHE_MAX_DEPS - 1]);
  ck_assert(!has(c, "/m", "{}", 1));
  sj_cache_free(c);
}
END_TEST

START_TEST(bytes_count_keys_bodies_and_overhead_and_a_replacement_frees_its_bytes) {
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(16, 1 << 20, &c), 0);
  put(c, "/k", DEP_A, "", 0, 100);
  uint64_t empty = stats(c).bytes; /* the per-entry overhead and the key */
  ck_assert_uint_gt(empty, 2);
  put(c, "/k", DEP_A, "0123456789", 0, 100); /* replaces: one entry, 10 bytes more */
  ck_assert_uint_eq(stats(c).entries, 1);
  ck_assert_uint_eq(stats(c).bytes, empty + 10);
  put(c, "/k", DEP_A, "01234", 0, 100);
  ck_assert_uint_eq(stats(c).bytes, empty + 5);
  ck_assert(has(c, "/k", "01234", 1));
  put(c, "/kk", DEP_A, "01234", 0, 100); /* a longer key counts too */
  ck_assert_uint_eq(stats(c).bytes, 2 * empty + 10 + 1);
  sj_cache_invalidate_all(c);
  ck_assert(!has(c, "/k", "01234", 1)); /* freed when met */
  ck_assert_uint_eq(stats(c).bytes, empty + 5 + 1);
  sj_cache_free(c);
}
END_TEST

START_TEST(the_byte_bound_holds_and_evicts_what_was_not_used) {
  char body[1000], key[32];
  memset(body, 'x', sizeof body - 1);
  body[sizeof body - 1] = 0;
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(1000, 16 * 1024, &c), 0); /* bytes bind first: ~14 answers */
  put(c, "/hot", DEP_A, body, 0, 1000000);
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "/cold/%d", i);
    put(c, key, DEP_B, body, 0, 1000000);
    ck_assert(has(c, "/hot", body, 1)); /* used between every two puts: never evicted */
    ck_assert_uint_le(stats(c).bytes, 16 * 1024);
  }
  sj_cache_stats_t st = stats(c);
  ck_assert_uint_ge(st.entries, 10);
  ck_assert_uint_ge(st.evictions, 200 - st.entries);
  int held = 0;
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "/cold/%d", i);
    held += has(c, key, body, 1);
  }
  ck_assert_int_eq(held, (int)st.entries - 1);
  ck_assert(has(c, "/cold/199", body, 1)); /* the newest stays */
  /* an answer larger than the whole bound is not kept, and evicts nothing */
  char *big = malloc(20000);
  memset(big, 'y', 19999);
  big[19999] = 0;
  put(c, "/big", DEP_A, big, 0, 1000000);
  ck_assert(!has(c, "/big", big, 1));
  ck_assert_uint_eq(stats(c).entries, st.entries);
  free(big);
  sj_cache_free(c);
}
END_TEST

START_TEST(the_entry_bound_holds_and_expired_entries_go_first) {
  char key[32];
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(4, 1 << 20, &c), 0);
  put(c, "/a", DEP_A, "a", 0, 1000);
  put(c, "/b", DEP_A, "b", 0, 10); /* expires at 10 */
  put(c, "/c", DEP_A, "c", 0, 1000);
  put(c, "/d", DEP_A, "d", 0, 1000);
  ck_assert(has(c, "/a", "a", 1));
  ck_assert(has(c, "/c", "c", 1));
  ck_assert(has(c, "/d", "d", 1));
  put(c, "/e", DEP_A, "e", 20, 1000); /* full: /b (expired) goes, not an eviction */
  ck_assert_uint_eq(stats(c).entries, 4);
  ck_assert_uint_eq(stats(c).evictions, 0);
  ck_assert(has(c, "/a", "a", 21) && has(c, "/c", "c", 21) && has(c, "/d", "d", 21));
  ck_assert(has(c, "/e", "e", 21));
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "/n/%d", i);
    put(c, key, DEP_B, "n", 30, 1000);
    ck_assert(has(c, "/a", "a", 30)); /* the one used every time stays */
    ck_assert_uint_le(stats(c).entries, 4);
  }
  sj_cache_free(c);
}
END_TEST

/* Keys that share a bucket are told apart by the full key: the table has as many buckets as
 * entries allowed, so 64 keys in 64 buckets share some (for any hash but a perfect one). */
START_TEST(keys_sharing_a_bucket_are_told_apart) {
  char key[32], body[32];
  sj_cache_t *c;
  ck_assert_int_eq(sj_cache_new(64, 1 << 20, &c), 0);
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "/v1/subjects/%d", i);
    snprintf(body, sizeof body, "body %d", i);
    put(c, key, DEP_A, body, 0, 100);
  }
  ck_assert_uint_eq(stats(c).entries, 64);
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "/v1/subjects/%d", i);
    snprintf(body, sizeof body, "body %d", i);
    ck_assert(has(c, key, body, 1));
  }
  ck_assert(!has(c, "/v1/subjects/64", "", 1));
  /* removing one of a chain leaves the others */
  snprintf(key, sizeof key, "/v1/subjects/%d", 7);
  put(c, key, DEP_A, "new", 0, 1); /* replaced, expiring at 1 */
  ck_assert(!has(c, key, "new", 1));
  for (int i = 0; i < 64; i++) {
    snprintf(key, sizeof key, "/v1/subjects/%d", i);
    snprintf(body, sizeof body, "body %d", i);
    ck_assert_int_eq(has(c, key, body, 1), i != 7);
  }
  sj_cache_free(c);
}
END_TEST

static Suite *cache_suite(void) {
  Suite *s = suite_create("cache");
  TCase *t = tcase_create("validity");
  tcase_add_test(t, an_answer_is_served_until_its_own_expiry);
  tcase_add_test(t, an_append_invalidates_its_dependents_and_invalidate_all_everything);
  tcase_add_test(t, zero_entries_turns_the_cache_off_but_keeps_generations);
  suite_add_tcase(s, t);
  t = tcase_create("bounds");
  tcase_add_test(t, an_answer_with_several_dependencies_goes_when_any_of_them_changes);
  tcase_add_test(t, bytes_count_keys_bodies_and_overhead_and_a_replacement_frees_its_bytes);
  tcase_add_test(t, the_byte_bound_holds_and_evicts_what_was_not_used);
  tcase_add_test(t, the_entry_bound_holds_and_expired_entries_go_first);
  tcase_add_test(t, keys_sharing_a_bucket_are_told_apart);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(cache_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
