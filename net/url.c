/* net/url.c — the small part of RFC 3986 the client needs: "http://host[:port][/path]" and the
 * same with "https://", host a name, an IPv4 address or a bracketed IPv6 address. */
#include "net/net_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *p, size_t n, uint16_t *out) {
  if (!n || n > 5)
    return SJ_EINVAL;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return SJ_EINVAL;
    v = v * 10 + (unsigned)(p[i] - '0');
  }
  if (!v || v > 65535)
    return SJ_EINVAL;
  *out = (uint16_t)v;
  return 0;
}

int sj_url_parse(const char *url, sj_url_t *out) {
  static const char http[] = "http://", https[] = "https://";
  int tls;
  if (url && strncmp(url, http, sizeof http - 1) == 0)
    tls = 0;
  else if (url && strncmp(url, https, sizeof https - 1) == 0)
    tls = 1;
  else
    return SJ_EINVAL;
  const char *h = url + (tls ? sizeof https : sizeof http) - 1;
  const char *end = h + strcspn(h, "/?#");
  const char *host = h, *hend, *colon = NULL;
  if (*h == '[') {
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb)
      return SJ_EINVAL;
    host = h + 1;
    hend = rb;
    if (rb + 1 < end) {
      if (rb[1] != ':')
        return SJ_EINVAL;
      colon = rb + 1;
    }
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    hend = colon ? colon : end;
  }
  size_t hlen = (size_t)(hend - host);
  if (!hlen || hlen >= sizeof out->host)
    return SJ_EINVAL;
  sj_url_t u;
  memset(&u, 0, sizeof u);
  memcpy(u.host, host, hlen);
  u.port = tls ? 443 : 80;
  u.tls = tls;
  if (colon && parse_port(colon + 1, (size_t)(end - colon - 1), &u.port) < 0)
    return SJ_EINVAL;
  if (memchr(u.host, '@', hlen) || memchr(u.host, ' ', hlen))
    return SJ_EINVAL; /* userinfo and blanks are not supported */
  snprintf(u.authority, sizeof u.authority, "%.*s", (int)(end - h), h);
  u.path = end;
  *out = u;
  return 0;
}
