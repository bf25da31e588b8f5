/* crypto/checkpoint.c — C2SP tlog-checkpoint texts:
 *
 *   <origin>\n<tree size, decimal>\n<base64 root hash>\n[<extension line>\n ...]
 *
 * Parsing is strict: origin 1..SJ_ORIGIN_MAX bytes, size in canonical decimal (no sign, no
 * leading zeros except "0" itself, at most 2^64 - 1), root exactly 32 bytes of canonical padded
 * base64, extension lines non-empty, and the text valid UTF-8 ending in "\n". */
#include "crypto/crypto_int.h"

#include <inttypes.h>
#include <string.h>

static int origin_ok(const char *s, size_t n) {
  return n >= 1 && n <= SJ_ORIGIN_MAX && sj_text_ok(s, n) && !memchr(s, '\n', n);
}

int sj_checkpoint_format(const sj_checkpoint_t *c, sj_buf_t *out) {
  size_t on = strnlen(c->origin, sizeof c->origin);
  if (on == sizeof c->origin || !origin_ok(c->origin, on))
    return SJ_EINVAL;
  char root[SJ_HASH_LEN * 4 / 3 + 4];
  sj_base64_encode(c->root, SJ_HASH_LEN, root);
  int rv = sj_buf_reserve(out, on + 20 + sizeof root + 3);
  if (rv)
    return rv;
  return sj_buf_printf(out, "%s\n%" PRIu64 "\n%s\n", c->origin, c->size, root);
}

/* Canonical decimal: 1..20 digits, no leading zero unless the number is 0, no overflow. */
static int parse_size(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
    return SJ_EFORMAT;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return SJ_EFORMAT;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return SJ_EFORMAT;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* The next line of p[*off..n), without its "\n"; SJ_EFORMAT if no newline ends it. */
static int next_line(const char *p, size_t n, size_t *off, sj_bytes_t *line) {
  const char *nl = memchr(p + *off, '\n', n - *off);
  if (!nl)
    return SJ_EFORMAT;
  line->p = (const uint8_t *)p + *off;
  line->n = (size_t)(nl - (p + *off));
  *off += line->n + 1;
  return 0;
}

int sj_checkpoint_parse(const char *text, size_t n, sj_checkpoint_t *out) {
  if (n == 0 || n > SJ_NOTE_MAX_LEN || text[n - 1] != '\n' || !sj_text_ok(text, n))
    return SJ_EFORMAT;
  sj_checkpoint_t c;
  memset(&c, 0, sizeof c);
  sj_bytes_t origin, size, root, ext;
  size_t off = 0, rl;
  if (next_line(text, n, &off, &origin) || next_line(text, n, &off, &size) ||
      next_line(text, n, &off, &root))
    return SJ_EFORMAT;
  if (!origin_ok((const char *)origin.p, origin.n) ||
      parse_size((const char *)size.p, size.n, &c.size) ||
      sj_base64_decode((const char *)root.p, root.n, c.root, SJ_HASH_LEN, &rl) || rl != SJ_HASH_LEN)
    return SJ_EFORMAT;
  while (off < n) /* extension lines: allowed, ignored, never empty */
    if (next_line(text, n, &off, &ext) || ext.n == 0)
      return SJ_EFORMAT;
  memcpy(c.origin, origin.p, origin.n);
  *out = c;
  return 0;
}
