/* net/router.c — method + path-pattern routing and percent-decoding (RFC 3986 §2.1).
 *
 * A pattern is split into segments when added, a request's path once per request (without
 * copying: offsets into the raw path); a route whose segment count differs is skipped with one
 * compare, and the parameters' bytes are recorded as spans (decoding happens later, into the
 * request's arena, only for the route that won). The route table is small (tens of routes), so a
 * linear scan that keeps the most specific match is both simple and fast. */
#include "net/net_int.h"

#include <stdlib.h>
#include <string.h>

/* Segment kinds, ordered by specificity: a literal beats a parameter beats a rest-parameter. */
enum { SEG_REST = 0, SEG_PARAM = 1, SEG_LIT = 2 };

#define PATH_SEGS 32 /* segments of a pattern at most (see split_t) */

typedef struct {
  char *text; /* literal text, or the parameter's name */
  size_t len;
  int kind;
} seg_t;

typedef struct {
  char *method;
  seg_t *segs;
  size_t nsegs;
  sj_route_info_t info; /* info.param_names point into segs[].text */
} route_t;

struct sj_router {
  route_t *r;
  size_t n, cap;
};

int sj_router_new(sj_router_t **out) {
  sj_router_t *rt = calloc(1, sizeof *rt);
  if (!rt)
    return -ENOMEM;
  *out = rt;
  return 0;
}

static void route_deinit(route_t *r) {
  for (size_t i = 0; i < r->nsegs; i++)
    free(r->segs[i].text);
  free(r->segs);
  free(r->method);
}

void sj_router_free(sj_router_t *rt) {
  if (!rt)
    return;
  for (size_t i = 0; i < rt->n; i++)
    route_deinit(&rt->r[i]);
  free(rt->r);
  free(rt);
}

/* Classifies one pattern segment [p, p+n). Returns its kind or -1 if malformed. */
static int seg_kind(const char *p, size_t n, const char **name, size_t *nlen) {
  if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
    *name = p + 1;
    *nlen = n - 2;
    int kind = SEG_PARAM;
    if (*nlen && (*name)[*nlen - 1] == '*') {
      (*nlen)--;
      kind = SEG_REST;
    }
    if (!*nlen || memchr(*name, '{', *nlen) || memchr(*name, '}', *nlen))
      return -1;
    return kind;
  }
  if (memchr(p, '{', n) || memchr(p, '}', n))
    return -1;
  *name = p;
  *nlen = n;
  return SEG_LIT;
}

static int parse_pattern(const char *pattern, route_t *r) {
  if (pattern[0] != '/')
    return SJ_EINVAL;
  size_t cap = 1;
  for (const char *q = pattern + 1; *q; q++)
    cap += *q == '/';
  r->segs = calloc(cap, sizeof *r->segs);
  if (!r->segs)
    return -ENOMEM;
  const char *p = pattern + 1;
  for (;;) {
    const char *e = strchr(p, '/');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    const char *name;
    size_t nlen;
    int kind = seg_kind(p, n, &name, &nlen);
    if (kind < 0 || (kind == SEG_REST && e))
      return SJ_EINVAL; /* malformed, or a rest-parameter not last */
    seg_t *s = &r->segs[r->nsegs++];
    s->kind = kind;
    s->len = nlen;
    if (!(s->text = strndup(name, nlen)))
      return -ENOMEM;
    if (kind != SEG_LIT) {
      if (r->info.nparams == SJ_MAX_PARAMS)
        return SJ_EINVAL;
      r->info.param_names[r->info.nparams++] = s->text;
    }
    if (!e)
      return r->nsegs <= PATH_SEGS ? 0 : SJ_EINVAL;
    p = e + 1;
  }
}

static int same_shape(const route_t *a, const route_t *b) {
  if (a->nsegs != b->nsegs)
    return 0;
  for (size_t i = 0; i < a->nsegs; i++) {
    if (a->segs[i].kind != b->segs[i].kind)
      return 0;
    if (a->segs[i].kind == SEG_LIT && (a->segs[i].len != b->segs[i].len ||
                                       memcmp(a->segs[i].text, b->segs[i].text, a->segs[i].len)))
      return 0;
  }
  return 1;
}

int sj_router_add(sj_router_t *rt, const char *method, const char *pattern,
                  const sj_route_info_t *info) {
  if (!method || !*method || !pattern)
    return SJ_EINVAL;
  if (rt->n == rt->cap) {
    size_t cap = rt->cap ? rt->cap * 2 : 16;
    route_t *nr = realloc(rt->r, cap * sizeof *nr);
    if (!nr)
      return -ENOMEM;
    rt->r = nr;
    rt->cap = cap;
  }
  route_t r = {0};
  r.info = *info;
  r.info.nparams = 0;
  int rv = parse_pattern(pattern, &r);
  if (rv == 0 && !(r.method = strdup(method)))
    rv = -ENOMEM;
  for (size_t i = 0; rv == 0 && i < rt->n; i++)
    if (strcmp(rt->r[i].method, method) == 0 && same_shape(&rt->r[i], &r))
      rv = SJ_EINVAL;
  if (rv < 0) {
    route_deinit(&r);
    return rv;
  }
  r.info.method = r.method;
  rt->r[rt->n++] = r;
  return 0;
}

/* A request path split once into segments (the text between slashes), so that each route costs
 * a few integer compares unless its shape fits. Only the first PATH_SEGS are kept: longer paths
 * can match only a rest-parameter route, whose fixed part is at most PATH_SEGS - 1 segments
 * (sj_router_add refuses longer patterns). */
typedef struct {
  sj_span_t seg[PATH_SEGS];
  size_t n; /* segments in the path (may exceed PATH_SEGS) */
  size_t len;
} split_t;

static int split_path(const char *path, size_t plen, split_t *sp) {
  if (!plen || path[0] != '/')
    return 0;
  sp->n = 0;
  sp->len = plen;
  size_t pos = 1;
  for (;;) {
    const char *e = memchr(path + pos, '/', plen - pos);
    size_t end = e ? (size_t)(e - path) : plen;
    if (sp->n < PATH_SEGS)
      sp->seg[sp->n] = (sj_span_t){(uint32_t)pos, (uint32_t)(end - pos)};
    sp->n++;
    if (!e)
      return 1;
    pos = end + 1;
  }
}

/* Matches the split path against r; fills spans for its parameters. */
static int match(const route_t *r, const char *path, const split_t *sp, sj_span_t *spans) {
  int rest = r->nsegs && r->segs[r->nsegs - 1].kind == SEG_REST;
  size_t fixed = r->nsegs - (size_t)rest, np = 0;
  if (rest ? sp->n < fixed : sp->n != fixed)
    return 0;
  for (size_t i = 0; i < fixed; i++) {
    const seg_t *s = &r->segs[i];
    const sj_span_t *g = &sp->seg[i];
    if (s->kind == SEG_LIT) {
      if (g->len != s->len || memcmp(path + g->off, s->text, s->len))
        return 0;
    } else {
      if (!g->len)
        return 0;
      spans[np++] = *g;
    }
  }
  if (rest) { /* the rest of the path after the fixed segments' slash, possibly empty */
    uint32_t off = sp->n == fixed ? (uint32_t)sp->len : sp->seg[fixed].off;
    spans[np] = (sj_span_t){off, (uint32_t)sp->len - off};
  }
  return 1;
}

/* Nonzero if a is more specific than b (both matched the same path). */
static int more_specific(const route_t *a, const route_t *b) {
  size_t n = a->nsegs < b->nsegs ? a->nsegs : b->nsegs;
  for (size_t i = 0; i < n; i++)
    if (a->segs[i].kind != b->segs[i].kind)
      return a->segs[i].kind > b->segs[i].kind;
  return a->nsegs > b->nsegs;
}

static void allow_add(char *allow, size_t cap, const char *m) {
  size_t ml = strlen(m), al = strlen(allow);
  /* Skip methods already listed (several patterns may match with the same method). */
  for (const char *p = allow; (p = strstr(p, m)) != NULL; p += ml)
    if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == 0))
      return;
  if (al + ml + 3 > cap)
    return;
  if (al) {
    memcpy(allow + al, ", ", 2);
    al += 2;
  }
  memcpy(allow + al, m, ml + 1);
}

const sj_route_info_t *sj_router_match(const sj_router_t *rt, const char *method, const char *path,
                                       size_t plen, sj_span_t *spans, int *status, char *allow,
                                       size_t allowcap) {
  const route_t *best = NULL;
  sj_span_t tmp[SJ_MAX_PARAMS];
  split_t sp;
  int other_method = 0;
  if (allowcap)
    allow[0] = 0;
  int ok = split_path(path, plen, &sp);
  for (size_t i = 0; ok && i < rt->n; i++) {
    const route_t *r = &rt->r[i];
    if (!match(r, path, &sp, tmp))
      continue;
    int same = strcmp(r->method, method) == 0;
    if (same && best && !more_specific(r, best))
      continue;
    if (!same) {
      other_method = 1;
      allow_add(allow, allowcap, r->method);
      continue;
    }
    best = r;
    memcpy(spans, tmp, r->info.nparams * sizeof *spans);
  }
  if (best)
    return &best->info;
  *status = other_method ? 405 : 404;
  return NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

long sj_pct_decode(const char *in, size_t n, int plus_space, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = in[i];
    if (c == '%') {
      if (n - i < 3)
        return SJ_EFORMAT;
      int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h < 0 || l < 0 || (h | l) == 0)
        return SJ_EFORMAT; /* not hex, or %00 (values are handed out as C strings) */
      out[o++] = (char)(h << 4 | l);
      i += 2;
    } else {
      out[o++] = plus_space && c == '+' ? ' ' : c;
    }
  }
  return (long)o;
}
