/* node/tokens.c — loading the tokens file and finding a presented token in constant time. */
#include "node/tokens.h"

#include "common/common.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sj_tokens {
  sj_token_t *v;
  size_t n, cap;
};

static const char *role_names[] = {"public", "submit", "authority", "subject", "peer"};

const char *sj_role_name(sj_role_t r) {
  return (unsigned)r < sizeof role_names / sizeof *role_names ? role_names[r] : "?";
}

int sj_role_parse(const char *s, sj_role_t *out) {
  for (int i = SJ_ROLE_SUBMIT; i <= SJ_ROLE_PEER; i++)
    if (strcmp(s, role_names[i]) == 0) {
      *out = (sj_role_t)i;
      return 0;
    }
  return SJ_EINVAL;
}

int sj_tokens_empty(sj_tokens_t **out) {
  sj_tokens_t *t = calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  *out = t;
  return 0;
}

void sj_tokens_free(sj_tokens_t *t) {
  if (!t)
    return;
  free(t->v);
  free(t);
}

size_t sj_tokens_count(const sj_tokens_t *t) {
  return t->n;
}

/* Parses one non-comment line into tok. Returns 0 or SJ_EFORMAT. */
static int parse_line(char *line, sj_token_t *tok) {
  char *save = NULL, *role = strtok_r(line, " \t", &save), *hex = strtok_r(NULL, " \t", &save);
  if (!role || !hex || sj_role_parse(role, &tok->role) ||
      sj_hex_decode(hex, strlen(hex), tok->hash, 32))
    return SJ_EFORMAT;
  if (tok->role == SJ_ROLE_SUBJECT || tok->role == SJ_ROLE_PEER) {
    char *arg = strtok_r(NULL, " \t", &save);
    if (!arg || strlen(arg) >= sizeof tok->arg)
      return SJ_EFORMAT;
    snprintf(tok->arg, sizeof tok->arg, "%s", arg);
  }
  char *label = strtok_r(NULL, "", &save);
  while (label && (*label == ' ' || *label == '\t'))
    label++;
  snprintf(tok->label, sizeof tok->label, "%s", label ? label : "");
  return 0;
}

static int push(sj_tokens_t *t, const sj_token_t *tok) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    sj_token_t *v = realloc(t->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = *tok;
  return 0;
}

int sj_tokens_load(const char *path, sj_tokens_t **out, int *errline) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  sj_tokens_t *t = NULL;
  int rv = sj_tokens_empty(&t), lineno = 0;
  char line[512];
  while (rv == 0 && fgets(line, sizeof line, f)) {
    lineno++;
    line[strcspn(line, "\r\n")] = 0;
    char *p = line + strspn(line, " \t");
    if (*p == 0 || *p == '#')
      continue;
    sj_token_t tok;
    memset(&tok, 0, sizeof tok);
    rv = parse_line(p, &tok);
    if (rv == 0)
      rv = push(t, &tok);
  }
  fclose(f);
  if (rv) {
    if (errline)
      *errline = lineno;
    sj_tokens_free(t);
    return rv;
  }
  *out = t;
  return 0;
}

sj_token_t *sj_tokens_find(sj_tokens_t *t, const char *token, size_t n) {
  uint8_t h[32];
  sj_token_t *found = NULL;
  sj_sha256(token, n, h);
  for (size_t i = 0; i < t->n; i++) { /* no early exit: every line is compared */
    int eq = sodium_memcmp(h, t->v[i].hash, 32) == 0;
    found = eq ? &t->v[i] : found;
  }
  return found;
}
