/* node/credit.c — credit fields beyond the minimal contract (see credit.h). So far the minimal
 * record is all that is checked: the deeper model (decision fields, rating schemes, windows)
 * is the credit issue's. */
#include "node/credit.h"

size_t sj_credit_check(json_t *rec, size_t index, size_t line, sj_rec_errors_t *errs) {
  (void)rec, (void)index, (void)line, (void)errs;
  return 0;
}
