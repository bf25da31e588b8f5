/* node/api_web.c — the web pages (docs/WEB.md), served from memory:
 *   GET /                 search (a trace code, a USCC, or with a token an identity number)
 *   GET /trace/{code*}    a trace code's journey, each step proven in the browser
 *   GET /subject/{id*}    a subject's credit report
 *   GET /web/{name}       the static assets (node/web/, embedded by node/web/assets.cmake)
 * The three pages are one HTML shell; node/web/app.js reads the path and renders the view from the
 * public API on the same origin (/v1/...), so the pages show exactly what the API shows the
 * caller: disclosure stays in node/disclosure.c, never here.
 *
 * Responses are the embedded bytes themselves (no copy): they live as long as the process. Every
 * response carries a strict Content-Security-Policy (same-origin scripts, styles, images and
 * fetches only; no inline script), no referrer, and an ETag so a browser revalidates cheaply.
 * Loop thread only, like every handler. */
#include "node/node_int.h"
#include "node/web/web_assets.h"

#include <string.h>

/* 'self' only: the assets are embedded, the API is on the same origin, nothing comes from a CDN. */
#define WEB_CSP                                                                                    \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "  \
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static const sj_web_asset_t *asset_find(const char *name) {
  for (size_t i = 0; name && i < sj_web_nassets; i++)
    if (strcmp(sj_web_assets[i].name, name) == 0)
      return &sj_web_assets[i];
  return NULL;
}

/* Whether If-None-Match names the asset's ETag (a list, or "*"). */
static int not_modified(sj_req_t *req, const sj_web_asset_t *a) {
  const char *inm = sj_req_header(req, "if-none-match", NULL);
  return inm && (strcmp(inm, "*") == 0 || strstr(inm, a->etag) != NULL);
}

static void serve(sj_node_t *n, sj_req_t *req, const sj_web_asset_t *a) {
  uint64_t t0 = api_now_us();
  /* no-cache: revalidate each time (a new node build may change the assets); the ETag makes it
   * a 304 without a body. Content-Type first: a 304 leaves it out. */
  sj_header_t h[] = {{"content-type", a->ctype},
                     {"etag", a->etag},
                     {"cache-control", "no-cache"},
                     {"content-security-policy", WEB_CSP},
                     {"x-content-type-options", "nosniff"},
                     {"referrer-policy", "no-referrer"}};
  size_t nh = sizeof h / sizeof h[0];
  int status = not_modified(req, a) ? 304 : 200;
  if (status == 304)
    sj_req_respond(req, 304, h + 1, nh - 1, NULL, 0);
  else /* static bytes: no free function */
    sj_req_respond_owned(req, 200, h, nh, (void *)a->data, a->len, NULL);
  sj_metrics_request(n->metrics, n->route_ids[R_WEB], status, api_now_us() - t0);
}

static void get_page(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  const sj_web_asset_t *a = asset_find("index.html");
  if (!a) { /* only if the build embedded no pages */
    api_problem(n, req, R_WEB, 404, "Not Found", "this node was built without web pages", NULL);
    return;
  }
  serve(n, req, a);
}

static void get_asset(sj_req_t *req, void *arg) {
  sj_node_t *n = arg;
  const sj_web_asset_t *a = asset_find(sj_req_param(req, "name"));
  if (!a) {
    api_problem(n, req, R_WEB, 404, "Not Found", "no such web asset", NULL);
    return;
  }
  serve(n, req, a);
}

void api_register_web(sj_node_t *n) {
  sj_server_t *s = n->server;
  sj_server_route(s, "GET", "/", NULL, get_page, n);
  sj_server_route(s, "GET", "/trace/{code*}", NULL, get_page, n);
  sj_server_route(s, "GET", "/subject/{id*}", NULL, get_page, n);
  sj_server_route(s, "GET", "/web/{name}", NULL, get_asset, n);
}
