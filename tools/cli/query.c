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

/* trace CODE: every event naming the code. trace CODE --journey: its journey as a timeline
 * (GET /v1/trace/{code}/journey; docs/TRACE.md), one step per event with where to prove it. */
int cmd_trace(int argc, char **argv, const cli_opts_t *o) {
  const char *code = NULL, *opt[3] = {NULL, NULL, NULL},
             *names[3] = {"direction", "depth", "limit"};
  int journey = 0, bad = 0;
  for (int i = 1; i < argc && !bad; i++) {
    int k = !strcmp(argv[i], "--direction") ? 0
            : !strcmp(argv[i], "--depth")   ? 1
            : !strcmp(argv[i], "--limit")   ? 2
                                            : -1;
    if (!strcmp(argv[i], "--journey"))
      journey = 1;
    else if (k >= 0 && i + 1 < argc)
      opt[k] = argv[++i];
    else if (argv[i][0] != '-' && !code)
      code = argv[i];
    else
      bad = 1;
  }
  if (bad || !code) {
    fprintf(stderr, "usage: sanjiao trace CODE [--journey [--direction back|forward|both] "
                    "[--depth N] [--limit N]]\n");
    return 2;
  }
  if (!journey)
    return get_one_arg(o, "/v1/trace/", code, "");
  sj_buf_t p = {0};
  json_t *j = NULL, *st;
  size_t i;
  sj_buf_append_str(&p, "/v1/trace/");
  cli_path_escape(code, &p); /* a Digital Link URI's slashes become %2F: one path segment */
  sj_buf_append_str(&p, "/journey");
  for (int k = 0, first = 1; k < 3; k++)
    if (opt[k]) {
      sj_buf_printf(&p, "%c%s=", first ? '?' : '&', names[k]);
      cli_path_escape(opt[k], &p);
      first = 0;
    }
  int rv = cli_get_json(o, (const char *)p.p, &j);
  sj_buf_deinit(&p);
  if (rv || o->json) {
    rv = rv ? rv : print_json(j);
    json_decref(j);
    return rv;
  }
  json_t *steps = json_object_get(j, "steps"), *regions = json_object_get(j, "regions");
  printf("journey of %s (%s): %zu steps, regions", json_string_value(json_object_get(j, "code")),
         json_string_value(json_object_get(j, "direction")), json_array_size(steps));
  json_array_foreach(regions, i, st) printf(" %s", json_string_value(st));
  printf("%s\n", json_is_true(json_object_get(j, "truncated"))
                     ? " (truncated: raise --depth or --limit)"
                     : "");
  json_array_foreach(steps, i, st) {
#define S(k)                                                                                       \
  (json_string_value(json_object_get(st, k)) ? json_string_value(json_object_get(st, k)) : "")
    printf("%-29s %s/%-6lld %-19s %-7s %-24s %s\n", S("time"), S("region"),
           (long long)json_integer_value(json_object_get(st, "seq")), S("event_type"), S("action"),
           S("biz_step"), S("location"));
    printf("    %-8s via %s (%s)%s%s%s%s\n", S("direction"), S("via"), S("role"),
           *S("operator") ? ", operator " : "", S("operator"), *S("withheld") ? ", withheld: " : "",
           S("withheld"));
#undef S
  }
  printf("every step is an entry of its region's log: sanjiao prove REGION SEQ --vkey KEY\n");
  json_decref(j);
  return 0;
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
