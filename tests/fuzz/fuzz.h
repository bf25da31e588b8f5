/* tests/fuzz/fuzz.h — what the libFuzzer harnesses share: the entry point's prototype (the build
 * warns on functions without one) and FUZZ_CHECK, which aborts so that libFuzzer records the
 * input as a crash when a property of the code under test does not hold. Harnesses may print:
 * they are test programs, not libraries. */
#ifndef SJ_FUZZ_H
#define SJ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property that must hold for every input: report and abort (a crash to libFuzzer). */
#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);                  \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#endif
