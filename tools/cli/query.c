/* tools/cli/query.c — the commands that read from or write to a node: submit, get, subject,
 * trace, checkpoint. */
#include "tools/cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_json(const json_t *j) {
  char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (!s)
    return 1;
  printf("%s\n", s);
  free(s);
  return 0;
}

/* Guesses NDJSON for *.ndjson / *.jsonl files and for text with several top-level lines. */
static int looks_ndjson(const char *path, const sj_buf_t *b) {
  size_t n = strlen(path);
  if ((n > 7 && !strcmp(path + n - 7, ".ndjson")) || (n > 6 && !strcmp(path + n - 6, ".jsonl")))
    return 1;
  size_t i = 0;
  while (i < b->n && (b->p[i] == ' ' || b->p[i] == '\t' || b->p[i] == '\r' || b->p[i] == '\n'))
    i++;
  if (i < b->n && b->p[i] == '[')
    return 0;
  for (; i + 1 < b->n; i++)
    if (b->p[i] == '\n' && b->p[i + 1] == '{')
      return 1;
  return 0;
}

int cmd_submit(int argc, char **argv, const cli_opts_t *o) {
  const char *path = "-", *idem = NULL;
  int ndjson = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ndjson"))
      ndjson = 1;
    else if (!strcmp(argv[i], "--idempotency-key") && i + 1 < argc)
      idem = argv[++i];
    else if (argv[i][0] != '-' || !strcmp(argv[i], "-"))
      path = argv[i];
    else {
      fprintf(stderr, "usage: sanjiao submit [FILE|-] [--ndjson] [--idempotency-key K]\n");
      return 2;
    }
  }
  sj_buf_t in = {0}, resp = {0};
  int rv = cli_read_file(path, &in), status = 0;
  if (rv) {
    fprintf(stderr, "submit: cannot read %s: %s\n", path, sj_strerror(rv));
    return 1;
  }
  if (ndjson < 0)
    ndjson = looks_ndjson(path, &in);
  rv = cli_request(o, "POST", "/v1/records", ndjson ? "application/x-ndjson" : "application/json",
                   in.p, in.n, idem, &status, &resp);
  sj_buf_deinit(&in);
  if (rv == 0 && status != 201) {
    cli_print_problem(status, &resp);
    rv = 1;
  } else if (rv == 0) {
    printf("%.*s\n", (int)resp.n, (const char *)resp.p);
  }
  sj_buf_deinit(&resp);
  return rv;
}

static int get_and_print(const cli_opts_t *o, const char *path) {
  json_t *j = NULL;
  if (cli_get_json(o, path, &j))
    return 1;
  int rv = print_json(j);
  json_decref(j);
  return rv;
}

int cmd_get(int argc, char **argv, const cli_opts_t *o) {
  if (argc != 3) {
    fprintf(stderr, "usage: sanjiao get REGION SEQ\n");
    return 2;
  }
  sj_buf_t p = {0};
  sj_buf_append_str(&p, "/v1/records/");
  cli_path_escape(argv[1], &p);
  sj_buf_append_str(&p, "/");
  cli_path_escape(argv[2], &p);
  int rv = get_and_print(o, (const char *)p.p);
  sj_buf_deinit(&p);
  return rv;
}

static int get_one_arg(const cli_opts_t *o, const char *prefix, const char *arg,
                       const char *suffix) {
  sj_buf_t p = {0};
  sj_buf_append_str(&p, prefix);
  cli_path_escape(arg, &p);
  sj_buf_append_str(&p, suffix);
  int rv = get_and_print(o, (const char *)p.p);
  sj_buf_deinit(&p);
  return rv;
}

int cmd_subject(int argc, char **argv, const cli_opts_t *o) {
  if (argc != 2) {
    fprintf(stderr, "usage: sanjiao subject ID\n");
    return 2;
  }
  return get_one_arg(o, "/v1/subjects/", argv[1], "");
}

int cmd_trace(int argc, char **argv, const cli_opts_t *o) {
  if (argc != 2) {
    fprintf(stderr, "usage: sanjiao trace CODE\n");
    return 2;
  }
  return get_one_arg(o, "/v1/trace/", argv[1], "");
}

int cmd_checkpoint(int argc, char **argv, const cli_opts_t *o) {
  if (argc != 2) {
    fprintf(stderr, "usage: sanjiao checkpoint REGION\n");
    return 2;
  }
  sj_buf_t p = {0}, resp = {0};
  sj_buf_append_str(&p, "/v1/logs/");
  cli_path_escape(argv[1], &p);
  sj_buf_append_str(&p, "/checkpoint");
  int status = 0, rv = cli_request(o, "GET", (const char *)p.p, NULL, NULL, 0, NULL, &status, &resp);
  if (rv == 0 && status != 200) {
    cli_print_problem(status, &resp);
    rv = 1;
  } else if (rv == 0) {
    fwrite(resp.p, 1, resp.n, stdout);
  }
  sj_buf_deinit(&p);
  sj_buf_deinit(&resp);
  return rv;
}
