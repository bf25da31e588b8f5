/* fuzz_json — node/json.c's sj_json_loadb against jansson's json_loadb (the JSON parse of record
 * submissions and EPCIS capture documents).
 *
 * The first input byte picks the flags: its low three bits any subset of the flags the fast path
 * implements (JSON_REJECT_DUPLICATES, JSON_DECODE_INT_AS_REAL, JSON_DECODE_ANY), bit 3 adds
 * JSON_ALLOW_NUL (never the fast path's); the rest is the buffer. Properties:
 *   - both give the same verdict; on a refusal the same error text, source, line, column,
 *     position and code; on success the same error fields and equal trees (json_equal and the
 *     compact JSON_PRESERVE_ORDER dump: same key order, same number types);
 *   - the fast path alone (sj_json_loadb_fast), when it answers, answers that same tree. */
#include "node/json.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static const size_t k_bits[] = {JSON_REJECT_DUPLICATES, JSON_DECODE_INT_AS_REAL, JSON_DECODE_ANY,
                                JSON_ALLOW_NUL};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

static char *dump(const json_t *j) {
  return json_dumps(j, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_COMPACT);
}

static void same_tree(const json_t *a, const json_t *b) {
  FUZZ_CHECK(json_equal(a, b));
  char *da = dump(a), *db = dump(b);
  FUZZ_CHECK(da && db && strcmp(da, db) == 0);
  free(da);
  free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t flags = 0;
  for (size_t i = 0; i < 4; i++)
    if (data[0] & (1u << i))
      flags |= k_bits[i];
  const char *p = (const char *)data + 1;
  size_t n = size - 1;
  json_error_t a, b;
  memset(&a, 0x5a, sizeof a);
  memset(&b, 0x5a, sizeof b);
  json_t *ja = json_loadb(p, n, flags, &a);
  json_t *jb = sj_json_loadb(p, n, flags, &b);
  if (!ja != !jb)
    fprintf(stderr, "verdicts differ (flags %#zx): jansson %s, sj %s\n", flags, ja ? "ok" : a.text,
            jb ? "ok" : b.text);
  FUZZ_CHECK(!ja == !jb);
  FUZZ_CHECK(strcmp(a.text, b.text) == 0 && strcmp(a.source, b.source) == 0);
  FUZZ_CHECK(a.line == b.line && a.column == b.column && a.position == b.position);
  if (!ja) {
    FUZZ_CHECK(json_error_code(&a) == json_error_code(&b));
    return 0;
  }
  same_tree(ja, jb);
  json_t *jf = sj_json_loadb_fast(p, n, flags);
  if (jf)
    same_tree(ja, jf);
  json_decref(jf);
  json_decref(ja);
  json_decref(jb);
  return 0;
}
