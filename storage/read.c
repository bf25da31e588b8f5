/* Entry reads and index scans. */
#include "storage/storage_int.h"

#include <string.h>

static int committed_size(sj_store_t *s, uint32_t region, uint64_t *size) {
  store_region_t *r = store_region_find(s, region);
  *size = 0;
  if (r != NULL) {
    pthread_rwlock_rdlock(&r->lock);
    *size = r->size;
    pthread_rwlock_unlock(&r->lock);
  }
  return 0;
}

/* Splits an entry row value; every length is checked against the bytes there (disk is input). */
static int parse_entry(const uint8_t *v, size_t n, sj_bytes_t *hdr, sj_bytes_t *body,
                       int *has_body) {
  if (n < ENTRY_VAL_HDR || (v[0] & ~ENTRY_FLAG_BODY) != 0)
    return store_corrupt("entry row header");
  uint32_t hn = sj_get_be32(v + 1);
  if (hn > n - ENTRY_VAL_HDR)
    return store_corrupt("entry row header length");
  *has_body = (v[0] & ENTRY_FLAG_BODY) != 0;
  if (!*has_body && n - ENTRY_VAL_HDR != hn)
    return store_corrupt("withheld entry row carries a body");
  hdr->p = v + ENTRY_VAL_HDR;
  hdr->n = hn;
  body->p = v + ENTRY_VAL_HDR + hn;
  body->n = n - ENTRY_VAL_HDR - hn;
  return 0;
}

/* Replaces out with bytes. */
static int buf_set(sj_buf_t *out, sj_bytes_t bytes) {
  sj_buf_reset(out);
  return sj_buf_append(out, bytes.p, bytes.n);
}

int sj_store_get_entry(sj_store_t *s, uint32_t region, uint64_t seq, sj_buf_t *header,
                       sj_buf_t *body, int *has_body) {
  uint8_t k[ENTRY_KEY_LEN];
  uint64_t size;
  char *v = NULL;
  size_t n = 0;
  sj_bytes_t h = {NULL, 0}, bd = {NULL, 0};
  int held = 0;
  committed_size(s, region, &size);
  if (seq >= size)
    return SJ_ENOTFOUND;
  store_entry_key(k, region, seq);
  int rv = store_get(s, CF_ENTRIES, k, sizeof k, &v, &n);
  if (rv == 0 && v == NULL)
    rv = store_corrupt("entry below the head is missing");
  if (rv == 0)
    rv = parse_entry((const uint8_t *)v, n, &h, &bd, &held);
  /* Only -ENOMEM can fail from here on (then header may already hold the new bytes). */
  if (rv == 0)
    rv = buf_set(header, h);
  if (rv == 0 && body != NULL)
    rv = buf_set(body, bd);
  if (rv == 0 && has_body != NULL)
    *has_body = held;
  rocksdb_free(v);
  return rv;
}

/* The smallest key greater than every key starting with prefix: the prefix "plus one". Returns 0
 * when no such key exists (the prefix is all 0xFF), which cannot happen for index prefixes. */
static size_t prefix_successor(const uint8_t *p, size_t n, uint8_t *out) {
  memcpy(out, p, n);
  while (n > 0) {
    if (out[n - 1] != 0xFF) {
      out[n - 1]++;
      return n;
    }
    n--;
  }
  return 0;
}

static int scan_rows(sj_store_t *s, rocksdb_iterator_t *it, size_t pn, const sj_entry_ref_t *after,
                     sj_store_scan_fn fn, void *ctx) {
  size_t kn = 0, vn = 0;
  uint32_t size_region = 0;
  uint64_t size = 0;
  int have_size = 0, rv = 0;
  for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kn);
    const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vn);
    if (kn != pn + 12 || vn != 8)
      return store_corrupt("index row");
    uint32_t region = sj_get_be32(k + pn);
    uint64_t seq = sj_get_be64(k + pn + 4);
    if (after != NULL && region == after->region && seq == after->seq)
      continue; /* the seek landed on the row to resume after */
    if (!have_size || region != size_region) {
      committed_size(s, region, &size);
      size_region = region;
      have_size = 1;
    }
    if (seq >= size)
      continue; /* written by a commit that has not published its head yet */
    rv = fn(ctx, region, seq, sj_get_be64(v));
    if (rv != 0)
      return rv > 0 ? 0 : rv;
  }
  return 0;
}

int sj_store_scan(sj_store_t *s, sj_index_t idx, const uint8_t *key, size_t keylen,
                  const sj_entry_ref_t *after, sj_store_scan_fn fn, void *ctx) {
  uint8_t start[INDEX_ROW_MAX], upper[2 + INDEX_KEY_MAX];
  char *err = NULL;
  if (keylen == 0 || keylen > INDEX_KEY_MAX || (idx != SJ_INDEX_SUBJECTS && idx != SJ_INDEX_TRACE))
    return SJ_EINVAL;
  size_t pn = store_index_prefix(start, key, keylen);
  size_t sn = after != NULL ? store_index_row(start, key, keylen, after->region, after->seq) : pn;
  size_t un = prefix_successor(start, pn, upper);
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)upper, un);
  rocksdb_readoptions_set_prefix_same_as_start(ro, 1);
  rocksdb_iterator_t *it =
      rocksdb_create_iterator_cf(s->db, ro, s->cf[idx == SJ_INDEX_TRACE ? CF_TRACE : CF_SUBJECTS]);
  rocksdb_iter_seek(it, (const char *)start, sn);
  int rv = scan_rows(s, it, pn, after, fn, ctx);
  rocksdb_iter_get_error(it, &err);
  if (err != NULL && rv == 0)
    rv = store_rocks_error(err);
  else
    rocksdb_free(err);
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  return rv;
}
