/* tools/cli/common.c — what the CLI's commands share: common flags, the token, one HTTP/2 request,
 * printing problems. */
#include "tools/cli/cli.h"

#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sj_region_parse_cli(const char *s, uint32_t *out) {
  if (strlen(s) != 6 || s[0] < '1' || s[0] > '9' || strspn(s, "0123456789") != 6)
    return SJ_EINVAL;
  *out = (uint32_t)strtoul(s, NULL, 10);
  return 0;
}

static int load_token(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  int rv = fgets(out, (int)cap, f) ? 0 : SJ_EFORMAT;
  fclose(f);
  if (rv == 0)
    out[strcspn(out, "\r\n \t")] = 0;
  return rv;
}

int cli_common_args(int *argc, char **argv, cli_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->node = getenv("SANJIAO_NODE") ? getenv("SANJIAO_NODE") : "http://127.0.0.1:7300";
  const char *env = getenv("SANJIAO_TOKEN"), *token_file = NULL;
  o->ca = getenv("SANJIAO_CA");
  if (env)
    snprintf(o->token, sizeof o->token, "%s", env);
  int w = 1;
  for (int i = 1; i < *argc; i++) {
    if (!strcmp(argv[i], "--node") && i + 1 < *argc)
      o->node = argv[++i];
    else if (!strcmp(argv[i], "--token-file") && i + 1 < *argc)
      token_file = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      o->json = 1;
    else if (!strcmp(argv[i], "--ca") && i + 1 < *argc)
      o->ca = argv[++i];
    else if (!strcmp(argv[i], "--token")) {
      fprintf(stderr, "sanjiao: tokens are never taken on the command line (other users can read "
                      "it); use --token-file FILE or SANJIAO_TOKEN\n");
      return 2;
    } else
      argv[w++] = argv[i];
  }
  *argc = w;
  if (token_file) {
    int rv = load_token(token_file, o->token, sizeof o->token);
    if (rv) {
      fprintf(stderr, "sanjiao: cannot read token file %s: %s\n", token_file, sj_strerror(rv));
      return 2;
    }
  }
  return 0;
}

int cli_request(const cli_opts_t *o, const char *method, const char *path, const char *ctype,
                const uint8_t *body, size_t n, const char *idem_key, int *status, sj_buf_t *resp) {
  sj_buf_t url = {0}, auth = {0};
  sj_header_t h[3];
  size_t nh = 0;
  sj_buf_printf(&url, "%s%s", o->node, path);
  if (o->token[0]) {
    sj_buf_printf(&auth, "Bearer %s", o->token);
    h[nh++] = (sj_header_t){"authorization", (const char *)auth.p};
  }
  if (ctype)
    h[nh++] = (sj_header_t){"content-type", ctype};
  if (idem_key)
    h[nh++] = (sj_header_t){"idempotency-key", idem_key};
  sj_client_opts_t co;
  sj_client_opts_default(&co);
  co.tls_ca_file = o->ca;
  int rv = sj_http_fetch_with(&co, (const char *)url.p, method, h, nh, body, n, 120000, status,
                              resp, NULL);
  if (rv)
    fprintf(stderr, "sanjiao: %s %s: %s\n", method, (const char *)url.p, sj_strerror(rv));
  sj_buf_deinit(&url);
  sj_buf_deinit(&auth);
  return rv ? 1 : 0;
}

void cli_print_problem(int status, const sj_buf_t *resp) {
  json_error_t e;
  json_t *j = json_loadb((const char *)resp->p, resp->n, 0, &e);
  const char *title = json_string_value(json_object_get(j, "title"));
  const char *detail = json_string_value(json_object_get(j, "detail"));
  fprintf(stderr, "error %d: %s%s%s\n", status, title ? title : "request failed",
          detail ? ": " : "", detail ? detail : "");
  json_t *errs = json_object_get(j, "errors"), *it;
  size_t i;
  json_array_foreach(errs, i, it) {
    const char *f = json_string_value(json_object_get(it, "field"));
    const char *code = json_string_value(json_object_get(it, "code"));
    const char *msg = json_string_value(json_object_get(it, "message"));
    fprintf(stderr, "  record %lld %s: %s - %s\n",
            (long long)json_integer_value(json_object_get(it, "index")), f ? f : "",
            code ? code : "", msg ? msg : "");
  }
  if (!j)
    fprintf(stderr, "%.*s\n", (int)(resp->n > 2000 ? 2000 : resp->n), (const char *)resp->p);
  json_decref(j);
}

int cli_get_json(const cli_opts_t *o, const char *path, json_t **out) {
  sj_buf_t resp = {0};
  int status = 0, rv = cli_request(o, "GET", path, NULL, NULL, 0, NULL, &status, &resp);
  if (rv == 0 && status != 200) {
    cli_print_problem(status, &resp);
    rv = 1;
  }
  if (rv == 0) {
    json_error_t e;
    *out = json_loadb((const char *)resp.p, resp.n, 0, &e);
    if (!*out) {
      fprintf(stderr, "sanjiao: the node's answer is not JSON: %s\n", e.text);
      rv = 1;
    }
  }
  sj_buf_deinit(&resp);
  return rv;
}

int cli_read_file(const char *path, sj_buf_t *out) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f)
    return -errno;
  char chunk[65536];
  size_t n;
  int rv = 0;
  while (rv == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
    rv = sj_buf_append(out, chunk, n);
  if (rv == 0 && ferror(f))
    rv = -EIO;
  if (f != stdin)
    fclose(f);
  return rv;
}

void cli_path_escape(const char *s, sj_buf_t *out) {
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~:", c)) {
      sj_buf_append_u8(out, c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      sj_buf_append(out, e, 3);
    }
  }
}
