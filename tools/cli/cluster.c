/* tools/cli/cluster.c — `sanjiao cluster up|down --dir DIR`: not built yet. */
#include "tools/cli/cli.h"

#include <stdio.h>

int cmd_cluster(int argc, char **argv) {
  (void)argc, (void)argv;
  fprintf(stderr, "cluster: not implemented yet\n");
  return 2;
}
