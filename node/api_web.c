/* node/api_web.c — the web pages (issue 8): not built yet; registers nothing. */
#include "node/node_int.h"

void api_register_web(sj_node_t *n) {
  (void)n;
}
