/* tests/test_json.c — node/json: sj_json_loadb answers exactly as json_loadb does (verdict, tree,
 * key order, error text/line/column/position/code), over the sample data the project generates,
 * the fuzz seed corpora, the node's embedded documents, hand-written edge cases, every truncation
 * and many mutations of real records, under every combination of the flags the fast path
 * implements and a few it does not; and the fast path really answers typical records (a silent
 * always-fallback would pass the comparisons but fails fast_path_answers_records). */
#include "node/json.h"
#include "tests/support.h"

#include <check.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY)

/* Every subset of the three implemented flags, and some flags the fast path leaves to jansson. */
static const size_t k_flags[] = {
    0,
    JSON_REJECT_DUPLICATES,
    JSON_DECODE_INT_AS_REAL,
    JSON_DECODE_ANY,
    JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
    JSON_DECODE_INT_AS_REAL | JSON_DECODE_ANY,
    LOAD_FLAGS,
    LOAD_FLAGS | JSON_ALLOW_NUL,
    JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK,
};
#define NFLAGS (sizeof k_flags / sizeof k_flags[0])

static char dir[512];

static void setup(void) {
  sj_test_tmpdir(dir, sizeof dir, "json");
}

static void teardown(void) {
  sj_test_rmtree(dir);
}

/* The whole file, malloc'd (NUL-terminated, *n bytes before the NUL), or NULL. */
static char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  sj_buf_t b = {0};
  char chunk[65536];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
    ck_assert_int_eq(sj_buf_append(&b, chunk, k), 0);
  fclose(f);
  ck_assert_int_eq(sj_buf_append_u8(&b, 0), 0);
  *n = b.n - 1;
  return (char *)b.p;
}

static char *dump(const json_t *j) {
  return json_dumps(j, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_COMPACT);
}

/* Both parsers on the same bytes and flags; counts fast-path answers in *fast when given. */
static void agree(const char *p, size_t n, size_t flags, size_t *fast) {
  json_error_t a, b;
  memset(&a, 0x5a, sizeof a); /* bytes neither parser writes stay equal */
  memset(&b, 0x5a, sizeof b);
  json_t *ja = json_loadb(p, n, flags, &a);
  json_t *jb = sj_json_loadb(p, n, flags, &b);
  ck_assert_msg(!ja == !jb, "verdicts differ (flags %#zx) on %zu bytes '%.*s': jansson %s, sj %s",
                flags, n, (int)(n > 200 ? 200 : n), p, ja ? "ok" : a.text, jb ? "ok" : b.text);
  ck_assert_str_eq(a.text, b.text);
  ck_assert_str_eq(a.source, b.source);
  ck_assert_int_eq(a.line, b.line);
  ck_assert_int_eq(a.column, b.column);
  ck_assert_uint_eq(a.position, b.position);
  if (!ja) {
    ck_assert_int_eq(json_error_code(&a), json_error_code(&b));
    return;
  }
  ck_assert_msg(json_equal(ja, jb), "trees differ (flags %#zx) on '%.*s'", flags, (int)n, p);
  char *da = dump(ja), *db = dump(jb);
  ck_assert_str_eq(da, db); /* key order and number types too */
  free(da);
  free(db);
  json_decref(ja);
  json_decref(jb);
  if (fast) {
    json_t *jf = sj_json_loadb_fast(p, n, flags);
    *fast += jf != NULL;
    json_decref(jf);
  }
}

static void agree_all_flags(const char *p, size_t n) {
  for (size_t f = 0; f < NFLAGS; f++)
    agree(p, n, k_flags[f], NULL);
}

static void agree_str(const char *s) {
  agree_all_flags(s, strlen(s));
}

/* Every whole file of a directory, and every line of it, under every flag set. */
static size_t agree_dir(const char *path, int skip_first_byte) {
  DIR *d = opendir(path);
  ck_assert_msg(d, "no directory %s", path);
  size_t files = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char f[1024];
    snprintf(f, sizeof f, "%s/%s", path, e->d_name);
    size_t n = 0;
    char *t = read_file(f, &n);
    ck_assert_msg(t, "cannot read %s", f);
    size_t off = skip_first_byte && n ? 1 : 0;
    agree_all_flags(t + off, n - off);
    for (size_t pos = off; pos < n;) {
      const char *nl = memchr(t + pos, '\n', n - pos);
      size_t len = nl ? (size_t)(nl - (t + pos)) : n - pos;
      agree_all_flags(t + pos, len);
      pos += len + 1;
    }
    free(t);
    files++;
  }
  closedir(d);
  return files;
}

/* Lines of generated sample data: `sanjiao sample` (credit and EPCIS records of every kind) and
 * `sjload --gen` (the ingest benchmark's records). Returns the malloc'd text of all lines. */
static char *sample_lines(size_t *n) {
  const char *bin = getenv("SJ_BIN");
  ck_assert_msg(bin, "SJ_BIN is not set");
  ck_assert_int_eq(sj_test_sh("'%s/sanjiao' sample --records 400 --seed 7 --out '%s/s' >/dev/null"
                              " && '%s/sjload' --gen 300 --seed 3 --out '%s/g' >/dev/null"
                              " && cat '%s'/s/*.ndjson '%s/g/records.ndjson' >'%s/all.ndjson'",
                              bin, dir, bin, dir, dir, dir, dir),
                   0);
  char f[600];
  snprintf(f, sizeof f, "%s/all.ndjson", dir);
  char *t = read_file(f, n);
  ck_assert(t && *n > 10000);
  return t;
}

START_TEST(test_sample_records_agree) {
  size_t n = 0, lines = 0, fast = 0;
  char *t = sample_lines(&n);
  for (size_t pos = 0; pos < n;) {
    const char *nl = memchr(t + pos, '\n', n - pos);
    size_t len = nl ? (size_t)(nl - (t + pos)) : n - pos;
    for (size_t f = 0; f < NFLAGS; f++)
      agree(t + pos, len, k_flags[f], k_flags[f] == LOAD_FLAGS ? &fast : NULL);
    lines += len > 0;
    pos += len + 1;
  }
  ck_assert_uint_ge(lines, 700);
  /* The sample data has no \u escapes: every line must be the fast path's. */
  ck_assert_uint_eq(fast, lines);
  agree_all_flags(t, n); /* the whole file: trailing values after the first */
  free(t);
}
END_TEST

START_TEST(test_corpora_and_documents_agree) {
  const char *data = getenv("SJ_TESTDATA");
  ck_assert(data);
  char p[1024];
  snprintf(p, sizeof p, "%s/../fuzz/corpus/record", data);
  ck_assert_uint_ge(agree_dir(p, 1), 5);
  snprintf(p, sizeof p, "%s/../fuzz/corpus/epcis", data);
  ck_assert_uint_ge(agree_dir(p, 0), 5);
  static const char *const docs[] = {"openapi.json", "credit_rules.json", "disclosure_rules.json"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/../../node/%s", data, docs[i]);
    size_t n = 0;
    char *t = read_file(p, &n);
    ck_assert_msg(t, "cannot read %s", p);
    agree_all_flags(t, n);
    free(t);
  }
}
END_TEST

START_TEST(test_edge_cases_agree) {
  static const char *const cases[] = {
      "",
      " ",
      " \t\r\n ",
      "\n\n",
      "[]",
      "{}",
      "[ ]",
      "{ }",
      " [] ",
      "\t{}\r\n",
      /* scalars at the top level */
      "0",
      "1",
      "-1",
      "\"\"",
      "\"a\"",
      "true",
      "false",
      "null",
      " null ",
      "tru",
      "nul",
      "True",
      "truex",
      "true1",
      "[true1]",
      /* nesting */
      "[[],[[]],{}]",
      "{\"a\":{\"b\":{\"c\":[1,{\"d\":null}]}}}",
      "[1,2,3",
      "[1,2,]",
      "{\"a\":1,}",
      "{\"a\"}",
      "{\"a\":}",
      "{1:2}",
      "{\"a\" 1}",
      "[1 2]",
      "]",
      "}",
      "[}",
      "{]",
      ",",
      ":",
      /* duplicate keys, key order */
      "{\"a\":1,\"a\":2}",
      "{\"a\":1,\"b\":2,\"a\":3}",
      "{\"a\":{\"x\":1},\"b\":{\"x\":1,\"x\":2}}",
      "[{\"k\":1},{\"k\":2}]",
      "{\"z\":1,\"y\":2,\"x\":3,\"a\":4,\"m\":5}",
      "{\"\":1,\"\":2}",
      "{\"\":0}",
      /* escapes */
      "\"\\n\\t\\r\\b\\f\\/\\\\\\\"\"",
      "{\"a\\nb\":\"c\\td\"}",
      "{\"a\\nb\":\"c\\nd\",\"e\":1}",
      "\"\\u00e9\"",
      "\"\\u4e2d\\u6587\"",
      "\"\\ud83d\\ude00\"",
      "\"\\ud83d\"",
      "\"\\ude00\"",
      "\"\\ud83dx\"",
      "\"\\ud83d\\u0041\"",
      "\"\\u0000\"",
      "{\"\\u0000\":1}",
      "{\"a\\u0000\":1}",
      "\"\\u12\"",
      "\"\\uZZZZ\"",
      "\"\\x41\"",
      "\"\\a\"",
      "\"\\",
      "\"\\\\u0000\"",
      "\"\\U0041\"",
      "{\"k\":\"\\u00e9\",\"k\":1}",
      "\"\\\"",
      "\"a\\\\\"",
      /* UTF-8, valid and not */
      "\"\xc3\xa9\"",
      "\"\xe4\xb8\xad\"",
      "\"\xf0\x9f\x98\x80\"",
      "\"\xc0\x80\"",
      "\"\xc1\xbf\"",
      "\"\xe0\x80\x80\"",
      "\"\xed\xa0\x80\"",
      "\"\xed\xbf\xbf\"",
      "\"\xf4\x90\x80\x80\"",
      "\"\xf5\x80\x80\x80\"",
      "\"\xf8\x88\x80\x80\x80\"",
      "\"\xff\"",
      "\"\x80\"",
      "\"\xc3\"",
      "\"\xe4\xb8\"",
      "\"\xf0\x9f\x98\"",
      "{\"\xed\xa0\x80\":1}",
      "{\"\xc0\x80\":1}",
      "{\"\xc3\xa9\":1}",
      "\xc3\xa9",
      "[\"\xc3\"]",
      "\"\xef\xbf\xbf\"",
      "\"\xf4\x8f\xbf\xbf\"",
      /* control characters */
      "\"a\tb\"",
      "\"a\nb\"",
      "\"a\rb\"",
      "\"\x01\"",
      "\"\x1f\"",
      "\"\x7f\"",
      "[1,\v2]",
      "[1,\f2]",
      "{}\v",
      "\f{}",
      "\v",
      "[\x01]",
      "\x7f",
      /* numbers */
      "-0",
      "0",
      "-0.0",
      "0e0",
      "1e400",
      "-1e400",
      "1e-400",
      "-1e-400",
      "1e308",
      "2e308",
      "1.7976931348623157e308",
      "4.9e-324",
      "01",
      "-01",
      "00",
      "1.",
      "1.e5",
      ".5",
      "-.5",
      "-",
      "--1",
      "+1",
      "1e",
      "1e+",
      "1E-",
      "1e+5",
      "1E5",
      "1.5e-3",
      "0x10",
      "1_000",
      "Infinity",
      "NaN",
      "-Infinity",
      "9223372036854775807",
      "9223372036854775808",
      "-9223372036854775808",
      "-9223372036854775809",
      "123456789012345678901234567890",
      "[9223372036854775808]",
      "{\"n\":1e400}",
      "{\"n\":-0}",
      "[1.0,2.50,3e2,4E-2,-0,0.1]",
      "0.00000000000000000000000000000000000000000000000000000000000000000000000000000000001",
      "1234567890123456789012345678901234567890123456789012345678901234567890.5",
      "1 ",
      " 1",
      "[1]x",
      "1 2",
      "{}\"k",
      "{\"c\":1,\"k\":3}\"k",
      "[]\"",
      "1 \"a",
      "\"a\" \"b",
      "{} \"\\",
      "null \"x",
      "true\"",
      "0\"",
      "-1.5e3 \"",
      "{}  \"\xc3\xa9",
      "[] \"\\u",
      "[] []",
      "{}{}",
      "{} x",
      "[],",
      "\"a\" \"b\"",
      "nullnull",
      "[1]]",
      /* BOM, NUL */
      "\xef\xbb\xbf{}",
      "\xef\xbb\xbf",
      "{}\xef\xbb\xbf",
      "\"\xef\xbb\xbf\"",
      /* comments, single quotes, other extensions yajl or others might take */
      "[1]//c",
      "/*c*/[1]",
      "['a']",
      "{a:1}",
      "[1,,2]",
      "[,1]",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    agree_str(cases[i]);
  /* NUL bytes inside the buffer (json_loadb takes a length, not a C string) */
  static const struct {
    const char *p;
    size_t n;
  } nul[] = {{"\0", 1},          {"{}\0", 3},     {"\0{}", 3}, {"[\0]", 3},  {"\"a\0b\"", 5},
             {"{\"a\0\":1}", 8}, {"[1,\0 2]", 7}, {"1\0", 2},  {"\"\"\0", 3}};
  for (size_t i = 0; i < sizeof nul / sizeof nul[0]; i++)
    agree_all_flags(nul[i].p, nul[i].n);
}
END_TEST

/* Nesting of depth d: arrays, objects, or alternating; opened only, or closed. */
static char *nest(size_t d, int kind, int closed) {
  char *s = malloc(d * 8 + 16), *w = s;
  for (size_t i = 0; i < d; i++)
    w += sprintf(w, "%s", kind == 0 || (kind == 2 && i % 2) ? "[" : "{\"k\":");
  w += sprintf(w, "1");
  for (size_t i = d; closed && i-- > 0;)
    *w++ = kind == 0 || (kind == 2 && i % 2) ? ']' : '}';
  *w = '\0';
  return s;
}

START_TEST(test_depth_and_size_agree) {
  static const size_t depths[] = {1, 10, 31, 32, 33, 40, 2047, 2048, 2049, 3000};
  for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++)
    for (int kind = 0; kind < 3; kind++)
      for (int closed = 0; closed < 2; closed++) {
        char *s = nest(depths[i], kind, closed);
        agree_str(s);
        free(s);
      }
  /* Long strings and keys (past the builder's inline key buffer), long arrays and objects. */
  size_t big = 200000;
  char *s = malloc(big + 64);
  memset(s, 'x', big + 64);
  s[0] = '"';
  s[big + 1] = '"';
  agree_all_flags(s, big + 2);
  s[0] = '{';
  s[1] = '"';
  memcpy(s + big, "\":1}", 4);
  agree_all_flags(s, big + 4);
  memcpy(s + 5000, "\":1,\"", 5); /* two long keys */
  agree_all_flags(s, big + 4);
  for (size_t i = 10; i + 2 < 5000; i += 10) /* escapes: yajl decodes into a growing buffer */
    memcpy(s + i, "\\n", 2);
  agree_all_flags(s, big + 4);
  for (size_t i = 5010; i + 2 < big; i += 10)
    memcpy(s + i, "\\t", 2);
  agree_all_flags(s, big + 4);
  json_t *j = sj_json_loadb_fast(s, big + 4, LOAD_FLAGS); /* the fast path's, heap and all */
  ck_assert(j && json_object_size(j) == 2);
  json_decref(j);
  s[5004] = '['; /* {"<key>":1,"[..." is no longer JSON; then a long string with escapes alone */
  agree_all_flags(s, big + 4);
  s[5003] = '"';
  agree_all_flags(s + 5003, big - 5003 + 1);
  j = sj_json_loadb_fast(s + 5003, big - 5003 + 1, LOAD_FLAGS);
  ck_assert(j && json_string_length(j) > 150000);
  json_decref(j);
  free(s);
  sj_buf_t b = {0};
  sj_buf_printf(&b, "[");
  for (int i = 0; i < 20000; i++)
    sj_buf_printf(&b, "%s%d.5", i ? "," : "", i);
  sj_buf_printf(&b, "]");
  agree_all_flags((const char *)b.p, b.n);
  sj_buf_reset(&b);
  sj_buf_printf(&b, "{");
  for (int i = 0; i < 5000; i++)
    sj_buf_printf(&b, "%s\"k%d\":[%d,\"v\"]", i ? "," : "", i, i);
  sj_buf_printf(&b, "}");
  agree_all_flags((const char *)b.p, b.n);
  sj_buf_deinit(&b);
}
END_TEST

/* Every prefix of real records, and every byte of them replaced by characters that matter to a
 * JSON lexer (structure, quotes, escapes, whitespace both accept or only yajl does, bytes that
 * start or break UTF-8, NUL). */
START_TEST(test_truncations_and_mutations_agree) {
  size_t n = 0;
  char *t = sample_lines(&n);
  static const char subst[] = {
      '{',  '}', '[', ']', ',', ':',        '"',        '\\',       'u',        ' ',  '\v',   '\f',
      '\n', '0', '-', '.', 'e', (char)0x80, (char)0xc3, (char)0xed, (char)0xf5, '\0', '\x01', 'x'};
  size_t done = 0;
  for (size_t pos = 0; pos < n && done < 6;) {
    const char *nl = memchr(t + pos, '\n', n - pos);
    size_t len = nl ? (size_t)(nl - (t + pos)) : n - pos;
    char *line = t + pos;
    pos += len + 1;
    if (pos % 7) /* a spread of lines, not only the first ones */
      continue;
    for (size_t k = 0; k <= len; k++) {
      agree(line, k, LOAD_FLAGS, NULL);
      agree(line, k, 0, NULL);
    }
    for (size_t k = 0; k < len; k++) {
      char was = line[k];
      for (size_t m = 0; m < sizeof subst; m++) {
        line[k] = subst[m];
        agree(line, len, LOAD_FLAGS, NULL);
        agree(line, len, JSON_DECODE_ANY, NULL);
      }
      line[k] = was;
    }
    done++;
  }
  ck_assert_uint_eq(done, 6);
  free(t);
}
END_TEST

/* The fast path answers what it should, and leaves to jansson what it must. */
START_TEST(test_fast_path_answers_records) {
  static const char *const fast[] = {
      "{\"kind\":\"credit\",\"type\":\"penalty\",\"n\":1.5,\"ok\":true,\"x\":null,\"a\":[1,\"\"]}",
      "[{\"a\":1},{\"a\":2}]",
      "{\"s\":\"\xe4\xb8\xad\\n\\\"\"}",
      "{\"a\\\\u\":1}",
      "[]",
      " {} ",
  };
  for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++) {
    json_t *j = sj_json_loadb_fast(fast[i], strlen(fast[i]), LOAD_FLAGS);
    ck_assert_msg(j, "fast path refused %s", fast[i]);
    json_decref(j);
  }
  json_t *j = sj_json_loadb_fast("\"s\"", 3, LOAD_FLAGS);
  ck_assert(j && json_is_string(j));
  json_decref(j);
  j = sj_json_loadb_fast("12", 2, JSON_DECODE_ANY); /* integers without DECODE_INT_AS_REAL */
  ck_assert(j && json_is_integer(j) && json_integer_value(j) == 12);
  json_decref(j);
  char *deep = nest(SJ_JSON_FAST_DEPTH, 2, 1);
  j = sj_json_loadb_fast(deep, strlen(deep), LOAD_FLAGS);
  ck_assert(j);
  json_decref(j);
  free(deep);
  static const char *const slow[] = {
      "\"\\u00e9\"",
      "{\"a\":1,\"a\":2}",
      "[1e400]",
      "[\"\xc0\x80\"]",
      "{\"\xed\xa0\x80\":1}",
      "[1,\v2]",
      "{}\f",
      "[01]",
      "{}\"k",
      "1 \"",
      "[1.]",
      "",
      " ",
      "[1]x",
      "\xef\xbb\xbf[]",
  };
  for (size_t i = 0; i < sizeof slow / sizeof slow[0]; i++)
    ck_assert_msg(!sj_json_loadb_fast(slow[i], strlen(slow[i]), LOAD_FLAGS), "fast path took %s",
                  slow[i]);
  j = sj_json_loadb("{\"a\":[1]}", 9, LOAD_FLAGS, NULL); /* error may be NULL, both paths */
  ck_assert(j && json_object_size(j) == 1);
  json_decref(j);
  ck_assert(!sj_json_loadb("{\"a\":[1}", 8, LOAD_FLAGS, NULL));
  j = sj_json_loadb("\"\\u00e9\"", 8, LOAD_FLAGS, NULL);
  ck_assert(j && !strcmp(json_string_value(j), "\xc3\xa9"));
  json_decref(j);
  ck_assert(!sj_json_loadb_fast("1", 1, 0));                                  /* not DECODE_ANY */
  ck_assert(!sj_json_loadb_fast("[]", 2, JSON_ALLOW_NUL));                    /* not implemented */
  ck_assert(!sj_json_loadb_fast("9223372036854775808", 19, JSON_DECODE_ANY)); /* too big */
  deep = nest(SJ_JSON_FAST_DEPTH + 1, 0, 1);
  ck_assert(!sj_json_loadb_fast(deep, strlen(deep), LOAD_FLAGS));
  free(deep);
}
END_TEST

static Suite *json_suite(void) {
  Suite *s = suite_create("json");
  const sj_test_case_t cases[] = {
      {"sample_records", test_sample_records_agree},
      {"corpora", test_corpora_and_documents_agree},
      {"edge_cases", test_edge_cases_agree},
      {"depth_and_size", test_depth_and_size_agree},
      {"mutations", test_truncations_and_mutations_agree},
      {"fast_path", test_fast_path_answers_records},
  };
  sj_test_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 300);
  return s;
}

int main(void) {
  return sj_test_run_suite(json_suite());
}
