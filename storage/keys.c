/* Row keys of the log store. Every integer is big-endian so that RocksDB's bytewise order is the
 * numeric order: a region's entries, a tree level's nodes and a region's checkpoints are each one
 * contiguous, ordered range. docs/STORAGE.md lists the layouts. */
#include "storage/storage_int.h"

#include <string.h>

void store_entry_key(uint8_t out[ENTRY_KEY_LEN], uint32_t region, uint64_t seq) {
  sj_put_be32(out, region);
  sj_put_be64(out + 4, seq);
}

void store_tree_key(uint8_t out[TREE_KEY_LEN], uint32_t region, unsigned level, uint64_t index) {
  sj_put_be32(out, region);
  out[4] = (uint8_t)level;
  sj_put_be64(out + 5, index);
}

void store_ckpt_key(uint8_t out[CKPT_KEY_LEN], uint32_t region, uint64_t size) {
  sj_put_be32(out, region);
  sj_put_be64(out + 4, size);
}

/* Internal meta keys start with 0x00; keys given through the API are C strings and so can never
 * start with it (the empty key "" is a different, zero-length key). */
void store_head_key(uint8_t out[HEAD_KEY_LEN], uint32_t region) {
  out[0] = 0x00;
  out[1] = 'h';
  sj_put_be32(out + 2, region);
}

/* The region's index watermark: every entry below it has its index rows in the index families. */
void store_wmark_key(uint8_t out[WMARK_KEY_LEN], uint32_t region) {
  out[0] = 0x00;
  out[1] = 'i';
  sj_put_be32(out + 2, region);
}

size_t sj_store_index_key(uint8_t type, const uint8_t *p, size_t n, uint8_t *out) {
  if (n > SJ_ENTRY_MAX_KEY_LEN)
    return 0;
  out[0] = type;
  if (n > 0)
    memcpy(out + 1, p, n);
  return 1 + n;
}

/* The length comes first so that the rows of key K never share a prefix with the rows of a
 * longer key K || X: a scan for K sees exactly K's rows. */
size_t store_index_prefix(uint8_t *out, const uint8_t *ikey, size_t iklen) {
  sj_put_be16(out, (uint16_t)iklen);
  memcpy(out + 2, ikey, iklen);
  return 2 + iklen;
}

size_t store_index_row(uint8_t *out, const uint8_t *ikey, size_t iklen, uint32_t region,
                       uint64_t seq) {
  size_t n = store_index_prefix(out, ikey, iklen);
  sj_put_be32(out + n, region);
  sj_put_be64(out + n + 4, seq);
  return n + 12;
}

/* ---- Index row values: the entry's time, and a copy of what a lookup reads of the entry ------
 * (why: a lookup then reads one contiguous range of the index family instead of one data block
 * per entry of the entries and facts families, wherever their seq put them; docs/STORAGE.md). */

int store_ival_copies(size_t hn, size_t bn, size_t nkeys) {
  size_t one = IVAL_HDR + SJ_STORE_FACTS_MAX + hn + bn;
  return hn <= IVAL_COPY_MAX && bn <= IVAL_COPY_MAX && one <= IVAL_COPY_MAX &&
         nkeys <= IVAL_ENTRY_MAX / one;
}

size_t store_ival_size(size_t hn, const uint8_t *body, size_t bn, size_t facts_n) {
  return IVAL_HDR + facts_n + hn + (body != NULL ? bn : 0);
}

size_t store_ival_encode(uint8_t *out, uint64_t time_ms, const uint8_t leaf[SJ_HASH_LEN],
                         const uint8_t *facts, size_t facts_n, const uint8_t *hdr, size_t hn,
                         const uint8_t *body, size_t bn) {
  sj_put_be64(out, time_ms);
  if (hdr == NULL)
    return IVAL_TIME;
  uint8_t *p = out + IVAL_TIME;
  p[0] = body != NULL ? ENTRY_FLAG_BODY : 0;
  sj_put_be16(p + 1, (uint16_t)facts_n);
  sj_put_be32(p + 3, (uint32_t)hn);
  memcpy(p + 7, leaf, SJ_HASH_LEN);
  p = out + IVAL_HDR;
  if (facts_n > 0)
    memcpy(p, facts, facts_n);
  memcpy(p + facts_n, hdr, hn);
  if (body != NULL && bn > 0)
    memcpy(p + facts_n + hn, body, bn);
  return store_ival_size(hn, body, bn, facts_n);
}

int store_ival_decode(const uint8_t *v, size_t n, uint64_t *time_ms, sj_store_entry_t *e,
                      int *has_copy) {
  if (n == IVAL_TIME) {
    *time_ms = sj_get_be64(v);
    *has_copy = 0;
    return 0;
  }
  if (n < IVAL_HDR || (v[IVAL_TIME] & ~ENTRY_FLAG_BODY) != 0)
    return store_corrupt("index row value");
  size_t fn = sj_get_be16(v + IVAL_TIME + 1), hn = sj_get_be32(v + IVAL_TIME + 3);
  int held = (v[IVAL_TIME] & ENTRY_FLAG_BODY) != 0;
  size_t room = n - IVAL_HDR;
  if (fn > SJ_STORE_FACTS_MAX || fn > room || hn == 0 || hn > room - fn ||
      (!held && room - fn != hn))
    return store_corrupt("index row value lengths");
  const uint8_t *p = v + IVAL_HDR;
  *e = (sj_store_entry_t){.found = 1,
                          .header = p + fn,
                          .hn = hn,
                          .body = p + fn + hn,
                          .bn = room - fn - hn,
                          .has_body = held,
                          .leaf = v + IVAL_TIME + 7,
                          .facts = p,
                          .facts_n = fn};
  *time_ms = sj_get_be64(v);
  *has_copy = 1;
  return 0;
}

/* ---- Prefix extractor: lets RocksDB keep prefix bloom filters on the index families, so a
 * lookup of a key that is not in a file skips the file without reading a data block. */

static char *prefix_transform(void *state, const char *key, size_t n, size_t *dst_len) {
  (void)state;
  (void)n; /* in_domain has checked that the whole prefix is there */
  *dst_len = 2u + sj_get_be16((const uint8_t *)key);
  return (char *)key;
}

static unsigned char prefix_in_domain(void *state, const char *key, size_t n) {
  (void)state;
  return n >= 2 && n >= 2u + sj_get_be16((const uint8_t *)key);
}

static unsigned char prefix_in_range(void *state, const char *key, size_t n) {
  (void)state;
  (void)key;
  (void)n;
  return 0; /* not used by RocksDB 7.8; 0 is always a correct answer */
}

static const char *prefix_name(void *state) {
  (void)state;
  return "sj.index_prefix.v1"; /* recorded in the SST files: never change it for this layout */
}

static void prefix_destroy(void *state) {
  (void)state;
}

rocksdb_slicetransform_t *store_index_prefix_extractor(void) {
  return rocksdb_slicetransform_create(NULL, prefix_destroy, prefix_transform, prefix_in_domain,
                                       prefix_in_range, prefix_name);
}
