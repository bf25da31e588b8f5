/* node/api_credit.c — credit reports and the audit log (the credit issue's endpoints). */
#include "node/node_int.h"

void api_register_credit(sj_node_t *n) {
  (void)n;
}
