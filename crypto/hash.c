/* crypto/hash.c — SHA-256, HMAC-SHA256 and the RFC 9162 §2.1.1 leaf and node hashes.
 *
 * SHA-256 comes from OpenSSL's libcrypto through EVP with an EVP_MD fetched once and one
 * EVP_MD_CTX per thread, reused for every hash: that path uses the CPU's SHA extensions and
 * measured about 3x faster than libsodium's portable code on the 65- and 300-byte inputs that
 * dominate Merkle work, while OpenSSL 3's one-shot SHA256() fetches the algorithm on every call and
 * was slower than libsodium (bench/sha256.c, docs/BENCHMARKS.md).
 *
 * A thread allocates its context on its first hash and frees it when it exits (a pthread key
 * destructor); our code allocates nothing per hash (the leaf's 0x00 prefix is a separate update,
 * not a copy). OpenSSL 3.0 itself re-creates its provider context inside EVP_DigestInit_ex2 (one
 * small malloc/free per hash, included in the measured figures; later 3.x releases reuse it).
 * Should OpenSSL be unavailable (allocation or provider failure) the same digest is computed with
 * libsodium's stack-only streaming state instead, so the void functions of crypto.h cannot fail.
 * HMAC and Ed25519 are libsodium's. */
#include "crypto/crypto_int.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_md;        /* SHA-256, fetched once; immutable and shared by all threads */
static pthread_key_t g_key; /* destroys each thread's context when the thread exits */
static int g_key_ok;
static _Thread_local EVP_MD_CTX *tl_ctx; /* this thread's context, NULL until its first hash */
static _Thread_local int tl_failed;      /* allocation failed once: use libsodium from now on */

static void free_ctx(void *ctx) {
  EVP_MD_CTX_free(ctx);
}

static void init_once(void) {
  g_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  g_key_ok = pthread_key_create(&g_key, free_ctx) == 0;
}

int sj_crypto_init(void) {
  pthread_once(&g_once, init_once);
  return sodium_init() < 0 ? SJ_EINVAL : 0; /* 1 means "already initialised": fine */
}

/* This thread's context, or NULL if OpenSSL cannot serve (then the caller uses libsodium). */
static EVP_MD_CTX *thread_ctx(void) {
  if (tl_ctx || tl_failed)
    return tl_ctx;
  pthread_once(&g_once, init_once); /* also makes g_md visible to this thread */
  EVP_MD_CTX *c = g_md && g_key_ok ? EVP_MD_CTX_new() : NULL;
  if (c && pthread_setspecific(g_key, c) != 0) {
    EVP_MD_CTX_free(c);
    c = NULL;
  }
  tl_failed = c == NULL;
  tl_ctx = c;
  return c;
}

/* SHA-256(a || b). */
static void digest2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[SJ_HASH_LEN]) {
  EVP_MD_CTX *c = thread_ctx();
  unsigned len;
  if (c && EVP_DigestInit_ex2(c, g_md, NULL) == 1 && EVP_DigestUpdate(c, a, an) == 1 &&
      (bn == 0 || EVP_DigestUpdate(c, b, bn) == 1) && EVP_DigestFinal_ex(c, out, &len) == 1)
    return;
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, a, an);
  crypto_hash_sha256_update(&st, b, bn);
  crypto_hash_sha256_final(&st, out);
}

void sj_sha256(const void *p, size_t n, uint8_t out[SJ_HASH_LEN]) {
  static const uint8_t none = 0;
  digest2(n ? p : &none, n, NULL, 0, out);
}

void sj_hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t n,
                    uint8_t out[SJ_HASH_LEN]) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, keylen);
  crypto_auth_hmacsha256_update(&st, msg, n);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st); /* the state holds the padded key */
}

void sj_merkle_leaf_hash(const void *leaf, size_t n, uint8_t out[SJ_HASH_LEN]) {
  static const uint8_t prefix = 0x00;
  digest2(&prefix, 1, leaf, n, out);
}

void sj_merkle_node_hash(const uint8_t l[SJ_HASH_LEN], const uint8_t r[SJ_HASH_LEN],
                         uint8_t out[SJ_HASH_LEN]) {
  uint8_t buf[1 + 2 * SJ_HASH_LEN];
  buf[0] = 0x01;
  memcpy(buf + 1, l, SJ_HASH_LEN);
  memcpy(buf + 1 + SJ_HASH_LEN, r, SJ_HASH_LEN);
  digest2(buf, sizeof buf, NULL, 0, out); /* out may alias l or r: both were copied first */
}
