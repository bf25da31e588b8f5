/* node/json.c — json_loadb with yajl as the lexer (node/json.h has the contract).
 *
 * Why: jansson's lexer reads through a one-byte stream callback and appends every byte to a
 * string buffer, ~50k instructions for a 300-byte record; yajl scans strings in place. Measured
 * over 30,000 ingest records: json_loadb 7.7-9.3 us a record, yajl building the same jansson tree
 * 2.9 us, copying the tree alone (json_deep_copy) 1.9 us.
 *
 * The fast path never decides a refusal: every way it can fail ends in json_loadb, so errors,
 * their line, column and position are always jansson's. What it must get right is acceptance:
 * it may only accept what jansson accepts, with the same tree. Where the two libraries differ:
 *   - whitespace: yajl also skips \v and \f between tokens; jansson refuses them (pre-scan);
 *   - \uXXXX escapes: yajl turns lone surrogates and \u0000 into bytes jansson refuses (pre-scan
 *     for any "\u"; the other escapes decode alike);
 *   - UTF-8: yajl only checks the bit patterns (it takes overlong forms and encoded surrogates);
 *     strings and keys are made with jansson's checked constructors (json_stringn,
 *     json_object_setn_new), which refuse exactly what jansson's lexer refuses (utf8_check_*),
 *     unless they are plain ASCII (see ascii());
 *   - numbers: converted here as jansson does (strtod, or strtoll without
 *     JSON_DECODE_INT_AS_REAL); a text that is not JSON's number grammar, an overflow (jansson:
 *     "real number overflow", "too big integer") or a text strtod does not wholly consume (a
 *     locale whose decimal point is not '.', where jansson translates) goes to jansson;
 *   - duplicate keys: jansson refuses them under JSON_REJECT_DUPLICATES and otherwise keeps the
 *     last value in the first key's place; either way the fast path leaves them to jansson;
 *   - depth: jansson refuses nesting beyond JSON_PARSER_MAX_DEPTH; the fast path stops far below.
 *   - after the value: yajl refuses trailing bytes except an unterminated string ('{}"k', found
 *     by fuzz_json); the fast path notes where the root value ended and lets only jansson's
 *     whitespace follow it.
 * Everything else yajl refuses or accepts exactly as jansson does (tests/test_json.c compares the
 * two over a corpus, tests/fuzz/fuzz_json.c over anything). */
#include "node/json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* The flags the fast path implements; any other goes to json_loadb. */
#define FAST_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY)

/* Longest number text converted here (a longer one is left to jansson). */
#define NUM_MAX 64

typedef struct builder {
  size_t flags;                      /* the caller's json_loadb flags */
  json_t *root;                      /* owned: the tree so far (NULL until the first value) */
  json_t *stack[SJ_JSON_FAST_DEPTH]; /* borrowed: the open containers, innermost last */
  size_t depth;                      /* how many containers are open */
  yajl_handle h;                     /* the parser (its offset when the root value ends) */
  size_t len;                        /* the input's length */
  int finishing;                     /* in yajl_complete_parse: a value ending now ends at len */
  size_t end;                        /* where the root value ended (0 until it has) */
  char *key;                         /* the key whose value comes next (kbuf or malloc'd) */
  size_t klen;                       /* its length */
  size_t kcap;                       /* key's capacity */
  char kbuf[128];                    /* key's storage while keys are short */
} builder_t;

/* The root value is complete: note where, so that only whitespace may follow. yajl refuses other
 * trailing bytes, but not an unterminated string after a complete value ('{}"k'). A number ends
 * only at the next byte, so the root number of "1" ends in yajl_complete_parse, at len. */
static void root_done(builder_t *b) {
  b->end = b->finishing ? b->len : yajl_get_bytes_consumed(b->h);
}

/* 1 when s[0..n) is ASCII. Every ASCII string is valid UTF-8 under jansson's rules too
 * (utf8_check_first takes any byte below 0x80 alone), so for such a string and key the checked
 * constructor would only repeat this check, byte by byte: ~20 % of the fast path's instructions
 * on the ingest records. Anything else goes through jansson's check. */
static int ascii(const unsigned char *s, size_t n) {
  uint64_t acc = 0, w;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, s + i, 8);
    acc |= w;
  }
  for (; i < n; i++)
    acc |= s[i];
  return !(acc & 0x8080808080808080u);
}

/* Takes v (a new reference, or NULL after a failed constructor) into the tree. 0 stops yajl. */
static int add(builder_t *b, json_t *v) {
  if (!v)
    return 0;
  if (b->depth == 0) {
    if (b->root || (!(b->flags & JSON_DECODE_ANY) && !json_is_object(v) && !json_is_array(v))) {
      json_decref(v);
      return 0;
    }
    b->root = v;
    if (!json_is_object(v) && !json_is_array(v))
      root_done(b);
    return 1;
  }
  json_t *top = b->stack[b->depth - 1];
  if (json_is_array(top))
    return json_array_append_new(top, v) == 0;
  /* Checked: refuses a key that is not valid UTF-8 as jansson's lexer would. Steals v. A key
   * already there is replaced in place, and the size does not grow: a duplicate, which jansson
   * refuses (JSON_REJECT_DUPLICATES) or answers with the last value; it decides. */
  size_t size = json_object_size(top);
  int rv = ascii((const unsigned char *)b->key, b->klen)
               ? json_object_setn_new_nocheck(top, b->key, b->klen, v)
               : json_object_setn_new(top, b->key, b->klen, v);
  return rv == 0 && json_object_size(top) > size;
}

static int open_container(builder_t *b, json_t *c) {
  if (b->depth == SJ_JSON_FAST_DEPTH) {
    json_decref(c);
    return 0;
  }
  if (!add(b, c))
    return 0;
  b->stack[b->depth++] = c;
  return 1;
}

static int on_close(void *ctx) {
  builder_t *b = ctx;
  if (--b->depth == 0)
    root_done(b);
  return 1;
}

static int on_start_map(void *ctx) {
  return open_container(ctx, json_object());
}

static int on_start_array(void *ctx) {
  return open_container(ctx, json_array());
}

static int on_null(void *ctx) {
  return add(ctx, json_null());
}

static int on_boolean(void *ctx, int v) {
  return add(ctx, json_boolean(v));
}

static int on_string(void *ctx, const unsigned char *s, size_t n) {
  /* checked unless ASCII (see ascii()): NULL on invalid UTF-8 */
  return add(ctx, ascii(s, n) ? json_stringn_nocheck((const char *)s, n)
                              : json_stringn((const char *)s, n));
}

/* yajl's key may live in its decode buffer, which the next string reuses: keep a copy until the
 * value arrives (a container value is inserted as it opens, so one pending key is enough). */
static int on_map_key(void *ctx, const unsigned char *s, size_t n) {
  builder_t *b = ctx;
  if (n > b->kcap) {
    char *k = malloc(n);
    if (!k)
      return 0;
    if (b->key != b->kbuf)
      free(b->key);
    b->key = k;
    b->kcap = n;
  }
  memcpy(b->key, s, n);
  b->klen = n;
  return 1;
}

static int skip_digits(const char *s, size_t n, size_t *i) {
  size_t a = *i;
  while (*i < n && s[*i] >= '0' && s[*i] <= '9')
    (*i)++;
  return *i > a;
}

/* JSON's number grammar (RFC 8259 §6): -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. 1 if s
 * is one, with *integral set when it has neither fraction nor exponent; 0 otherwise. */
static int number_text(const char *s, size_t n, int *integral) {
  size_t i = 0;
  if (i < n && s[i] == '-')
    i++;
  if (i < n && s[i] == '0')
    i++;
  else if (i >= n || s[i] < '1' || s[i] > '9' || !skip_digits(s, n, &i))
    return 0;
  *integral = 1;
  if (i < n && s[i] == '.') {
    i++;
    if (!skip_digits(s, n, &i))
      return 0;
    *integral = 0;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (!skip_digits(s, n, &i))
      return 0;
    *integral = 0;
  }
  return i == n;
}

/* As jansson's lex_scan_number: strtoll for an integer unless JSON_DECODE_INT_AS_REAL, strtod
 * otherwise; an overflow (jansson refuses it) stops the fast path. */
static int on_number(void *ctx, const char *s, size_t n) {
  builder_t *b = ctx;
  char t[NUM_MAX];
  int integral;
  if (n >= sizeof t || !number_text(s, n, &integral))
    return 0;
  memcpy(t, s, n);
  t[n] = '\0';
  char *end;
  errno = 0;
  if (integral && !(b->flags & JSON_DECODE_INT_AS_REAL)) {
    long long v = strtoll(t, &end, 10);
    if (errno == ERANGE || end != t + n)
      return 0;
    return add(b, json_integer((json_int_t)v));
  }
  double d = strtod(t, &end);
  if (!isfinite(d) || end != t + n)
    return 0;
  return add(b, json_real(d));
}

/* yajl's own memory for one parse (its handle, lexer, state stack, a 2 KiB token buffer it makes
 * on every parse and a decode buffer for strings with escapes) comes from a bump arena on the
 * caller's stack: ~6 malloc/free pairs a parse fewer. Blocks carry their size for realloc; what
 * does not fit goes to the heap. Freeing an arena block is a no-op (the arena dies with the call).
 */
#define ARENA_SIZE 6144
#define ARENA_ALIGN 16

typedef struct arena {
  _Alignas(ARENA_ALIGN) unsigned char mem[ARENA_SIZE]; /* the blocks, each after its size */
  size_t used;                                         /* bytes of mem handed out */
} arena_t;

static int in_arena(const arena_t *a, const void *p) {
  uintptr_t u = (uintptr_t)p, m = (uintptr_t)a->mem;
  return u >= m && u < m + ARENA_SIZE;
}

static void *arena_malloc(void *ctx, size_t sz) {
  arena_t *a = ctx;
  size_t need = ARENA_ALIGN + (sz + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
  if (sz > ARENA_SIZE || need > ARENA_SIZE - a->used)
    return malloc(sz);
  unsigned char *p = a->mem + a->used;
  memcpy(p, &sz, sizeof sz);
  a->used += need;
  return p + ARENA_ALIGN;
}

static void arena_free(void *ctx, void *p) {
  if (!in_arena(ctx, p))
    free(p);
}

static void *arena_realloc(void *ctx, void *p, size_t sz) {
  if (!p || !in_arena(ctx, p))
    return p ? realloc(p, sz) : arena_malloc(ctx, sz);
  size_t old;
  memcpy(&old, (unsigned char *)p - ARENA_ALIGN, sizeof old);
  if (sz <= old)
    return p;
  void *q = arena_malloc(ctx, sz);
  if (q)
    memcpy(q, p, old);
  return q;
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number, /* takes precedence: yajl_integer and yajl_double stay unused */
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_close,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_close,
};

/* Bytes on which yajl and jansson might differ: \v or \f anywhere (yajl skips them as
 * whitespace), and any \u escape. A "\\" pair is stepped over whole, so "\\u" is no escape. */
static int doubtful(const char *buf, size_t len) {
  if (memchr(buf, '\v', len) || memchr(buf, '\f', len))
    return 1;
  const char *p = buf, *e = buf + len;
  while ((p = memchr(p, '\\', (size_t)(e - p))) && e - p > 1) {
    if (p[1] == 'u')
      return 1;
    p += 2;
  }
  return 0;
}

json_t *sj_json_loadb_fast(const char *buf, size_t len, size_t flags) {
  if (!buf || (flags & ~(size_t)FAST_FLAGS) || doubtful(buf, len))
    return NULL;
  builder_t b = {.flags = flags, .len = len};
  b.key = b.kbuf;
  b.kcap = sizeof b.kbuf;
  arena_t arena;
  arena.used = 0;
  yajl_alloc_funcs af = {arena_malloc, arena_realloc, arena_free, &arena};
  yajl_handle h = yajl_alloc(&callbacks, &af, &b);
  if (!h)
    return NULL;
  b.h = h;
  yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
  if (st == yajl_status_ok) {
    b.finishing = 1;
    st = yajl_complete_parse(h);
  }
  yajl_free(h);
  if (b.key != b.kbuf)
    free(b.key);
  size_t i = b.end;
  while (st == yajl_status_ok && i < len && strchr(" \t\r\n", buf[i]) && buf[i])
    i++; /* jansson's whitespace after the value; anything else is its error to report */
  if (st != yajl_status_ok || !b.root || b.depth != 0 || b.end == 0 || i != len) {
    json_decref(b.root);
    return NULL;
  }
  return b.root;
}

json_t *sj_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error) {
  json_t *j = sj_json_loadb_fast(buf, len, flags);
  if (!j)
    return json_loadb(buf, len, flags, error);
  if (error) { /* what json_loadb leaves in it on success */
    error->text[0] = '\0';
    error->line = -1;
    error->column = -1;
    error->position = (int)len;
    strcpy(error->source, "<buffer>");
  }
  return j;
}
