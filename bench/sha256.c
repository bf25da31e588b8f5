/* bench/sha256.c — SHA-256 throughput on the input sizes the log hashes most: 65 bytes (a Merkle
 * node: 0x01 || left || right) and 300 bytes (a typical entry header with its 0x00 prefix).
 * Compares libsodium, OpenSSL's one-shot SHA256(), OpenSSL EVP with a pre-fetched EVP_MD and a
 * reused context, EVP_Digest() with the pre-fetched EVP_MD, and crypto's own sj_sha256 and
 * Merkle hashes as built. Single-threaded; figures in docs/BENCHMARKS.md.
 *
 * Usage: sjbench-sha256 [seconds per case, default 1] */
#include "crypto/crypto.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*hash_fn)(const uint8_t *p, size_t n, uint8_t out[32]);

static EVP_MD *g_md;
static EVP_MD_CTX *g_ctx;

static void h_sodium(const uint8_t *p, size_t n, uint8_t out[32]) {
  crypto_hash_sha256(out, p, n);
}

static void h_openssl_oneshot(const uint8_t *p, size_t n, uint8_t out[32]) {
  SHA256(p, n, out);
}

static void h_evp_prefetched(const uint8_t *p, size_t n, uint8_t out[32]) {
  unsigned len;
  EVP_DigestInit_ex2(g_ctx, g_md, NULL);
  EVP_DigestUpdate(g_ctx, p, n);
  EVP_DigestFinal_ex(g_ctx, out, &len);
}

static void h_evp_digest(const uint8_t *p, size_t n, uint8_t out[32]) {
  unsigned len;
  EVP_Digest(p, n, out, &len, g_md, NULL); /* allocates a context per call */
}

static void h_sj(const uint8_t *p, size_t n, uint8_t out[32]) {
  sj_sha256(p, n, out);
}

/* The Merkle hashes as the log computes them: n counts the prefix byte, so 65 is a node hash
 * (0x01 || 32 || 32) and 300 a leaf hash of a 299-byte header. */
static void h_sj_merkle(const uint8_t *p, size_t n, uint8_t out[32]) {
  if (n == 65)
    sj_merkle_node_hash(p + 1, p + 33, out);
  else
    sj_merkle_leaf_hash(p + 1, n - 1, out);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn on n-byte inputs for about secs seconds; returns hashes per second. Each output feeds
 * the next input so the work cannot be hoisted out of the loop. */
static double run(hash_fn fn, size_t n, double secs) {
  uint8_t buf[512], out[32];
  memset(buf, 0x5a, sizeof buf);
  long iters = 0;
  double t0 = now(), t;
  do {
    for (int i = 0; i < 4096; i++) {
      fn(buf, n, out);
      memcpy(buf + 1, out, 8);
    }
    iters += 4096;
  } while ((t = now()) - t0 < secs);
  return (double)iters / (t - t0);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  if (sj_crypto_init() != 0 || secs <= 0)
    return 1;
  g_md = EVP_MD_fetch(NULL, "SHA256", NULL);
  g_ctx = EVP_MD_CTX_new();
  if (!g_md || !g_ctx)
    return 1;
  static const struct {
    const char *name;
    hash_fn fn;
  } cases[] = {
      {"libsodium crypto_hash_sha256", h_sodium},
      {"openssl SHA256() one-shot", h_openssl_oneshot},
      {"openssl EVP, pre-fetched MD, reused ctx", h_evp_prefetched},
      {"openssl EVP_Digest(), pre-fetched MD", h_evp_digest},
      {"sj_sha256 (as built)", h_sj},
      {"sj_merkle_node_hash / sj_merkle_leaf_hash", h_sj_merkle},
  };
  const size_t sizes[] = {65, 300};
  printf("%-42s %8s %14s %10s\n", "implementation", "bytes", "hashes/s", "ns/hash");
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (size_t s = 0; s < 2; s++) {
      double r = run(cases[c].fn, sizes[s], secs);
      printf("%-42s %8zu %14.0f %10.1f\n", cases[c].name, sizes[s], r, 1e9 / r);
    }
  EVP_MD_CTX_free(g_ctx);
  EVP_MD_free(g_md);
  return 0;
}
