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
