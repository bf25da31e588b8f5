/* tools/cli — the `sanjiao` command line: shared helpers of its commands. */
#ifndef SJ_CLI_H
#define SJ_CLI_H

#include "common/common.h"

#include <jansson.h>
#include <stddef.h>

/* Options every command takes. */
typedef struct {
  const char *node;  /* --node URL, default $SANJIAO_NODE or http://127.0.0.1:7300 */
  char token[256];   /* from --token-file FILE or $SANJIAO_TOKEN; "" = none */
  int json;          /* --json: print raw JSON instead of a readable form */
  const char *ca;    /* --ca FILE or $SANJIAO_CA: CA certificate for https:// nodes */
} cli_opts_t;

/* Parses the common flags out of argv (removing them); the rest stays in argv/argc.
 * Returns 0 or prints an error and returns 2. */
int cli_common_args(int *argc, char **argv, cli_opts_t *o);

/* One HTTP/2 request to o->node + path. body may be NULL. Returns 0 and the status and response,
 * or prints a clear error to stderr and returns nonzero. */
int cli_request(const cli_opts_t *o, const char *method, const char *path, const char *ctype,
                const uint8_t *body, size_t n, const char *idem_key, int *status, sj_buf_t *resp);
/* GET path, expect 200 JSON; on another status prints the problem and returns nonzero. */
int cli_get_json(const cli_opts_t *o, const char *path, json_t **out);
/* Prints an RFC 7807 problem (or the raw body) for a failed request to stderr. */
void cli_print_problem(int status, const sj_buf_t *resp);
/* Reads a whole file ("-" = stdin). Returns 0 or -errno. */
int cli_read_file(const char *path, sj_buf_t *out);
/* Parses a 6-digit region code. Returns 0 or SJ_EINVAL. */
int sj_region_parse_cli(const char *s, uint32_t *out);
/* Percent-encodes s for use as one path segment. */
void cli_path_escape(const char *s, sj_buf_t *out);

int cmd_keygen(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_submit(int argc, char **argv, const cli_opts_t *o);
int cmd_get(int argc, char **argv, const cli_opts_t *o);
int cmd_subject(int argc, char **argv, const cli_opts_t *o);
int cmd_trace(int argc, char **argv, const cli_opts_t *o);
int cmd_checkpoint(int argc, char **argv, const cli_opts_t *o);
int cmd_prove(int argc, char **argv, const cli_opts_t *o);
int cmd_report(int argc, char **argv, const cli_opts_t *o);  /* tools/cli/report.c */
int cmd_sample(int argc, char **argv);                       /* tools/cli/sample.c */
int cmd_import(int argc, char **argv, const cli_opts_t *o);  /* tools/cli/import.c */
int cmd_cluster(int argc, char **argv);                      /* tools/cli/cluster.c */

#endif
