/* crypto/base64.c — RFC 4648 base64, standard alphabet, padded. Decoding is strict: length a
 * multiple of four, padding only at the end, no whitespace, and the unused bits of the last
 * quantum zero, so every byte string has exactly one accepted encoding. */
#include "crypto/crypto_int.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sj_base64_len(size_t n) {
  return (n + 2) / 3 * 4 + 1;
}

size_t sj_base64_encode(const uint8_t *p, size_t n, char *out) {
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
    out[o++] = alphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = 0;
  return o;
}

static int sextet(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Decoded size of a well-formed encoding of n characters, from its padding. */
static size_t decoded_len(const char *s, size_t n) {
  size_t len = n / 4 * 3;
  if (n && s[n - 1] == '=')
    len--;
  if (n > 1 && s[n - 2] == '=')
    len--;
  return len;
}

int sj_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen) {
  if (n % 4)
    return SJ_EFORMAT;
  size_t len = decoded_len(s, n);
  size_t full = len / 3; /* quanta without padding */
  size_t rest = len % 3; /* bytes in the padded last quantum: 0, 1 or 2 */
  for (size_t q = 0; q < n / 4; q++) {
    int pads = q == n / 4 - 1 && rest ? (int)(3 - rest) : 0;
    for (int j = 0; j < 4 - pads; j++)
      if (sextet(s[4 * q + j]) < 0)
        return SJ_EFORMAT; /* also catches '=' anywhere but the padding */
  }
  if ((rest == 1 && (sextet(s[n - 3]) & 15)) || (rest == 2 && (sextet(s[n - 2]) & 3)))
    return SJ_EFORMAT; /* non-zero unused bits: a second encoding of the same bytes */
  if (len > cap)
    return SJ_ETOOBIG;
  size_t o = 0;
  for (size_t q = 0; q < full; q++) {
    const char *c = s + 4 * q;
    uint32_t v = (uint32_t)sextet(c[0]) << 18 | (uint32_t)sextet(c[1]) << 12 |
                 (uint32_t)sextet(c[2]) << 6 | (uint32_t)sextet(c[3]);
    out[o++] = (uint8_t)(v >> 16);
    out[o++] = (uint8_t)(v >> 8);
    out[o++] = (uint8_t)v;
  }
  if (rest) {
    const char *c = s + 4 * full;
    uint32_t v = (uint32_t)sextet(c[0]) << 18 | (uint32_t)sextet(c[1]) << 12 |
                 (rest == 2 ? (uint32_t)sextet(c[2]) << 6 : 0);
    out[o++] = (uint8_t)(v >> 16);
    if (rest == 2)
      out[o++] = (uint8_t)(v >> 8);
  }
  *outlen = o;
  return 0;
}
