/* fuzz_base64 — strict base64 (crypto/base64.c), used for checkpoint roots, signatures and keys,
 * and hex (common/buf.c), used for key ids.
 *
 * Properties: decoding never writes more than cap bytes; an accepted encoding is the one
 * encoding of its bytes (decode then encode gives the input back: no second spelling of a
 * signature or root); any bytes encode and decode back to themselves; the same for hex, whose
 * encoder is lower-case while the decoder accepts both cases. */
#include "crypto/crypto.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>
#include <strings.h>

#define MAXIN 4096

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return sj_crypto_init();
}

static void check_decode(const char *s, size_t n) {
  static uint8_t out[MAXIN];
  static char again[MAXIN * 2];
  size_t len = 0;
  int rv = sj_base64_decode(s, n, out, sizeof out, &len);
  if (rv != 0) {
    FUZZ_CHECK(rv == SJ_EFORMAT);
    return;
  }
  FUZZ_CHECK(len <= n / 4 * 3 && sj_base64_len(len) == n + 1);
  FUZZ_CHECK(sj_base64_encode(out, len, again) == n && memcmp(again, s, n) == 0);
  /* A smaller cap is refused as too big (never overrun): decode into the exact size too. */
  if (len > 0) {
    uint8_t *exact = malloc(len);
    size_t l2;
    FUZZ_CHECK(exact && sj_base64_decode(s, n, exact, len, &l2) == 0 && l2 == len);
    FUZZ_CHECK(sj_base64_decode(s, n, exact, len - 1, &l2) == SJ_ETOOBIG);
    free(exact);
  }
}

static void check_encode(const uint8_t *p, size_t n) {
  static char enc[MAXIN * 2];
  static uint8_t dec[MAXIN];
  size_t el = sj_base64_encode(p, n, enc);
  FUZZ_CHECK(el + 1 == sj_base64_len(n) && enc[el] == 0);
  size_t dl;
  FUZZ_CHECK(sj_base64_decode(enc, el, dec, n, &dl) == 0 && dl == n && memcmp(dec, p, n) == 0);
}

static void check_hex(const char *s, size_t n) {
  static uint8_t out[MAXIN];
  static char again[MAXIN * 2 + 1];
  if (n % 2 == 0 && sj_hex_decode(s, n, out, n / 2) == 0) {
    sj_hex_encode(out, n / 2, again);
    FUZZ_CHECK(strlen(again) == n && strncasecmp(again, s, n) == 0);
  }
  /* A length that is not twice the output size is always refused. */
  FUZZ_CHECK(n / 2 + 1 > MAXIN || sj_hex_decode(s, n, out, n / 2 + 1) == SJ_EFORMAT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAXIN)
    return 0;
  check_decode((const char *)data, size);
  check_encode(data, size);
  check_hex((const char *)data, size);
  return 0;
}
