/* fuzz_epc — EPC URN and GS1 Digital Link canonicalisation (node/epc.c): every trace code in a
 * submitted event and in a lookup URL goes through it before it becomes an index key.
 *
 * Properties: no read outside the n bytes given (the input is copied to an exact-size buffer, no
 * NUL after it); a result is NUL-terminated, within SJ_EPC_MAX, of the length reported, plain
 * printable ASCII, and canonical: canonicalising it again gives itself and the same scheme;
 * every outcome has a name and a message. */
#include "node/epc.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size ? size : 1); /* exact size: ASan catches a read past n */
  FUZZ_CHECK(s != NULL);
  if (size)
    memcpy(s, data, size);
  sj_epc_t e, again;
  memset(&e, 0xa5, sizeof e);
  sj_epc_code_t c = sj_epc_canonical(s, size, &e);
  FUZZ_CHECK(sj_epc_code_name(c) && sj_epc_code_message(c));
  FUZZ_CHECK(strcmp(sj_epc_code_name(c), "UNKNOWN") != 0);
  if (c == SJ_EPC_OK) {
    FUZZ_CHECK(e.len <= SJ_EPC_MAX && memchr(e.urn, 0, sizeof e.urn) == e.urn + e.len);
    for (size_t i = 0; i < e.len; i++)
      FUZZ_CHECK(e.urn[i] > 0x20 && e.urn[i] < 0x7f);
    FUZZ_CHECK(strncmp(e.urn, "urn:epc:", 8) == 0);
    FUZZ_CHECK(sj_epc_canonical(e.urn, e.len, &again) == SJ_EPC_OK);
    FUZZ_CHECK(again.scheme == e.scheme && again.len == e.len && strcmp(again.urn, e.urn) == 0);
  }
  free(s);
  return 0;
}
