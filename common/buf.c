/* common/buf.c — growable byte buffers, zeroed arrays, big-endian field helpers and hex. */
#include "common/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *sj_zalloc(size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size)
    return NULL;
  size_t bytes = n * size;
  void *p = malloc(bytes > 0 ? bytes : 1);
  if (p != NULL)
    memset(p, 0, bytes);
  return p;
}

void sj_buf_init(sj_buf_t *b) {
  b->p = NULL;
  b->n = b->cap = 0;
}

void sj_buf_deinit(sj_buf_t *b) {
  free(b->p);
  sj_buf_init(b);
}

void sj_buf_reset(sj_buf_t *b) {
  b->n = 0;
  if (b->p)
    b->p[0] = 0;
}

int sj_buf_reserve(sj_buf_t *b, size_t extra) {
  if (extra > SIZE_MAX - b->n - 1)
    return -ENOMEM;
  size_t need = b->n + extra + 1; /* +1 keeps a NUL after the data */
  if (need <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p)
    return -ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

int sj_buf_append(sj_buf_t *b, const void *p, size_t n) {
  int rv = sj_buf_reserve(b, n);
  if (rv)
    return rv;
  if (n)
    memcpy(b->p + b->n, p, n);
  b->n += n;
  b->p[b->n] = 0;
  return 0;
}

int sj_buf_append_str(sj_buf_t *b, const char *s) {
  return sj_buf_append(b, s, strlen(s));
}

int sj_buf_append_u8(sj_buf_t *b, uint8_t v) {
  return sj_buf_append(b, &v, 1);
}

int sj_buf_append_be16(sj_buf_t *b, uint16_t v) {
  uint8_t t[2];
  sj_put_be16(t, v);
  return sj_buf_append(b, t, 2);
}

int sj_buf_append_be32(sj_buf_t *b, uint32_t v) {
  uint8_t t[4];
  sj_put_be32(t, v);
  return sj_buf_append(b, t, 4);
}

int sj_buf_append_be64(sj_buf_t *b, uint64_t v) {
  uint8_t t[8];
  sj_put_be64(t, v);
  return sj_buf_append(b, t, 8);
}

/* Formats into the spare capacity first (made at least 128 bytes), so that the common short
 * case formats once; only a longer result is formatted again after growing. */
int sj_buf_printf(sj_buf_t *b, const char *fmt, ...) {
  va_list ap;
  int rv = sj_buf_reserve(b, 128);
  if (rv)
    return rv;
  size_t room = b->cap - b->n; /* including the NUL */
  va_start(ap, fmt);
  int len = vsnprintf((char *)b->p + b->n, room, fmt, ap);
  va_end(ap);
  if (len < 0) {
    b->p[b->n] = 0;
    return SJ_EINVAL;
  }
  if ((size_t)len >= room) {
    if ((rv = sj_buf_reserve(b, (size_t)len)) != 0) {
      b->p[b->n] = 0;
      return rv;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
  }
  b->n += (size_t)len;
  return 0;
}

void sj_put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

void sj_put_be32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

void sj_put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

uint16_t sj_get_be16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t sj_get_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t sj_get_be64(const uint8_t *p) {
  return ((uint64_t)sj_get_be32(p) << 32) | sj_get_be32(p + 4);
}

void sj_hex_encode(const uint8_t *p, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int sj_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n) {
  if (hexlen != 2 * n)
    return SJ_EFORMAT;
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return SJ_EFORMAT;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}
