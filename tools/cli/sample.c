/* tools/cli/sample.c — `sanjiao sample --records N --seed S --out DIR`: not built yet. */
#include "tools/cli/cli.h"

#include <stdio.h>

int cmd_sample(int argc, char **argv) {
  (void)argc, (void)argv;
  fprintf(stderr, "sample: not implemented yet\n");
  return 2;
}
