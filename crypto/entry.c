/* crypto/entry.c — the log entry header codec (version 1, docs/FORMAT.md) and the frames of the
 * entries stream.
 *
 * Header layout, all integers big-endian:
 *    0  u8   version (1)            53 u8   kind             92     type[type_len]
 *    1  u32  region                 54 u8   disclosure       92+t   u16 nkeys
 *    5  u64  seq                    55 [32] body SHA-256     94+t   keys: u8 type, u16 len, bytes
 *   13  u64  time_ms                87 u32  body length
 *   21  [32] previous leaf hash     91 u8   type_len
 * The decoder trusts nothing: each length is checked against the bytes left before it is used. */
#include "crypto/crypto_int.h"

#include <string.h>

#define OFF_KIND 53
#define OFF_TYPE_LEN 91
#define FIXED_LEN 92 /* bytes before the type */

static int kind_ok(unsigned k) {
  return k == SJ_KIND_CREDIT || k == SJ_KIND_TRACE;
}

static int disclosure_ok(unsigned d) {
  return d <= SJ_DISCLOSE_SUBJECT;
}

/* A PERSON key is an HMAC-SHA256 output, so exactly 32 bytes; others are 1..MAX_KEY_LEN. */
static int key_ok(unsigned type, size_t len) {
  if (type < SJ_KEY_USCC || type > SJ_KEY_OTHER_ID)
    return 0;
  if (type == SJ_KEY_PERSON)
    return len == SJ_HASH_LEN;
  return len >= 1 && len <= SJ_ENTRY_MAX_KEY_LEN;
}

static int zero_hash(const uint8_t h[SJ_HASH_LEN]) {
  uint8_t acc = 0;
  for (int i = 0; i < SJ_HASH_LEN; i++)
    acc |= h[i];
  return acc == 0;
}

/* The rules the encoder enforces and the decoder re-checks on the fields it read. */
static int fields_ok(const sj_entry_header_t *h) {
  return h->region >= 100000 && h->region <= 999999 && kind_ok(h->kind) &&
         disclosure_ok(h->disclosure) && h->type_len >= 1 && h->type_len <= SJ_ENTRY_MAX_TYPE_LEN &&
         (h->seq != 0 || zero_hash(h->prev));
}

static size_t encoded_len(const sj_entry_header_t *h) {
  size_t n = FIXED_LEN + h->type_len + 2;
  for (uint16_t i = 0; i < h->nkeys; i++)
    n += 3 + h->keys[i].len;
  return n;
}

int sj_entry_encode(const sj_entry_header_t *h, sj_buf_t *out) {
  if (h->version != SJ_ENTRY_VERSION || !fields_ok(h) || h->nkeys > SJ_ENTRY_MAX_KEYS)
    return SJ_EINVAL;
  for (uint16_t i = 0; i < h->nkeys; i++)
    if (!key_ok(h->keys[i].type, h->keys[i].len))
      return SJ_EINVAL;
  size_t len = encoded_len(h);
  if (len > SJ_ENTRY_MAX_HEADER)
    return SJ_EINVAL;
  int rv = sj_buf_reserve(out, len);
  if (rv)
    return rv;
  /* Room is reserved: the appends below cannot fail, so out never holds half a header. */
  uint8_t fixed[FIXED_LEN];
  fixed[0] = h->version;
  sj_put_be32(fixed + 1, h->region);
  sj_put_be64(fixed + 5, h->seq);
  sj_put_be64(fixed + 13, h->time_ms);
  memcpy(fixed + 21, h->prev, SJ_HASH_LEN);
  fixed[OFF_KIND] = h->kind;
  fixed[OFF_KIND + 1] = h->disclosure;
  memcpy(fixed + 55, h->body_hash, SJ_HASH_LEN);
  sj_put_be32(fixed + 87, h->body_len);
  fixed[OFF_TYPE_LEN] = h->type_len;
  sj_buf_append(out, fixed, sizeof fixed);
  sj_buf_append(out, h->type, h->type_len);
  sj_buf_append_be16(out, h->nkeys);
  for (uint16_t i = 0; i < h->nkeys; i++) {
    sj_buf_append_u8(out, h->keys[i].type);
    sj_buf_append_be16(out, h->keys[i].len);
    sj_buf_append(out, h->keys[i].p, h->keys[i].len);
  }
  return 0;
}

/* Reads the index keys from p[0..n), which must be consumed exactly. */
static int decode_keys(const uint8_t *p, size_t n, uint16_t nkeys, sj_index_key_t *keys) {
  size_t o = 0;
  for (uint16_t i = 0; i < nkeys; i++) {
    if (n - o < 3)
      return SJ_ETRUNC;
    uint8_t type = p[o];
    uint16_t len = sj_get_be16(p + o + 1);
    o += 3;
    if (!key_ok(type, len))
      return SJ_EFORMAT;
    if (n - o < len)
      return SJ_ETRUNC;
    keys[i].type = type;
    keys[i].len = len;
    keys[i].p = p + o;
    o += len;
  }
  return o == n ? 0 : SJ_EFORMAT; /* trailing bytes */
}

/* The fixed part, the type and the key count; *off receives where the keys start. */
static int decode_head(const uint8_t *p, size_t n, sj_entry_header_t *h, size_t *off) {
  if (n < 1)
    return SJ_ETRUNC;
  if (p[0] != SJ_ENTRY_VERSION)
    return SJ_EVERSION;
  if (n < FIXED_LEN)
    return SJ_ETRUNC;
  memset(h, 0, sizeof *h);
  h->version = p[0];
  h->region = sj_get_be32(p + 1);
  h->seq = sj_get_be64(p + 5);
  h->time_ms = sj_get_be64(p + 13);
  memcpy(h->prev, p + 21, SJ_HASH_LEN);
  h->kind = p[OFF_KIND];
  h->disclosure = p[OFF_KIND + 1];
  memcpy(h->body_hash, p + 55, SJ_HASH_LEN);
  h->body_len = sj_get_be32(p + 87);
  h->type_len = p[OFF_TYPE_LEN];
  if (!fields_ok(h))
    return SJ_EFORMAT;
  if (n - FIXED_LEN < (size_t)h->type_len + 2)
    return SJ_ETRUNC;
  h->type = (const char *)p + FIXED_LEN;
  h->nkeys = sj_get_be16(p + FIXED_LEN + h->type_len);
  *off = FIXED_LEN + h->type_len + 2;
  return 0;
}

int sj_entry_decode(const uint8_t *p, size_t n, sj_entry_header_t *out, sj_index_key_t *keys,
                    size_t keys_cap) {
  if (n > SJ_ENTRY_MAX_HEADER)
    return SJ_ETOOBIG;
  sj_entry_header_t h;
  size_t off;
  int rv = decode_head(p, n, &h, &off);
  if (rv)
    return rv;
  if (h.nkeys > SJ_ENTRY_MAX_KEYS)
    return SJ_EFORMAT;
  if (h.nkeys > keys_cap)
    return SJ_ETOOBIG;
  if ((rv = decode_keys(p + off, n - off, h.nkeys, keys)) != 0)
    return rv;
  h.keys = keys;
  *out = h;
  return 0;
}

int sj_entry_check_body(const sj_entry_header_t *h, const uint8_t *body, size_t n) {
  if (n != h->body_len)
    return SJ_EVERIFY;
  uint8_t d[SJ_HASH_LEN];
  sj_sha256(body, n, d);
  return sodium_memcmp(d, h->body_hash, SJ_HASH_LEN) == 0 ? 0 : SJ_EVERIFY;
}

/* ---- Frames ---------------------------------------------------------------------------------- */

int sj_frame_append(sj_buf_t *out, const uint8_t *hdr, size_t hn, const uint8_t *body, size_t bn,
                    int has_body) {
  if (hn == 0 || hn > SJ_ENTRY_MAX_HEADER || (has_body && bn >= SJ_FRAME_NO_BODY))
    return SJ_EINVAL;
  size_t total = 8 + hn + (has_body ? bn : 0);
  int rv = sj_buf_reserve(out, total);
  if (rv)
    return rv;
  sj_buf_append_be32(out, (uint32_t)hn);
  sj_buf_append(out, hdr, hn);
  sj_buf_append_be32(out, has_body ? (uint32_t)bn : SJ_FRAME_NO_BODY);
  if (has_body)
    sj_buf_append(out, body, bn);
  return 0;
}

long sj_frame_next(const uint8_t *p, size_t n, size_t max_body, sj_bytes_t *hdr, sj_bytes_t *body,
                   int *has_body) {
  if (n < 4)
    return 0;
  uint32_t hn = sj_get_be32(p);
  if (hn == 0)
    return SJ_EFORMAT;
  if (hn > SJ_ENTRY_MAX_HEADER)
    return SJ_ETOOBIG;
  if (n - 4 < (size_t)hn + 4)
    return 0;
  uint32_t bn = sj_get_be32(p + 4 + hn);
  int hb = bn != SJ_FRAME_NO_BODY;
  if (hb && bn > max_body)
    return SJ_ETOOBIG;
  size_t total = 8 + (size_t)hn + (hb ? bn : 0);
  if (n < total)
    return 0;
  hdr->p = p + 4;
  hdr->n = hn;
  body->p = hb ? p + 8 + hn : NULL;
  body->n = hb ? bn : 0;
  *has_body = hb;
  return (long)total;
}
