/* node/epc.c — EPC URN and GS1 Digital Link parsing into one canonical EPC URN (see epc.h).
 *
 * Both parsers reduce the input to the same intermediate form — the full GS1 key with its check
 * digit (GTIN-14, SSCC-18, GLN-13, GRAI-13) plus the decoded serial, lot or extension — and one
 * formatter writes the URN from it. That is what makes every spelling of an identifier meet on one
 * index key: the URN's own company-prefix split is discarded on the way in. */
#include "node/epc.h"

#include "common/common.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Canonical company prefix length (epc.h, docs/API.md). */
#define CP_LEN 7

/* The GS1 key and attribute an identifier reduces to. */
typedef struct {
  sj_epc_scheme_t scheme;
  char key[19]; /* GTIN-14, SSCC-18, GLN-13 or GRAI-13 with its check digit, NUL-terminated */
  size_t keylen;
  char attr[21]; /* decoded serial / lot / GLN extension; "*" for a GTIN class */
  size_t attrlen;
} gs1_t;

typedef struct {
  const char *p;
  size_t n;
} span_t;

const char *sj_epc_code_name(sj_epc_code_t c) {
  switch (c) {
  case SJ_EPC_OK:
    return "OK";
  case SJ_EPC_FORMAT:
    return "EPC_FORMAT";
  case SJ_EPC_SCHEME:
    return "EPC_SCHEME_UNSUPPORTED";
  case SJ_EPC_DIGITS:
    return "EPC_DIGITS";
  case SJ_EPC_PREFIX_LENGTH:
    return "EPC_COMPANY_PREFIX_LENGTH";
  case SJ_EPC_SERIAL:
    return "EPC_SERIAL_INVALID";
  case SJ_EPC_DL_PATH:
    return "DL_PATH_INVALID";
  case SJ_EPC_GTIN_LENGTH:
    return "GTIN_LENGTH";
  case SJ_EPC_GTIN_CHARSET:
    return "GTIN_CHARSET";
  case SJ_EPC_GTIN_CHECKSUM:
    return "GTIN_CHECKSUM";
  case SJ_EPC_CHECK_DIGIT:
    return "GS1_CHECK_DIGIT";
  }
  return "UNKNOWN";
}

const char *sj_epc_code_message(sj_epc_code_t c) {
  switch (c) {
  case SJ_EPC_OK:
    return "valid";
  case SJ_EPC_FORMAT:
    return "not a GS1 EPC URN or GS1 Digital Link URI";
  case SJ_EPC_SCHEME:
    return "EPC scheme not supported (sgtin, lgtin, idpat:sgtin, sscc, sgln, grai)";
  case SJ_EPC_DIGITS:
    return "company prefix and reference have a non-digit or the wrong digit count";
  case SJ_EPC_PREFIX_LENGTH:
    return "GS1 company prefix must have 6 to 12 digits";
  case SJ_EPC_SERIAL:
    return "serial, lot or extension empty, too long, or outside the GS1 AI 82 characters";
  case SJ_EPC_DL_PATH:
    return "Digital Link path has unknown, repeated or misordered application identifiers";
  case SJ_EPC_GTIN_LENGTH:
    return "GTIN must have 8, 12, 13 or 14 digits";
  case SJ_EPC_GTIN_CHARSET:
    return "GTIN must be digits only";
  case SJ_EPC_GTIN_CHECKSUM:
    return "GTIN check digit is wrong";
  case SJ_EPC_CHECK_DIGIT:
    return "SSCC, GLN or GRAI check digit is wrong";
  }
  return "unknown error";
}

/* ---- Characters -------------------------------------------------------------------------------
 */

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int all_digits(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_digit(p[i]))
      return 0;
  return 1;
}

/* GS1 General Specifications, figure 7.11-1: the 82 characters allowed in lots and serials. */
static int is_ai82(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
    return 1;
  return c != 0 && strchr("!\"%&'()*+,-./:;<=>?_", c) != NULL;
}

/* AI 82 characters the Tag Data Standard requires escaped inside an EPC URN. */
static int urn_must_escape(unsigned char c) {
  return c != 0 && strchr("\"%&/<>?", c) != NULL;
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

/* Percent-decodes s into out (at most max bytes). In an EPC URN (urn != 0) the characters the Tag
 * Data Standard escapes may not appear raw; in a Digital Link path segment RFC 3986 applies and
 * only '%' must be escaped. Every decoded character must be in AI 82. Empty is refused. */
static sj_epc_code_t decode_attr(span_t s, int urn, char *out, size_t max, size_t *outn) {
  size_t k = 0;
  for (size_t i = 0; i < s.n; i++) {
    unsigned char c = (unsigned char)s.p[i];
    if (c == '%') {
      if (s.n - i < 3 || hexval(s.p[i + 1]) < 0 || hexval(s.p[i + 2]) < 0)
        return SJ_EPC_SERIAL;
      c = (unsigned char)(hexval(s.p[i + 1]) << 4 | hexval(s.p[i + 2]));
      i += 2;
    } else if (urn && urn_must_escape(c)) {
      return SJ_EPC_SERIAL;
    }
    if (!is_ai82(c) || k == max)
      return SJ_EPC_SERIAL;
    out[k++] = (char)c;
  }
  if (k == 0)
    return SJ_EPC_SERIAL;
  out[k] = 0;
  *outn = k;
  return SJ_EPC_OK;
}

/* Appends the n digits of p and their GS1 check digit to g->key. */
static void key_finish(gs1_t *g) {
  g->key[g->keylen] = (char)sj_gs1_check_digit(g->key, g->keylen);
  g->key[++g->keylen] = 0;
}

static void key_append(gs1_t *g, const char *p, size_t n) {
  memcpy(g->key + g->keylen, p, n);
  g->keylen += n;
}

/* ---- EPC URNs (GS1 Tag Data Standard §6)
 * --------------------------------------------------------- */

typedef struct {
  const char *prefix; /* lower case; matched case-insensitively */
  sj_epc_scheme_t scheme;
  size_t digits;       /* company prefix + reference */
  int has_attr;        /* a third component follows */
  size_t attr_max;     /* longest serial / lot / extension */
  int indicator_first; /* reference starts with an indicator / extension digit moved to front */
} urn_scheme_t;

static const urn_scheme_t urn_schemes[] = {
    {"urn:epc:id:sgtin:", SJ_EPC_SGTIN, 13, 1, 20, 1},
    {"urn:epc:class:lgtin:", SJ_EPC_LGTIN, 13, 1, 20, 1},
    {"urn:epc:idpat:sgtin:", SJ_EPC_GTIN_CLASS, 13, 1, 1, 1},
    {"urn:epc:id:sscc:", SJ_EPC_SSCC, 17, 0, 0, 1},
    {"urn:epc:id:sgln:", SJ_EPC_SGLN, 12, 1, 20, 0},
    {"urn:epc:id:grai:", SJ_EPC_GRAI, 12, 1, 16, 0},
};

static int has_prefix_ci(const char *s, size_t n, const char *prefix) {
  size_t pn = strlen(prefix);
  return n >= pn && strncasecmp(s, prefix, pn) == 0;
}

/* Splits s at its first '.'; the head goes to *head, s keeps the rest. */
static int split_dot(span_t *s, span_t *head) {
  const char *dot = memchr(s->p, '.', s->n);
  if (!dot)
    return -1;
  head->p = s->p;
  head->n = (size_t)(dot - s->p);
  s->n -= head->n + 1;
  s->p = dot + 1;
  return 0;
}

/* Company prefix and reference: both digits, prefix 6..12, together the scheme's total. */
static sj_epc_code_t check_cp_ref(const urn_scheme_t *u, span_t cp, span_t ref) {
  if (!all_digits(cp.p, cp.n) || !all_digits(ref.p, ref.n))
    return SJ_EPC_DIGITS;
  if (cp.n < 6 || cp.n > 12)
    return SJ_EPC_PREFIX_LENGTH;
  return cp.n + ref.n == u->digits ? SJ_EPC_OK : SJ_EPC_DIGITS;
}

static sj_epc_code_t parse_urn_body(const urn_scheme_t *u, span_t rest, gs1_t *g) {
  span_t cp, ref;
  if (split_dot(&rest, &cp))
    return SJ_EPC_FORMAT;
  if (u->has_attr) {
    if (split_dot(&rest, &ref))
      return SJ_EPC_FORMAT;
  } else {
    ref = rest;
  }
  sj_epc_code_t rv = check_cp_ref(u, cp, ref);
  if (rv)
    return rv;
  g->scheme = u->scheme;
  g->keylen = 0;
  if (u->indicator_first) { /* indicator / extension digit leads the GS1 key */
    key_append(g, ref.p, 1);
    key_append(g, cp.p, cp.n);
    key_append(g, ref.p + 1, ref.n - 1);
  } else {
    key_append(g, cp.p, cp.n);
    key_append(g, ref.p, ref.n);
  }
  key_finish(g);
  g->attrlen = 0;
  if (u->scheme == SJ_EPC_GTIN_CLASS) {
    if (rest.n != 1 || rest.p[0] != '*')
      return SJ_EPC_FORMAT;
    memcpy(g->attr, "*", 2);
    g->attrlen = 1;
    return SJ_EPC_OK;
  }
  return u->has_attr ? decode_attr(rest, 1, g->attr, u->attr_max, &g->attrlen) : SJ_EPC_OK;
}

static sj_epc_code_t parse_urn(const char *s, size_t n, gs1_t *g) {
  for (size_t i = 0; i < sizeof urn_schemes / sizeof urn_schemes[0]; i++) {
    const urn_scheme_t *u = &urn_schemes[i];
    if (has_prefix_ci(s, n, u->prefix)) {
      size_t pn = strlen(u->prefix);
      return parse_urn_body(u, (span_t){s + pn, n - pn}, g);
    }
  }
  return SJ_EPC_SCHEME;
}

/* ---- GS1 Digital Link URIs (GS1 Digital Link standard 1.x, uncompressed form)
 * ---------------------- https://{host}[/{any prefix}]/{primary key AI}/{value}[/{qualifier
 * AI}/{value}]...[?query] The primary key is the leftmost segment from which the rest of the path
 * reads as a primary key followed by its qualifiers in the standard's order. */

#define DL_MAX_SEGS 32

typedef struct {
  const char *ai;
  const char *qualifiers[3]; /* allowed qualifier AIs in the required order */
} dl_key_t;

static const dl_key_t dl_keys[] = {
    {"01", {"22", "10", "21"}},
    {"00", {NULL, NULL, NULL}},
    {"414", {"254", NULL, NULL}},
    {"8003", {NULL, NULL, NULL}},
};

static int span_is(span_t s, const char *lit) {
  return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static const dl_key_t *dl_key_of(span_t s) {
  for (size_t i = 0; i < sizeof dl_keys / sizeof dl_keys[0]; i++)
    if (span_is(s, dl_keys[i].ai))
      return &dl_keys[i];
  return NULL;
}

/* Checks that segs[0..n) read "pk value (qualifier value)*" with qualifiers in order. */
static int dl_chain_ok(const dl_key_t *k, const span_t *segs, size_t n) {
  if (n < 2 || n % 2 != 0)
    return 0;
  size_t next = 0; /* qualifiers before index next are used up */
  for (size_t i = 2; i < n; i += 2) {
    size_t q = next;
    while (q < 3 && !(k->qualifiers[q] && span_is(segs[i], k->qualifiers[q])))
      q++;
    if (q == 3)
      return 0;
    next = q + 1;
  }
  for (size_t i = 1; i < n; i += 2)
    if (segs[i].n == 0)
      return 0;
  return 1;
}

/* Splits the path (after the authority, before '?' or '#') into segments. */
static sj_epc_code_t dl_segments(span_t path, span_t *segs, size_t *nsegs) {
  size_t n = 0;
  while (path.n > 0) {
    if (path.p[0] != '/' || n == DL_MAX_SEGS)
      return SJ_EPC_FORMAT;
    path.p++, path.n--;
    const char *slash = memchr(path.p, '/', path.n);
    size_t len = slash ? (size_t)(slash - path.p) : path.n;
    segs[n++] = (span_t){path.p, len};
    path.p += len, path.n -= len;
  }
  *nsegs = n;
  return SJ_EPC_OK;
}

/* Decodes a numeric Digital Link value (percent escapes allowed, though pointless). */
static int dl_digits(span_t v, char *out, size_t max, size_t *outn) {
  size_t k;
  if (decode_attr(v, 0, out, max, &k) != SJ_EPC_OK)
    return -1;
  *outn = k;
  return 0;
}

static sj_epc_code_t dl_gtin(span_t v, gs1_t *g) {
  char d[21];
  size_t n;
  if (dl_digits(v, d, 20, &n))
    return SJ_EPC_GTIN_CHARSET;
  switch (sj_gtin_check(d, n)) {
  case SJ_ID_OK:
    break;
  case SJ_ID_GTIN_LENGTH:
    return SJ_EPC_GTIN_LENGTH;
  case SJ_ID_GTIN_CHARSET:
    return SJ_EPC_GTIN_CHARSET;
  default:
    return SJ_EPC_GTIN_CHECKSUM;
  }
  memset(g->key, '0', 14 - n); /* GTIN-8/12/13 are GTIN-14s with leading zeros */
  memcpy(g->key + 14 - n, d, n);
  g->key[14] = 0;
  g->keylen = 14;
  return SJ_EPC_OK;
}

/* A fixed-length numeric key (SSCC-18, GLN-13) with its check digit, or the digits of a GRAI. */
static sj_epc_code_t dl_numeric(span_t v, size_t len, gs1_t *g) {
  char d[21];
  size_t n;
  if (dl_digits(v, d, 20, &n) || n != len || !all_digits(d, n))
    return SJ_EPC_DIGITS;
  if (sj_gs1_check_digit(d, n - 1) != d[n - 1])
    return SJ_EPC_CHECK_DIGIT;
  memcpy(g->key, d, n);
  g->key[n] = 0;
  g->keylen = n;
  return SJ_EPC_OK;
}

/* AI 8003: a 0, the 13-digit GRAI (company prefix, asset type, check digit), a 1..16 serial. */
static sj_epc_code_t dl_grai(span_t v, gs1_t *g) {
  char d[31];
  size_t n;
  if (decode_attr(v, 0, d, 30, &n) != SJ_EPC_OK || n < 14 || d[0] != '0' || !all_digits(d, 14))
    return SJ_EPC_DIGITS;
  if (sj_gs1_check_digit(d + 1, 12) != d[13])
    return SJ_EPC_CHECK_DIGIT;
  memcpy(g->key, d + 1, 13);
  g->key[13] = 0;
  g->keylen = 13;
  return decode_attr((span_t){d + 14, n - 14}, 0, g->attr, 16, &g->attrlen);
}

/* Qualifier value for ai among segs[2..n), or an empty span. */
static span_t dl_qualifier(const span_t *segs, size_t n, const char *ai) {
  for (size_t i = 2; i + 1 < n; i += 2)
    if (span_is(segs[i], ai))
      return segs[i + 1];
  return (span_t){NULL, 0};
}

static sj_epc_code_t dl_gtin_form(const span_t *segs, size_t n, gs1_t *g) {
  sj_epc_code_t rv = dl_gtin(segs[1], g);
  if (rv)
    return rv;
  span_t serial = dl_qualifier(segs, n, "21"), lot = dl_qualifier(segs, n, "10");
  if (serial.p) { /* the serial names the item; a lot beside it adds nothing to the key */
    g->scheme = SJ_EPC_SGTIN;
    return decode_attr(serial, 0, g->attr, 20, &g->attrlen);
  }
  if (lot.p) {
    g->scheme = SJ_EPC_LGTIN;
    return decode_attr(lot, 0, g->attr, 20, &g->attrlen);
  }
  g->scheme = SJ_EPC_GTIN_CLASS;
  memcpy(g->attr, "*", 2);
  g->attrlen = 1;
  return SJ_EPC_OK;
}

static sj_epc_code_t dl_convert(const dl_key_t *k, const span_t *segs, size_t n, gs1_t *g) {
  sj_epc_code_t rv;
  g->attrlen = 0;
  if (k->ai[0] == '0' && k->ai[1] == '1')
    return dl_gtin_form(segs, n, g);
  if (k->ai[0] == '0') {
    g->scheme = SJ_EPC_SSCC;
    return dl_numeric(segs[1], 18, g);
  }
  if (k->ai[0] == '4') {
    g->scheme = SJ_EPC_SGLN;
    if ((rv = dl_numeric(segs[1], 13, g)))
      return rv;
    span_t ext = dl_qualifier(segs, n, "254");
    if (!ext.p) /* the Tag Data Standard writes a GLN without extension with extension "0" */
      ext = (span_t){"0", 1};
    return decode_attr(ext, 0, g->attr, 20, &g->attrlen);
  }
  g->scheme = SJ_EPC_GRAI;
  return dl_grai(segs[1], g);
}

static sj_epc_code_t parse_dl(const char *s, size_t n, gs1_t *g) {
  size_t skip = has_prefix_ci(s, n, "https://") ? 8 : 7;
  const char *end = s + n, *p = s + skip;
  const char *path = memchr(p, '/', (size_t)(end - p));
  if (!path || path == p)
    return SJ_EPC_FORMAT;
  const char *q = path;
  while (q < end && *q != '?' && *q != '#')
    q++;
  span_t segs[DL_MAX_SEGS];
  size_t nsegs;
  if (dl_segments((span_t){path, (size_t)(q - path)}, segs, &nsegs))
    return SJ_EPC_FORMAT;
  int saw_key = 0;
  for (size_t i = 0; i < nsegs; i++) {
    const dl_key_t *k = dl_key_of(segs[i]);
    if (!k)
      continue;
    saw_key = 1;
    if (dl_chain_ok(k, segs + i, nsegs - i))
      return dl_convert(k, segs + i, nsegs - i, g);
  }
  return saw_key ? SJ_EPC_DL_PATH : SJ_EPC_FORMAT;
}

/* ---- The canonical URN --------------------------------------------------------------------------
 */

static size_t escape_attr(const gs1_t *g, char *out) {
  size_t k = 0;
  for (size_t i = 0; i < g->attrlen; i++) {
    unsigned char c = (unsigned char)g->attr[i];
    if (urn_must_escape(c) && g->scheme != SJ_EPC_GTIN_CLASS) {
      k += (size_t)sprintf(out + k, "%%%02X", c);
    } else {
      out[k++] = (char)c;
    }
  }
  out[k] = 0;
  return k;
}

static void format_urn(const gs1_t *g, sj_epc_t *out) {
  static const char *const prefix[] = {
      [SJ_EPC_SGTIN] = "urn:epc:id:sgtin:",         [SJ_EPC_LGTIN] = "urn:epc:class:lgtin:",
      [SJ_EPC_GTIN_CLASS] = "urn:epc:idpat:sgtin:", [SJ_EPC_SSCC] = "urn:epc:id:sscc:",
      [SJ_EPC_SGLN] = "urn:epc:id:sgln:",           [SJ_EPC_GRAI] = "urn:epc:id:grai:",
  };
  char attr[3 * 20 + 1];
  escape_attr(g, attr);
  const char *k = g->key;
  int len;
  if (g->scheme == SJ_EPC_SGLN || g->scheme == SJ_EPC_GRAI) /* CP(7) . rest without check */
    len = snprintf(out->urn, sizeof out->urn, "%s%.7s.%.*s.%s", prefix[g->scheme], k,
                   (int)(g->keylen - 1 - CP_LEN), k + CP_LEN, attr);
  else /* CP(7) . indicator-or-extension digit + rest without check [. attr] */
    len = snprintf(out->urn, sizeof out->urn, "%s%.7s.%c%.*s%s%s", prefix[g->scheme], k + 1, k[0],
                   (int)(g->keylen - 2 - CP_LEN), k + 1 + CP_LEN,
                   g->scheme == SJ_EPC_SSCC ? "" : ".", attr);
  out->len = (size_t)len;
  out->scheme = g->scheme;
}

sj_epc_code_t sj_epc_canonical(const char *s, size_t n, sj_epc_t *out) {
  gs1_t g;
  sj_epc_code_t rv;
  if (has_prefix_ci(s, n, "urn:epc:"))
    rv = parse_urn(s, n, &g);
  else if (has_prefix_ci(s, n, "https://") || has_prefix_ci(s, n, "http://"))
    rv = parse_dl(s, n, &g);
  else
    rv = SJ_EPC_FORMAT;
  if (rv == SJ_EPC_OK)
    format_urn(&g, out);
  return rv;
}
