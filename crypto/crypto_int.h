/* crypto_int.h — what the crypto module's own .c files share: the key structs behind the opaque
 * handles of crypto.h, the signature-line prefix and small text helpers. Not a public header. */
#ifndef SJ_CRYPTO_INT_H
#define SJ_CRYPTO_INT_H

#include "crypto/crypto.h"

#include <sodium.h>

/* "— " — U+2014 EM DASH and a space start every signature line (C2SP signed-note). */
#define SJ_SIG_PREFIX "\xe2\x80\x94 "
#define SJ_SIG_PREFIX_LEN 4

#define SJ_KEY_NAME_MAX 255 /* a sane bound on key names; origins share it (SJ_ORIGIN_MAX) */

struct sj_signer {
  char *name;        /* owned, NUL-terminated, validated by name_ok() */
  uint8_t pub[32];   /* Ed25519 public key */
  uint8_t *sk;       /* sodium_malloc'd: libsodium secret key = seed (32) || public key (32) */
  uint32_t id_note;  /* key id of the 0x01 (note signature) verifier key */
  uint32_t id_cosig; /* key id of the 0x04 (cosignature/v1) verifier key */
};

struct sj_verifier {
  char *name;      /* owned, NUL-terminated */
  int type;        /* SJ_KEY_ED25519 or SJ_KEY_COSIGNATURE_V1 */
  uint8_t pub[32]; /* Ed25519 public key */
  uint32_t id;     /* SHA-256(name || "\n" || type || pub)[:4], big-endian */
};

/* C2SP key id: the first 4 bytes, big-endian, of SHA-256(name || "\n" || type || pub). */
uint32_t sj_key_id(const char *name, size_t namelen, uint8_t type, const uint8_t pub[32]);

/* 1 if name[0..n) is a valid key name: 1..SJ_KEY_NAME_MAX bytes of well-formed UTF-8 without
 * ASCII whitespace, control characters or '+'. */
int sj_key_name_ok(const char *name, size_t n);

/* 1 if p[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)
 * whose only control character is '\n'. */
int sj_text_ok(const char *p, size_t n);

#endif
