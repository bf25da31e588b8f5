/* tools/cli/import.c — `sanjiao import FILE`: not built yet. */
#include "tools/cli/cli.h"

#include <stdio.h>

int cmd_import(int argc, char **argv, const cli_opts_t *o) {
  (void)argc, (void)argv, (void)o;
  fprintf(stderr, "import: not implemented yet\n");
  return 2;
}
