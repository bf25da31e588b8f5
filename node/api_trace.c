/* node/api_trace.c — trace journeys and the EPCIS capture/query endpoints (the traceability
 * issue's endpoints). */
#include "node/node_int.h"

void api_register_trace(sj_node_t *n) {
  (void)n;
}
