/* node/web/web_assets.h — the web pages' static files, embedded in the node binary at build time
 * (node/web/assets.cmake generates build/gen/web_assets.c with node/web/embed_web.cmake).
 * The table and every byte it points to are read-only and live for the whole process; any thread
 * may read them. Served by node/api_web.c. */
#ifndef SJ_WEB_ASSETS_H
#define SJ_WEB_ASSETS_H

#include <stddef.h>

typedef struct {
  const char *name;          /* file name under node/web/, e.g. "app.js" */
  const char *ctype;         /* Content-Type, from the file name's extension */
  const char *etag;          /* "\"<first 16 hex digits of the file's SHA-256>\"" */
  const unsigned char *data; /* the file's bytes (followed by one NUL not counted in len) */
  size_t len;
} sj_web_asset_t;

extern const sj_web_asset_t sj_web_assets[];
extern const size_t sj_web_nassets;

#endif
