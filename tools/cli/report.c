/* tools/cli/report.c — `sanjiao report ID`: not built yet. */
#include "tools/cli/cli.h"

#include <stdio.h>

int cmd_report(int argc, char **argv, const cli_opts_t *o) {
  (void)argc, (void)argv, (void)o;
  fprintf(stderr, "report: not implemented yet\n");
  return 2;
}
