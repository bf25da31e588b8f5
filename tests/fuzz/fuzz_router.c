/* fuzz_router — request routing and query strings (net/router.c, net/req.c) through the net
 * module's internal API (net/net_int.h), with the node's real route table plus a few patterns
 * that use every segment kind. Each input is ":method selector byte" + ":path" bytes; the harness
 * stores them in a request arena and runs route -> parameters -> query exactly as
 * h2_server.c's route_request does (HEAD routed as GET), without a socket.
 *
 * Properties:
 *   - the route found really matches: its pattern with the raw parameter spans substituted
 *     rebuilds the path; {name} spans are non-empty and hold no '/';
 *   - it is the most specific of the routes of that method that match (each route is also kept
 *     in a router of its own, to ask "does this one match?"); 404 means none matches, 405 that
 *     only other methods match, and Allow lists them;
 *   - decoded parameters and query pairs equal a reference percent-decoder's output, never
 *     contain NUL, and an escape error is reported exactly when the reference finds one;
 *   - the bytes fed to the server are as nghttp2 delivers them (no NUL, CR or LF);
 * The first byte's top bit instead selects sj_url_parse on the bytes (client URLs from config and
 * relays): the parsed host, port, authority and path must be pieces of the input. */
#include "net/net_int.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>

static const char *const k_methods[] = {"GET",  "POST",    "PUT", "DELETE",
                                        "HEAD", "OPTIONS", "get", ""};
static const struct {
  const char *method, *pattern;
} k_routes[] = {
    {"GET", "/v1/subjects/{id}/report"},
    {"GET", "/v1/subjects/{id}/audit"},
    {"GET", "/v1/logs/{region}/checkpoint"},
    {"GET", "/v1/logs/{region}/proof/inclusion"},
    {"GET", "/v1/logs/{region}/proof/consistency"},
    {"GET", "/v1/logs/{region}/entries"},
    {"GET", "/v1/keys"},
    {"GET", "/healthz"},
    {"GET", "/metrics"},
    {"GET", "/openapi.json"},
    {"GET", "/v1/records/{region}/{seq}"},
    {"GET", "/v1/subjects/{id}"},
    {"GET", "/v1/trace/{code*}"},
    {"POST", "/v1/logs/{region}/cosignatures"},
    {"GET", "/v1/status"},
    {"GET", "/v1/alerts"},
    {"GET", "/v1/trace/{code}/journey"},
    {"POST", "/v1/epcis/capture"},
    {"GET", "/v1/epcis/capture/{id}"},
    {"GET", "/v1/epcis/events"},
    {"POST", "/v1/records"},
    {"PUT", "/v1/records/{region}/{seq}"},
    {"GET", "/a/{x}/{y*}"},
    {"GET", "/a/b/{z}"},
    {"DELETE", "/a/{x}/c"},
    {"GET", "/{all*}"},
    {"OPTIONS", "/"},
};
#define NROUTES (sizeof k_routes / sizeof k_routes[0])

static sj_router_t *all;          /* every route */
static sj_router_t *one[NROUTES]; /* one[i]: route i alone */

static void handler(sj_req_t *r, void *arg) {
  (void)r;
  (void)arg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  FUZZ_CHECK(sj_router_new(&all) == 0);
  for (size_t i = 0; i < NROUTES; i++) {
    sj_route_info_t info = {.fn = handler, .arg = (void *)(uintptr_t)i};
    FUZZ_CHECK(sj_router_add(all, k_routes[i].method, k_routes[i].pattern, &info) == 0);
    FUZZ_CHECK(sj_router_new(&one[i]) == 0);
    FUZZ_CHECK(sj_router_add(one[i], k_routes[i].method, k_routes[i].pattern, &info) == 0);
  }
  return 0;
}

/* ---- Reference percent-decoding (RFC 3986 §2.1; %00 refused), written independently. */
static int hexdig(int c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static long ref_decode(const char *in, size_t n, int plus, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (in[i] != '%') {
      out[o++] = plus && in[i] == '+' ? ' ' : in[i];
      continue;
    }
    if (n - i < 3)
      return -1; /* truncated escape */
    if (!hexdig(in[i + 1]) || !hexdig(in[i + 2]))
      return -1;
    char hex[3] = {in[i + 1], in[i + 2], 0};
    long v = strtol(hex, NULL, 16);
    if (v == 0)
      return -1;
    out[o++] = (char)v;
    i += 2;
  }
  return (long)o;
}

/* Segment kinds of a pattern, in order: 2 literal, 1 {name}, 0 {name*}. */
static size_t kinds(const char *pattern, int *k) {
  size_t n = 0;
  for (const char *p = pattern + 1;; n++) {
    const char *e = strchr(p, '/');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    k[n] = len >= 2 && p[0] == '{' ? (p[len - 2] == '*' ? 0 : 1) : 2;
    if (!e)
      return n + 1;
    p = e + 1;
  }
}

/* Whether route a is more specific than route b, by the rule net.h documents. */
static int more_specific(size_t a, size_t b) {
  int ka[32], kb[32];
  size_t na = kinds(k_routes[a].pattern, ka), nb = kinds(k_routes[b].pattern, kb);
  for (size_t i = 0; i < na && i < nb; i++)
    if (ka[i] != kb[i])
      return ka[i] > kb[i];
  return na > nb;
}

/* The pattern with the spans substituted must give the path back. */
static void check_rebuild(size_t ri, const char *path, size_t plen, const sj_span_t *sp) {
  char buf[8192];
  size_t o = 0, np = 0;
  for (const char *p = k_routes[ri].pattern; *p;) {
    if (*p == '{') {
      const char *e = strchr(p, '}');
      int rest = e[-1] == '*';
      FUZZ_CHECK(sp[np].off <= plen && sp[np].len <= plen - sp[np].off);
      if (!rest)
        FUZZ_CHECK(sp[np].len > 0 && !memchr(path + sp[np].off, '/', sp[np].len));
      if (o + sp[np].len >= sizeof buf)
        return;
      memcpy(buf + o, path + sp[np].off, sp[np].len);
      o += sp[np].len;
      np++;
      p = e + 1;
      if (rest && sp[np - 1].len == 0 && o > 0 && buf[o - 1] == '/' && plen == o - 1)
        o--; /* "/a/{x*}" also matches "/a" */
    } else {
      if (o + 1 >= sizeof buf)
        return;
      buf[o++] = *p++;
    }
  }
  FUZZ_CHECK(o == plen && memcmp(buf, path, plen) == 0);
}

static void check_kvs(const sj_req_t *r, const sj_kvs_t *k) {
  for (size_t i = 0; i < k->n; i++) {
    const char *name = (const char *)r->arena.p + k->v[i].name_off;
    const char *val = (const char *)r->arena.p + k->v[i].value_off;
    FUZZ_CHECK(strlen(name) == k->v[i].name_len && strlen(val) == k->v[i].value_len);
  }
}

/* Query pieces decoded by the reference; -1 if some escape is bad. */
static int ref_query_ok(const char *q, size_t n, char *tmp) {
  size_t pos = 0;
  while (pos < n) {
    const char *amp = memchr(q + pos, '&', n - pos);
    size_t len = amp ? (size_t)(amp - (q + pos)) : n - pos;
    const char *eq = memchr(q + pos, '=', len);
    size_t kn = eq ? (size_t)(eq - (q + pos)) : len;
    if (ref_decode(q + pos, kn, 1, tmp) < 0 || (eq && ref_decode(eq + 1, len - kn - 1, 1, tmp) < 0))
      return -1;
    pos += len + 1;
  }
  return 0;
}

static void route_one(const char *sent, const char *raw, size_t n) {
  /* As route_request: HEAD is answered by the GET route (RFC 9110 §9.3.2). */
  const char *method = strcmp(sent, "HEAD") ? sent : "GET";
  sj_req_t *r = calloc(1, sizeof *r);
  FUZZ_CHECK(r != NULL);
  /* As h2_server.c's store_header/store_path. */
  long mo = sj_req_store(r, sent, strlen(sent));
  const char *q = memchr(raw, '?', n);
  size_t plen = q ? (size_t)(q - raw) : n;
  long po = sj_req_store(r, raw, plen);
  long qo = q ? sj_req_store(r, q + 1, n - plen - 1) : 0;
  FUZZ_CHECK(mo >= 0 && po >= 0 && qo >= 0);
  r->method_off = (uint32_t)mo;
  r->has_method = 1;
  r->path_off = (uint32_t)po;
  r->path_len = (uint32_t)plen;
  r->query_off = (uint32_t)qo;
  r->query_len = q ? (uint32_t)(n - plen - 1) : 0;
  r->has_path = 1;

  char allow[128];
  sj_span_t spans[SJ_MAX_PARAMS];
  int status = 0;
  const sj_route_info_t *ri = sj_router_match(all, method, sj_req_path(r), r->path_len, spans,
                                              &status, allow, sizeof allow);
  /* Which routes match on their own. */
  int matches[NROUTES], other_method = 0;
  for (size_t i = 0; i < NROUTES; i++) {
    sj_span_t tmp[SJ_MAX_PARAMS];
    int st;
    char al[128];
    matches[i] = sj_router_match(one[i], k_routes[i].method, sj_req_path(r), r->path_len, tmp, &st,
                                 al, sizeof al) != NULL;
    if (matches[i] && strcmp(k_routes[i].method, method) != 0) {
      other_method = 1;
      FUZZ_CHECK(ri || strstr(allow, k_routes[i].method));
    }
  }
  if (!ri) {
    FUZZ_CHECK(status == (other_method ? 405 : 404));
    for (size_t i = 0; i < NROUTES; i++)
      FUZZ_CHECK(!matches[i] || strcmp(k_routes[i].method, method) != 0);
    goto out;
  }
  size_t w = (size_t)(uintptr_t)ri->arg;
  FUZZ_CHECK(w < NROUTES && matches[w] && strcmp(k_routes[w].method, method) == 0);
  for (size_t i = 0; i < NROUTES; i++)
    if (i != w && matches[i] && strcmp(k_routes[i].method, method) == 0)
      FUZZ_CHECK(!more_specific(i, w));
  check_rebuild(w, sj_req_path(r), r->path_len, spans);

  char *tmp = malloc(n + 1);
  FUZZ_CHECK(tmp != NULL);
  int bad_params = 0;
  for (size_t i = 0; i < ri->nparams; i++)
    if (ref_decode(sj_req_path(r) + spans[i].off, spans[i].len, 0, tmp) < 0)
      bad_params = 1;
  int rv = sj_req_set_params(r, ri, spans);
  FUZZ_CHECK(rv == 0 || rv == SJ_EFORMAT);
  FUZZ_CHECK((rv == SJ_EFORMAT) == bad_params);
  if (rv == 0) {
    check_kvs(r, &r->params);
    for (size_t i = 0; i < ri->nparams; i++) {
      const char *v = sj_req_param(r, ri->param_names[i]);
      long l = ref_decode(sj_req_path(r) + spans[i].off, spans[i].len, 0, tmp);
      FUZZ_CHECK(v && l >= 0 && strlen(v) == (size_t)l && memcmp(v, tmp, (size_t)l) == 0);
    }
    int bad_query = ref_query_ok(raw + plen + 1, q ? n - plen - 1 : 0, tmp) < 0;
    rv = sj_req_parse_query(r);
    FUZZ_CHECK(rv == 0 || rv == SJ_EFORMAT);
    FUZZ_CHECK((rv == SJ_EFORMAT) == bad_query);
    if (rv == 0)
      check_kvs(r, &r->query);
  }
  free(tmp);
out:
  sj_buf_deinit(&r->arena);
  free(r->hdrs.v);
  free(r->params.v);
  free(r->query.v);
  free(r);
}

static void url_one(const char *s, size_t n) {
  sj_url_t u;
  if (sj_url_parse(s, &u) != 0)
    return;
  size_t hl = strlen(u.host);
  FUZZ_CHECK(hl > 0 && hl < sizeof u.host && u.port > 0);
  FUZZ_CHECK(u.path >= s && u.path <= s + n && (*u.path == 0 || strchr("/?#", *u.path)));
  FUZZ_CHECK(strstr(s, u.authority) != NULL && strstr(s, u.host) != NULL);
  FUZZ_CHECK(!memchr(u.host, '@', hl) && !memchr(u.host, ' ', hl));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096)
    return 0;
  const char *raw = (const char *)data + 1;
  size_t n = size - 1;
  if (data[0] & 0x80) {
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, raw, n);
    s[n] = 0;
    url_one(s, strlen(s));
    free(s);
    return 0;
  }
  if (memchr(raw, 0, n) || memchr(raw, '\r', n) || memchr(raw, '\n', n))
    return 0; /* nghttp2 refuses such header values before we see them */
  route_one(k_methods[data[0] & 7], raw, n);
  return 0;
}
