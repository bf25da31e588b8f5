/* crypto/keys.c — Ed25519 keys in the C2SP signed-note formats: key ids, key names, private key
 * and verifier key texts, and the UTF-8 rules notes and names share.
 *
 *   private key  PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>
 *   verifier key <name>+<8 hex key id>+<base64(type || 32-byte public key)>
 *
 * Names never contain '+', so the first '+' after the name ends it; base64 may contain '+', so
 * it is always the remainder. Secrets live in sodium_malloc'd memory and every temporary copy of
 * a seed is wiped before return. */
#include "crypto/crypto_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KEY_B64_LEN 44 /* base64 of 33 bytes */

/* ---- UTF-8
 * --------------------------------------------------------------------------------------- */

/* Decodes one well-formed UTF-8 sequence at p[0..n) (n >= 1): returns its length and the code
 * point in *cp, or 0 if malformed (bad lead byte, truncated, overlong, surrogate, > U+10FFFF). */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp) {
  uint8_t b = p[0];
  size_t len;
  uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (b < 0x80) {
    *cp = b;
    return 1;
  } else if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    lo = b == 0xe0 ? 0xa0 : 0x80; /* no overlongs */
    hi = b == 0xed ? 0x9f : 0xbf; /* no surrogates */
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    lo = b == 0xf0 ? 0x90 : 0x80;
    hi = b == 0xf4 ? 0x8f : 0xbf; /* nothing past U+10FFFF */
  } else {
    return 0;
  }
  if (n < len || p[1] < lo || p[1] > hi)
    return 0;
  uint32_t v = b & (0x7f >> len);
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    v = v << 6 | (p[i] & 0x3f);
  }
  *cp = v;
  return len;
}

int sj_text_ok(const char *s, size_t n) {
  const uint8_t *p = (const uint8_t *)s;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = utf8_next(p + i, n - i, &cp);
    if (len == 0 || (cp < 0x20 && cp != '\n'))
      return 0;
    i += len;
  }
  return 1;
}

/* Unicode White_Space (what Go's unicode.IsSpace, used by the reference implementation, tests). */
static int is_space(uint32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}

int sj_key_name_ok(const char *s, size_t n) {
  const uint8_t *p = (const uint8_t *)s;
  if (n == 0 || n > SJ_KEY_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = utf8_next(p + i, n - i, &cp);
    if (len == 0 || cp < 0x20 || cp == 0x7f || cp == '+' || is_space(cp))
      return 0;
    i += len;
  }
  return 1;
}

/* ---- Key ids --------------------------------------------------------------------------------- */

uint32_t sj_key_id(const char *name, size_t namelen, uint8_t type, const uint8_t pub[32]) {
  uint8_t buf[SJ_KEY_NAME_MAX + 2 + 32], d[SJ_HASH_LEN];
  /* Callers pass validated names; clamp anyway so a bad call cannot overflow the buffer. */
  if (namelen > SJ_KEY_NAME_MAX)
    namelen = SJ_KEY_NAME_MAX;
  memcpy(buf, name, namelen);
  buf[namelen] = '\n';
  buf[namelen + 1] = type;
  memcpy(buf + namelen + 2, pub, 32);
  sj_sha256(buf, namelen + 2 + 32, d);
  return sj_get_be32(d);
}

static int type_ok(int type) {
  return type == SJ_KEY_ED25519 || type == SJ_KEY_COSIGNATURE_V1;
}

/* Parses exactly 8 hex digits. */
static int parse_id(const char *s, size_t n, uint32_t *id) {
  uint8_t b[4];
  if (n != 8 || sj_hex_decode(s, n, b, 4) != 0)
    return SJ_EFORMAT;
  *id = sj_get_be32(b);
  return 0;
}

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Drops surrounding blanks (a key file's final newline, say). Not strchr: it would match NUL. */
static void trim(const char **s, size_t *n) {
  while (*n && is_blank((*s)[0]))
    (*s)++, (*n)--;
  while (*n && is_blank((*s)[*n - 1]))
    (*n)--;
}

static char *dup_name(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = 0;
  }
  return p;
}

/* Splits "<name>+<8 hex>+<rest>" (the tail of both key texts). */
static int split_key(const char *s, size_t n, sj_bytes_t *name, uint32_t *id, sj_bytes_t *b64) {
  const char *plus = memchr(s, '+', n);
  if (!plus || !sj_key_name_ok(s, (size_t)(plus - s)))
    return SJ_EFORMAT;
  size_t nl = (size_t)(plus - s);
  if (n - nl - 1 < 9 || s[nl + 9] != '+' || parse_id(s + nl + 1, 8, id) != 0)
    return SJ_EFORMAT;
  name->p = (const uint8_t *)s;
  name->n = nl;
  b64->p = (const uint8_t *)s + nl + 10;
  b64->n = n - nl - 10;
  return 0;
}

/* Decodes base64(type || 32 bytes) into t[33]. */
static int decode_key(sj_bytes_t b64, uint8_t t[33]) {
  size_t len;
  if (b64.n != KEY_B64_LEN || sj_base64_decode((const char *)b64.p, b64.n, t, 33, &len) != 0 ||
      len != 33)
    return SJ_EFORMAT;
  return 0;
}

/* ---- Signers --------------------------------------------------------------------------------- */

void sj_signer_free(sj_signer_t *s) {
  if (!s)
    return;
  sodium_free(s->sk); /* sodium_free wipes before unmapping */
  free(s->name);
  free(s);
}

static int signer_new(const char *name, size_t nl, const uint8_t seed[32], sj_signer_t **out) {
  sj_signer_t *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  s->name = dup_name(name, nl);
  s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
  if (!s->name || !s->sk) {
    sj_signer_free(s);
    return -ENOMEM;
  }
  crypto_sign_seed_keypair(s->pub, s->sk, seed);
  s->id_note = sj_key_id(name, nl, SJ_KEY_ED25519, s->pub);
  s->id_cosig = sj_key_id(name, nl, SJ_KEY_COSIGNATURE_V1, s->pub);
  *out = s;
  return 0;
}

int sj_signer_from_seed(const char *name, const uint8_t seed[32], sj_signer_t **out) {
  size_t nl = strlen(name);
  if (!sj_key_name_ok(name, nl))
    return SJ_EINVAL;
  return signer_new(name, nl, seed, out);
}

int sj_signer_generate(const char *name, sj_signer_t **out) {
  uint8_t seed[32];
  randombytes_buf(seed, sizeof seed);
  int rv = sj_signer_from_seed(name, seed, out);
  sodium_memzero(seed, sizeof seed);
  return rv;
}

int sj_signer_parse(const char *text, size_t n, sj_signer_t **out) {
  static const char head[] = "PRIVATE+KEY+";
  const size_t hl = sizeof head - 1;
  trim(&text, &n);
  if (n < hl || memcmp(text, head, hl) != 0)
    return SJ_EFORMAT;
  sj_bytes_t name, b64;
  uint32_t id;
  int rv = split_key(text + hl, n - hl, &name, &id, &b64);
  if (rv)
    return rv;
  uint8_t t[33];
  if ((rv = decode_key(b64, t)) != 0 || t[0] != SJ_KEY_ED25519) {
    rv = SJ_EFORMAT;
    goto out;
  }
  sj_signer_t *s;
  if ((rv = signer_new((const char *)name.p, name.n, t + 1, &s)) != 0)
    goto out;
  if (s->id_note != id) {
    sj_signer_free(s);
    rv = SJ_EVERIFY;
    goto out;
  }
  *out = s;
out:
  sodium_memzero(t, sizeof t);
  return rv;
}

const char *sj_signer_name(const sj_signer_t *s) {
  return s->name;
}

/* Appends "<name>+<hex id>+<base64(type || key)>" to out, all or nothing. */
static int append_key(sj_buf_t *out, const char *prefix, const char *name, uint32_t id,
                      uint8_t type, const uint8_t key[32]) {
  uint8_t t[33];
  char b64[KEY_B64_LEN + 1];
  t[0] = type;
  memcpy(t + 1, key, 32);
  sj_base64_encode(t, sizeof t, b64);
  size_t need = strlen(prefix) + strlen(name) + 10 + KEY_B64_LEN;
  int rv = sj_buf_reserve(out, need);
  if (rv == 0) /* room reserved: the printf cannot fail for want of memory */
    rv = sj_buf_printf(out, "%s%s+%08x+%s", prefix, name, (unsigned)id, b64);
  sodium_memzero(t, sizeof t);
  sodium_memzero(b64, sizeof b64);
  return rv;
}

int sj_signer_format(const sj_signer_t *s, sj_buf_t *out) {
  return append_key(out, "PRIVATE+KEY+", s->name, s->id_note, SJ_KEY_ED25519, s->sk);
}

int sj_signer_vkey(const sj_signer_t *s, int type, sj_buf_t *out) {
  if (!type_ok(type))
    return SJ_EINVAL;
  uint32_t id = type == SJ_KEY_ED25519 ? s->id_note : s->id_cosig;
  return append_key(out, "", s->name, id, (uint8_t)type, s->pub);
}

/* ---- Verifiers ------------------------------------------------------------------------------- */

static int verifier_new(const char *name, size_t nl, int type, const uint8_t pub[32],
                        sj_verifier_t **out) {
  sj_verifier_t *v = calloc(1, sizeof *v);
  if (!v || !(v->name = dup_name(name, nl))) {
    free(v);
    return -ENOMEM;
  }
  v->type = type;
  memcpy(v->pub, pub, 32);
  v->id = sj_key_id(name, nl, (uint8_t)type, pub);
  *out = v;
  return 0;
}

int sj_signer_verifier(const sj_signer_t *s, int type, sj_verifier_t **out) {
  if (!type_ok(type))
    return SJ_EINVAL;
  return verifier_new(s->name, strlen(s->name), type, s->pub, out);
}

int sj_verifier_parse(const char *text, size_t n, sj_verifier_t **out) {
  trim(&text, &n);
  sj_bytes_t name, b64;
  uint32_t id;
  uint8_t t[33];
  int rv = split_key(text, n, &name, &id, &b64);
  if (rv || (rv = decode_key(b64, t)) != 0)
    return rv;
  if (!type_ok(t[0]))
    return SJ_EFORMAT;
  if (sj_key_id((const char *)name.p, name.n, t[0], t + 1) != id)
    return SJ_EVERIFY;
  return verifier_new((const char *)name.p, name.n, t[0], t + 1, out);
}

int sj_verifier_derive(const sj_verifier_t *v, int type, sj_verifier_t **out) {
  if (!type_ok(type))
    return SJ_EINVAL;
  return verifier_new(v->name, strlen(v->name), type, v->pub, out);
}

void sj_verifier_free(sj_verifier_t *v) {
  if (!v)
    return;
  free(v->name);
  free(v);
}

const char *sj_verifier_name(const sj_verifier_t *v) {
  return v->name;
}

int sj_verifier_type(const sj_verifier_t *v) {
  return v->type;
}

uint32_t sj_verifier_key_id(const sj_verifier_t *v) {
  return v->id;
}

int sj_verifier_format(const sj_verifier_t *v, sj_buf_t *out) {
  return append_key(out, "", v->name, v->id, (uint8_t)v->type, v->pub);
}
