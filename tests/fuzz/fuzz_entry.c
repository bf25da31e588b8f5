/* fuzz_entry — the log entry header codec and the entries-stream frames (crypto/entry.c), which
 * a follower reads from other regions' nodes.
 *
 * Properties: the decoder never reads past its input; a header it accepts re-encodes to exactly
 * the same bytes (the codec is canonical: an entry has one encoding, so one leaf hash); every
 * frame sj_frame_next returns lies inside the input and sj_frame_append rebuilds it byte for
 * byte; a frame stream is consumed frame by frame to its end or to its first error. */
#include "crypto/crypto.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return sj_crypto_init();
}

/* Decodes p[0..n) as one header; an accepted header must re-encode to the same bytes. */
static void check_header(const uint8_t *p, size_t n, size_t cap) {
  sj_entry_header_t h;
  int rv = sj_entry_decode(p, n, &h, keys, cap);
  if (rv != 0) {
    FUZZ_CHECK(rv == SJ_ETRUNC || rv == SJ_EFORMAT || rv == SJ_EVERSION || rv == SJ_ETOOBIG);
    return;
  }
  FUZZ_CHECK(h.nkeys <= cap && h.type_len >= 1 && h.type_len <= SJ_ENTRY_MAX_TYPE_LEN);
  FUZZ_CHECK((const uint8_t *)h.type >= p && (const uint8_t *)h.type + h.type_len <= p + n);
  for (size_t i = 0; i < h.nkeys; i++)
    FUZZ_CHECK(h.keys[i].p >= p && h.keys[i].p + h.keys[i].len <= p + n);
  sj_buf_t out = {0};
  FUZZ_CHECK(sj_entry_encode(&h, &out) == 0);
  FUZZ_CHECK(out.n == n && memcmp(out.p, p, n) == 0);
  sj_buf_deinit(&out);
  /* The body check only compares: any body, including the rest of the input, must be safe. */
  rv = sj_entry_check_body(&h, p, n);
  FUZZ_CHECK(rv == 0 || rv == SJ_EVERIFY);
}

/* Reads p[0..n) as an entries stream, as a follower does, with a small body limit. */
static void check_frames(const uint8_t *p, size_t n, size_t max_body) {
  size_t off = 0;
  while (off < n) {
    sj_bytes_t hdr, body;
    int has_body = -1;
    long used = sj_frame_next(p + off, n - off, max_body, &hdr, &body, &has_body);
    if (used <= 0) {
      FUZZ_CHECK(used == 0 || used == SJ_EFORMAT || used == SJ_ETOOBIG);
      return;
    }
    FUZZ_CHECK((size_t)used <= n - off && has_body >= 0);
    FUZZ_CHECK(hdr.p == p + off + 4 && hdr.n > 0 && hdr.n <= SJ_ENTRY_MAX_HEADER);
    FUZZ_CHECK(has_body ? body.p && body.n <= max_body : !body.p && !body.n);
    sj_buf_t again = {0};
    FUZZ_CHECK(sj_frame_append(&again, hdr.p, hdr.n, body.p, body.n, has_body) == 0);
    FUZZ_CHECK(again.n == (size_t)used && memcmp(again.p, p + off, again.n) == 0);
    sj_buf_deinit(&again);
    check_header(hdr.p, hdr.n, SJ_ENTRY_MAX_KEYS);
    off += (size_t)used;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_header(data, size, SJ_ENTRY_MAX_KEYS);
  check_header(data, size, 2); /* a caller with little room gets SJ_ETOOBIG, never an overflow */
  check_frames(data, size, 1u << 16);
  return 0;
}
