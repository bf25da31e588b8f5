/* tools/cli/import.c — `sanjiao import FILE [--region R] [--batch N] [--skip-invalid] [--resume]`:
 * bulk import of NDJSON records, EPCIS 2.0 documents (or a JSON array of records) and CSV files of
 * published credit lists, posted in batches to POST /v1/records (docs/TRACE.md, "Bulk import").
 *
 * Every batch carries Idempotency-Key = SHA-256(file content hash, batch size, batch number,
 * attempt), so a rerun after an interruption gets the node's first answer for the batches it had
 * already committed instead of appending them twice; --resume also skips them without sending,
 * using the state file FILE.sjimport. A batch is all-or-nothing; with --skip-invalid the rejected
 * records are left out and the rest of the batch is posted again. Every rejected record is
 * reported as FILE:LINE: CODE field: message. On a terminal, a progress bar shows records/s and
 * the time left. NDJSON and CSV are streamed (constant memory); documents are read whole. */
#include "tools/cli/cli.h"

#include "crypto/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { F_NDJSON, F_EPCIS, F_ARRAY, F_CSV };
enum { STOPPED = 3 }; /* --max-batches reached: an interruption on purpose (tests) */

typedef struct {
  const cli_opts_t *o;
  const char *path;
  int fmt;
  size_t batch; /* records per request */
  int skip_invalid, resume;
  uint64_t max_batches;  /* stop after sending this many (0: no limit) */
  const char *region;    /* --region: the node must be this region's */
  const char *list_type; /* CSV: default record type (abnormal_list) */
  uint8_t fhash[SJ_HASH_LEN];
  uint64_t fsize, consumed;
  sj_buf_t body; /* the batch as NDJSON */
  size_t *offs;  /* each record's offset in body */
  size_t *lines; /* each record's line in the file */
  size_t nrec, cap;
  uint64_t batch_no, sent, resume_from;
  uint64_t imported, replayed_or_skipped, rejected, tree_size;
  uint64_t size_before; /* the node's own log size before the import */
  int unreachable;      /* the last failure was the node not answering */
  int tty;
  double t0, tlast;
  char state[4200];
} imp_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- Progress ----------------------------------------------------------------------------------
 */

static void progress(imp_t *m, int final) {
  double t = now_s();
  if (!m->tty || (!final && t - m->tlast < 0.2))
    return;
  m->tlast = t;
  double frac = m->fsize ? (double)m->consumed / (double)m->fsize : 1;
  double rate = (double)(m->imported + m->replayed_or_skipped) / (t - m->t0 + 1e-9);
  double eta = frac > 0 ? (t - m->t0) * (1 - frac) / frac : 0;
  char bar[31];
  int w = (int)(frac * 30);
  for (int i = 0; i < 30; i++)
    bar[i] = i < w ? '#' : ' ';
  bar[30] = 0;
  fprintf(stderr, "\r%3d%% [%s] %llu records, %.0f rec/s, ETA %d:%02d:%02d ", (int)(frac * 100),
          bar, (unsigned long long)(m->imported + m->replayed_or_skipped), rate, (int)eta / 3600,
          (int)eta / 60 % 60, (int)eta % 60);
  if (final)
    fputc('\n', stderr);
}

/* ---- State file (--resume) ------------------------------------------------------------------ */

static void hexhash(const imp_t *m, char out[65]) {
  sj_hex_encode(m->fhash, SJ_HASH_LEN, out);
}

static void state_load(imp_t *m) {
  FILE *f = fopen(m->state, "r");
  char h[65], fh[80];
  unsigned long long batch = 0, next = 0;
  if (!f)
    return;
  hexhash(m, h);
  if (fscanf(f, "sanjiao-import 1 %70s %llu %llu", fh, &batch, &next) == 3 && !strcmp(fh, h) &&
      batch == m->batch)
    m->resume_from = next;
  fclose(f);
}

static void state_save(const imp_t *m, uint64_t next) {
  char h[65], tmp[4300];
  hexhash(m, h);
  snprintf(tmp, sizeof tmp, "%s.tmp", m->state);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return; /* a read-only directory: --resume then relies on the idempotency keys alone */
  fprintf(f, "sanjiao-import 1 %s %zu %llu\n", h, m->batch, (unsigned long long)next);
  if (fclose(f) == 0)
    rename(tmp, m->state);
}

/* ---- Posting a batch --------------------------------------------------------------------------
 */

/* "import-" + 32 hex digits of SHA-256(file hash || batch size || batch number || attempt). */
static void idem_key(const imp_t *m, uint64_t no, unsigned attempt, char out[48]) {
  uint8_t in[SJ_HASH_LEN + 20], h[SJ_HASH_LEN];
  memcpy(in, m->fhash, SJ_HASH_LEN);
  sj_put_be64(in + SJ_HASH_LEN, m->batch);
  sj_put_be64(in + SJ_HASH_LEN + 8, no);
  sj_put_be32(in + SJ_HASH_LEN + 16, attempt);
  sj_sha256(in, sizeof in, h);
  memcpy(out, "import-", 7);
  sj_hex_encode(h, 16, out + 7);
}

/* Prints each rejected record with its line and marks it in bad[] (indexed like the file's
 * batch); map[] turns an index of the body sent (n records) into that index. Returns how many
 * records were newly marked. */
static size_t report_rejects(imp_t *m, const sj_buf_t *resp, const size_t *map, size_t n,
                             char *bad) {
  json_t *j = json_loadb((const char *)resp->p, resp->n, 0, NULL), *e;
  size_t i, count = 0;
  json_array_foreach(json_object_get(j, "errors"), i, e) {
    json_int_t idx = json_integer_value(json_object_get(e, "index"));
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *field = json_string_value(json_object_get(e, "field"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (idx < 0 || (size_t)idx >= n)
      continue;
    size_t k = map[idx], skip = 0;
    msg = msg ? msg : "";
    if (!strncmp(msg, "line ", 5)) { /* the line in our batch, not in the file: drop it */
      size_t d = strspn(msg + 5, "0123456789");
      skip = d && !strncmp(msg + 5 + d, ": ", 2) ? 7 + d : 0;
    }
    fprintf(stderr, "%s:%zu: %s %s: %s\n", m->path, m->lines[k], code ? code : "?",
            field && *field ? field : "(record)", msg + skip);
    count += !bad[k];
    bad[k] = 1;
  }
  json_decref(j);
  return count;
}

/* The batch without the records marked bad, as a new body; map[] receives the original index of
 * each record kept, *kept their count. */
static void drop_bad(imp_t *m, const char *bad, sj_buf_t *out, size_t *map, size_t *kept) {
  *kept = 0;
  for (size_t i = 0; i < m->nrec; i++) {
    if (bad[i])
      continue;
    size_t end = i + 1 < m->nrec ? m->offs[i + 1] : m->body.n;
    sj_buf_append(out, m->body.p + m->offs[i], end - m->offs[i]);
    map[(*kept)++] = i;
  }
}

/* One POST with retries on transient failures (connection, 409 in flight, 5xx). */
static int post(imp_t *m, const sj_buf_t *body, const char *key, int *status, sj_buf_t *resp) {
  for (int attempt = 0;; attempt++) {
    sj_buf_reset(resp);
    int rv = cli_request(m->o, "POST", "/v1/records", "application/x-ndjson", body->p, body->n, key,
                         status, resp);
    int transient = rv || *status == 409 || *status == 503 || *status >= 500;
    if (!transient || attempt == 5)
      return rv;
    struct timespec ts = {0, 200000000L << (attempt < 3 ? attempt : 3)};
    nanosleep(&ts, NULL);
  }
}

static void accepted(imp_t *m, const sj_buf_t *resp) {
  json_t *j = json_loadb((const char *)resp->p, resp->n, 0, NULL);
  m->imported += json_array_size(json_object_get(j, "accepted"));
  m->tree_size = (uint64_t)json_integer_value(json_object_get(j, "tree_size"));
  json_decref(j);
}

/* Posts the batch; with --skip-invalid, posts what is left after each refusal (up to 3 times). */
static int post_batch(imp_t *m, uint64_t no) {
  char key[48], *bad = calloc(m->nrec, 1);
  size_t *map = calloc(m->nrec, sizeof *map), n = m->nrec;
  sj_buf_t resp = {0}, cur = {0};
  int status = 0, rv = bad && map ? 0 : -ENOMEM;
  for (size_t i = 0; map && i < n; i++)
    map[i] = i;
  sj_buf_append(&cur, m->body.p, m->body.n);
  for (unsigned attempt = 0; rv == 0; attempt++) {
    idem_key(m, no, attempt, key);
    if ((rv = post(m, &cur, key, &status, &resp))) {
      m->unreachable = 1;
      break;
    }
    if (status == 201) {
      accepted(m, &resp);
      break;
    }
    size_t fresh = status == 400 ? report_rejects(m, &resp, map, n, bad) : 0;
    m->rejected += fresh;
    if (status != 400) {
      cli_print_problem(status, &resp);
      if (status == 413)
        fprintf(stderr, "import: the batch is too big for the node: try a smaller --batch\n");
    }
    if (status != 400 || !m->skip_invalid || attempt == 3 || fresh == 0) {
      rv = 1;
      break;
    }
    sj_buf_reset(&cur);
    drop_bad(m, bad, &cur, map, &n);
    if (n == 0)
      break; /* every record of the batch was refused */
  }
  free(bad);
  free(map);
  sj_buf_deinit(&resp);
  sj_buf_deinit(&cur);
  return rv;
}

static int flush_batch(imp_t *m) {
  if (m->nrec == 0)
    return 0;
  uint64_t no = m->batch_no++;
  int rv = 0;
  if (m->resume && no < m->resume_from) {
    m->replayed_or_skipped += m->nrec;
  } else if (m->max_batches && m->sent == m->max_batches) {
    rv = STOPPED;
  } else {
    rv = post_batch(m, no);
    m->sent++;
    if (rv == 0)
      state_save(m, no + 1);
  }
  m->nrec = 0;
  sj_buf_reset(&m->body);
  progress(m, 0);
  return rv;
}

/* Adds one record (its JSON text) found at line of the file. */
static int add_record(imp_t *m, const void *p, size_t n, size_t line) {
  if (m->nrec == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    size_t *o = realloc(m->offs, cap * sizeof *o), *l = o ? realloc(m->lines, cap * sizeof *l) : 0;
    if (o)
      m->offs = o;
    if (!o || !l)
      return -ENOMEM;
    m->lines = l;
    m->cap = cap;
  }
  m->offs[m->nrec] = m->body.n;
  m->lines[m->nrec++] = line;
  if (sj_buf_append(&m->body, p, n) || sj_buf_append_u8(&m->body, '\n'))
    return -ENOMEM;
  return m->nrec >= m->batch ? flush_batch(m) : 0;
}

/* ---- NDJSON ------------------------------------------------------------------------------------
 */

static int is_ws(int c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int read_ndjson(imp_t *m, FILE *f) {
  char *line = NULL;
  size_t cap = 0, lineno = 0;
  ssize_t len;
  int rv = 0;
  while (rv == 0 && (len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    m->consumed += (uint64_t)len;
    char *p = line;
    while (len > 0 && is_ws((unsigned char)p[len - 1]))
      len--;
    while (len > 0 && is_ws((unsigned char)*p))
      p++, len--;
    if (len > 0)
      rv = add_record(m, p, (size_t)len, lineno);
  }
  free(line);
  return rv ? rv : ferror(f) ? -EIO : 0;
}

/* ---- Documents: an EPCISDocument, one EPCIS event, or a JSON array of records ----------------
 * jansson checks the whole text first; the scan below then only needs strings and nesting, and
 * gives each event or record its own bytes (no re-serialisation: numbers stay as written). */

static size_t skip_ws(const char *p, size_t n, size_t i) {
  while (i < n && is_ws((unsigned char)p[i]))
    i++;
  return i;
}

static size_t skip_str(const char *p, size_t n, size_t i) {
  for (i++; i < n; i++) {
    if (p[i] == '\\')
      i++;
    else if (p[i] == '"')
      return i + 1;
  }
  return n;
}

static size_t skip_val(const char *p, size_t n, size_t i) {
  if (i < n && p[i] == '"')
    return skip_str(p, n, i);
  int depth = 0;
  for (; i < n; i++) {
    char c = p[i];
    if (c == '"') {
      i = skip_str(p, n, i) - 1;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0)
        return i;
      if (--depth == 0)
        return i + 1;
    } else if (depth == 0 && (c == ',' || is_ws((unsigned char)c))) {
      return i;
    }
  }
  return n;
}

/* The value of member name of the object at p[i] ('{'): [*a, *b). Keys are compared raw. */
static int member(const char *p, size_t n, size_t i, const char *name, size_t *a, size_t *b) {
  size_t nl = strlen(name);
  i = skip_ws(p, n, i + 1);
  while (i < n && p[i] == '"') {
    size_t ke = skip_str(p, n, i), v = skip_ws(p, n, skip_ws(p, n, ke) + 1), ve = skip_val(p, n, v);
    if (ke - i - 2 == nl && !memcmp(p + i + 1, name, nl)) {
      *a = v, *b = ve;
      return 0;
    }
    i = skip_ws(p, n, ve);
    if (i < n && p[i] == ',')
      i = skip_ws(p, n, i + 1);
  }
  return -1;
}

/* Appends p[a..b) without the whitespace outside strings. */
static void compact(sj_buf_t *out, const char *p, size_t a, size_t b) {
  int in = 0;
  for (size_t i = a; i < b; i++) {
    char c = p[i];
    if (in) {
      sj_buf_append_u8(out, (uint8_t)c);
      if (c == '\\' && i + 1 < b)
        sj_buf_append_u8(out, (uint8_t)p[++i]);
      else if (c == '"')
        in = 0;
    } else if (!is_ws((unsigned char)c)) {
      sj_buf_append_u8(out, (uint8_t)c);
      in = c == '"';
    }
  }
}

/* Calls add_record for every element of the array at p[i] ('['); trace events are wrapped as
 * {"kind":"trace",["@context":ctx,]"event":...}. */
static int each_element(imp_t *m, const char *p, size_t n, size_t i, int events, size_t ca,
                        size_t cb) {
  sj_buf_t rec = {0};
  size_t line = 1, counted = 0;
  int rv = 0;
  i = skip_ws(p, n, i + 1);
  while (rv == 0 && i < n && p[i] != ']') {
    size_t e = skip_val(p, n, i);
    for (; counted < i; counted++)
      line += p[counted] == '\n';
    sj_buf_reset(&rec);
    if (events) {
      sj_buf_append_str(&rec, "{\"kind\":\"trace\",");
      if (cb > ca) {
        sj_buf_append_str(&rec, "\"@context\":");
        compact(&rec, p, ca, cb);
        sj_buf_append_u8(&rec, ',');
      }
      sj_buf_append_str(&rec, "\"event\":");
    }
    compact(&rec, p, i, e);
    if (events)
      sj_buf_append_u8(&rec, '}');
    m->consumed = e;
    rv = add_record(m, rec.p, rec.n, line);
    i = skip_ws(p, n, e);
    if (i < n && p[i] == ',')
      i = skip_ws(p, n, i + 1);
  }
  sj_buf_deinit(&rec);
  return rv;
}

static int read_document(imp_t *m, const sj_buf_t *in) {
  const char *p = (const char *)in->p;
  size_t n = in->n, i = skip_ws(p, n, 0), a, b, ca = 0, cb = 0;
  json_error_t je;
  json_t *root = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
  if (!root) {
    fprintf(stderr, "%s:%d: JSON_SYNTAX column %d: %s\n", m->path, je.line, je.column, je.text);
    return 1;
  }
  const char *type = json_string_value(json_object_get(root, "type"));
  int rv;
  if (json_is_array(root)) {
    rv = each_element(m, p, n, i, 0, 0, 0);
  } else if (type && !strcmp(type, "EPCISDocument")) {
    member(p, n, i, "@context", &ca, &cb);
    if (member(p, n, i, "epcisBody", &a, &b) || member(p, n, a, "eventList", &a, &b) ||
        p[a] != '[') {
      fprintf(stderr, "%s: EPCIS_EVENT_LIST_MISSING: no epcisBody.eventList array\n", m->path);
      rv = 1;
    } else {
      rv = each_element(m, p, n, a, 1, ca, cb);
    }
  } else {
    /* one EPCIS event (wrapped) or one record object */
    int event = type && strstr(type, "Event") != NULL;
    sj_buf_t rec = {0};
    sj_buf_append_str(&rec, event ? "{\"kind\":\"trace\",\"event\":" : "");
    compact(&rec, p, i, n);
    sj_buf_append_str(&rec, event ? "}" : "");
    m->consumed = n;
    rv = add_record(m, rec.p, rec.n, 1);
    sj_buf_deinit(&rec);
  }
  json_decref(root);
  return rv;
}

/* ---- CSV of published lists ------------------------------------------------------------------
 * RFC 4180 (quoted fields may hold commas, quotes doubled, newlines), UTF-8 with or without BOM.
 * The header names the columns as lists are published, in Chinese or English. */

enum { C_NAME, C_USCC, C_DATE, C_REASON, C_AUTH, C_LIST, C_NUMBER, C_UNTIL, C_TYPE, C_COUNT };

static const char *const col_names[C_COUNT][7] = {
    [C_NAME] = {"企业名称", "名称", "当事人名称", "enterprise name", "name", "enterprise_name"},
    [C_USCC] = {"统一社会信用代码", "社会信用代码", "uscc", "unified social credit code",
                "credit_code", "credit code"},
    [C_DATE] = {"列入日期", "认定日期", "决定日期", "listing date", "listing_date", "date"},
    [C_REASON] = {"列入原因", "列入事由", "违法行为", "reason", "violation"},
    [C_AUTH] = {"作出决定机关", "决定机关", "列入决定机关", "认定机关", "deciding authority",
                "authority", "deciding_authority"},
    [C_LIST] = {"名单类型", "名单名称", "list", "list name", "list_name"},
    [C_NUMBER] = {"决定书文号", "文号", "decision number", "decision_number"},
    [C_UNTIL] = {"移出日期", "届满日期", "until", "end date", "end_date"},
    [C_TYPE] = {"记录类型", "type"},
};

typedef struct {
  sj_buf_t text;  /* the row's fields, each NUL-terminated */
  size_t off[64]; /* field offsets in text */
  size_t n;       /* fields */
} row_t;

/* Reads one row; returns 1 at the end of the file, 0 with a row, or -EIO. */
static int csv_row(FILE *f, row_t *r, size_t *line, uint64_t *consumed) {
  int c, quoted = 0, any = 0;
  sj_buf_reset(&r->text);
  r->n = 0;
  r->off[r->n++] = 0;
  while ((c = getc(f)) != EOF) {
    (*consumed)++;
    any = 1;
    if (quoted) {
      if (c == '"') {
        int d = getc(f);
        if (d == '"') {
          (*consumed)++;
          sj_buf_append_u8(&r->text, '"');
          continue;
        }
        if (d != EOF)
          ungetc(d, f);
        quoted = 0;
      } else {
        *line += c == '\n';
        sj_buf_append_u8(&r->text, (uint8_t)c);
      }
    } else if (c == '"') {
      quoted = 1;
    } else if (c == ',') {
      sj_buf_append_u8(&r->text, 0);
      if (r->n < 64)
        r->off[r->n++] = r->text.n;
    } else if (c == '\n') {
      (*line)++;
      break;
    } else if (c != '\r') {
      sj_buf_append_u8(&r->text, (uint8_t)c);
    }
  }
  sj_buf_append_u8(&r->text, 0);
  if (ferror(f))
    return -EIO;
  return any ? 0 : 1;
}

/* A field, trimmed of spaces (the text is ours to edit), or "" when the column is absent. */
static const char *field(row_t *r, int col) {
  if (col < 0 || (size_t)col >= r->n)
    return "";
  char *s = (char *)r->text.p + r->off[col];
  while (*s == ' ' || *s == '\t')
    s++;
  size_t k = strlen(s);
  while (k && (s[k - 1] == ' ' || s[k - 1] == '\t'))
    s[--k] = 0;
  return s;
}

static void map_header(row_t *r, int *cols) {
  for (int c = 0; c < C_COUNT; c++)
    cols[c] = -1;
  for (size_t i = 0; i < r->n; i++) {
    const char *h = field(r, (int)i);
    if (i == 0 && !strncmp(h, "\xEF\xBB\xBF", 3)) /* UTF-8 BOM */
      h += 3;
    for (int c = 0; c < C_COUNT; c++)
      for (int k = 0; k < 7 && col_names[c][k]; k++)
        if (cols[c] < 0 && !strcasecmp(h, col_names[c][k]))
          cols[c] = (int)i;
  }
}

/* "2024-03-05", "2024/3/5", "2024.3.5", "2024年3月5日", "20240305" -> "2024-03-05"; anything else
 * is passed on as written (the node then names it DATE_INVALID, with this line). */
static void norm_date(const char *s, char out[32]) {
  int y, mo, d;
  char sep1[8], sep2[8];
  if ((sscanf(s, "%4d%7[-/.年]%2d%7[-/.月]%2d", &y, sep1, &mo, sep2, &d) == 5 ||
       (strlen(s) == 8 && sscanf(s, "%4d%2d%2d", &y, &mo, &d) == 3)) &&
      y > 0 && y < 10000 && mo > 0 && mo < 13 && d > 0 && d < 32)
    snprintf(out, 32, "%04d-%02d-%02d", y, mo, d);
  else
    snprintf(out, 32, "%s", s);
}

static const char *record_type(imp_t *m, const char *list, const char *type) {
  if (*type)
    return type;
  if (strstr(list, "严重违法失信") || strstr(list, "黑名单") || !strcasecmp(list, "blacklist"))
    return "blacklist";
  if (strstr(list, "经营异常") || !strcasecmp(list, "abnormal_list"))
    return "abnormal_list";
  return m->list_type;
}

static void set_nonempty(json_t *o, const char *k, const char *v) {
  if (*v)
    json_object_set_new(o, k, json_string(v));
}

/* One published-list row as a credit record. */
static json_t *csv_record(imp_t *m, row_t *r, const int *cols, size_t line) {
  const char *uscc = field(r, cols[C_USCC]), *list = field(r, cols[C_LIST]);
  const char *type = record_type(m, list, field(r, cols[C_TYPE]));
  char from[32], until[32];
  norm_date(field(r, cols[C_DATE]), from);
  norm_date(field(r, cols[C_UNTIL]), until);
  const char *st = uscc[0] == '9' && uscc[1] == '2' ? "individual_business"
                   : uscc[0] == '9'                 ? "enterprise"
                                                    : "organisation";
  json_t *rec =
      json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:s}", "kind", "credit", "type", type, "subject", "type",
                st, "id", uscc, "name", field(r, cols[C_NAME]), "disclosure", "public");
  json_t *period = json_object(), *dec = json_object(), *src = json_object();
  set_nonempty(period, "from", from);
  set_nonempty(period, "until", until);
  set_nonempty(dec, "number", field(r, cols[C_NUMBER]));
  set_nonempty(dec, "date", from);
  set_nonempty(dec, "violation", field(r, cols[C_REASON]));
  if (*field(r, cols[C_AUTH]))
    json_object_set_new(dec, "authority", json_pack("{s:s}", "name", field(r, cols[C_AUTH])));
  if (!strcmp(type, "blacklist") || !strcmp(type, "abnormal_list"))
    json_object_set_new(rec, "list",
                        json_pack("{s:s}", "name",
                                  *list                        ? list
                                  : !strcmp(type, "blacklist") ? "严重违法失信名单"
                                                               : "经营异常名录"));
  if (json_object_size(period))
    json_object_set(rec, "period", period);
  if (json_object_size(dec))
    json_object_set(rec, "decision", dec);
  const char *base = strrchr(m->path, '/');
  json_object_set_new(src, "file", json_string(base ? base + 1 : m->path));
  json_object_set_new(src, "line", json_integer((json_int_t)line));
  json_object_set_new(rec, "source", src);
  json_decref(period);
  json_decref(dec);
  return rec;
}

static int read_csv(imp_t *m, FILE *f) {
  row_t r = {0};
  int cols[C_COUNT], rv;
  size_t line = 1, start;
  if ((rv = csv_row(f, &r, &line, &m->consumed)) != 0) {
    sj_buf_deinit(&r.text);
    return rv < 0 ? rv : 0;
  }
  map_header(&r, cols);
  if (cols[C_USCC] < 0 || cols[C_NAME] < 0) {
    fprintf(stderr,
            "%s:1: CSV_HEADER: need columns for the enterprise name and its unified "
            "social credit code (企业名称, 统一社会信用代码)\n",
            m->path);
    sj_buf_deinit(&r.text);
    return 1;
  }
  rv = 0;
  while (rv == 0) {
    start = line;
    int got = csv_row(f, &r, &line, &m->consumed);
    if (got)
      break;
    if (r.n == 1 && !*field(&r, 0))
      continue; /* blank line */
    json_t *rec = csv_record(m, &r, cols, start);
    char *s = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    rv = s ? add_record(m, s, strlen(s), start) : -ENOMEM;
    free(s);
    json_decref(rec);
  }
  sj_buf_deinit(&r.text);
  return rv;
}

/* ---- The command -------------------------------------------------------------------------------
 */

/* By extension (.csv, .ndjson/.jsonl, .json), else by content: '[' an array, a first line that is
 * a whole JSON object NDJSON, another '{' a document, anything else CSV. */
static int detect(const char *path, FILE *f) {
  size_t n = strlen(path);
  if (n > 4 && !strcasecmp(path + n - 4, ".csv"))
    return F_CSV;
  if ((n > 7 && !strcmp(path + n - 7, ".ndjson")) || (n > 6 && !strcmp(path + n - 6, ".jsonl")))
    return F_NDJSON;
  static char head[1 << 16];
  size_t got = fread(head, 1, sizeof head - 1, f);
  rewind(f);
  head[got] = 0;
  size_t i = strspn(head, " \t\r\n");
  if (head[i] == '[')
    return F_ARRAY;
  if (head[i] != '{')
    return F_CSV;
  if (n > 5 && !strcasecmp(path + n - 5, ".json"))
    return F_EPCIS;
  size_t k = strcspn(head + i, "\n");
  json_t *first = json_loadb(head + i, k, 0, NULL);
  int nd = first != NULL;
  json_decref(first);
  return nd ? F_NDJSON : F_EPCIS;
}

/* The file's identity: a hash chain over its 64 KiB blocks (crypto.h has one-shot SHA-256 only;
 * this keeps a file of gigabytes out of memory and still changes with any byte). */
static int hash_file(imp_t *m, FILE *f) {
  static uint8_t chunk[1 << 16];
  size_t n;
  uint8_t acc[SJ_HASH_LEN * 2] = {0};
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    sj_sha256(chunk, n, acc + SJ_HASH_LEN);
    sj_sha256(acc, sizeof acc, acc);
    m->fsize += n;
  }
  memcpy(m->fhash, acc, SJ_HASH_LEN);
  int rv = ferror(f) ? -EIO : 0;
  rewind(f);
  return rv;
}

/* --region R: the node must be R's (a region's records belong in its own log). */
static int check_region(imp_t *m) {
  json_t *h = NULL;
  if (!m->region)
    return 0;
  if (cli_get_json(m->o, "/healthz", &h))
    return 1;
  const char *r = json_string_value(json_object_get(h, "region"));
  int ok = r && !strcmp(r, m->region);
  if (!ok)
    fprintf(stderr, "import: %s is the node of region %s, not %s\n", m->o->node, r ? r : "?",
            m->region);
  json_decref(h);
  return ok ? 0 : 1;
}

static int parse_args(int argc, char **argv, imp_t *m) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--region") && v)
      m->region = argv[++i];
    else if (!strcmp(a, "--batch") && v)
      m->batch = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(a, "--max-batches") && v)
      m->max_batches = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--list") && v)
      m->list_type = argv[++i];
    else if (!strcmp(a, "--skip-invalid"))
      m->skip_invalid = 1;
    else if (!strcmp(a, "--resume"))
      m->resume = 1;
    else if (a[0] != '-' && !m->path)
      m->path = a;
    else
      return 2;
  }
  return m->path && m->batch > 0 && m->batch <= 100000 ? 0 : 2;
}

static int run(imp_t *m, FILE *f) {
  int rv;
  if (m->fmt == F_NDJSON) {
    rv = read_ndjson(m, f);
  } else if (m->fmt == F_CSV) {
    rv = read_csv(m, f);
  } else {
    sj_buf_t in = {0};
    uint8_t chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
      sj_buf_append(&in, chunk, n);
    rv = read_document(m, &in);
    sj_buf_deinit(&in);
  }
  return rv ? rv : flush_batch(m);
}

/* The node's own log size (GET /healthz), or 0 if it does not answer. */
static uint64_t log_size(const imp_t *m) {
  sj_buf_t resp = {0};
  int status = 0;
  uint64_t size = 0;
  if (cli_request(m->o, "GET", "/healthz", NULL, NULL, 0, NULL, &status, &resp) == 0 &&
      status == 200) {
    json_t *j = json_loadb((const char *)resp.p, resp.n, 0, NULL);
    size = (uint64_t)json_integer_value(json_object_get(j, "tree_size"));
    json_decref(j);
  }
  sj_buf_deinit(&resp);
  return size;
}

static void summary(const imp_t *m, int rv) {
  static const char *const fmts[] = {"NDJSON", "EPCIS document", "JSON array", "CSV"};
  uint64_t after = log_size(m);
  printf("%s (%s): %llu records acknowledged in %llu batches, %llu skipped as imported before, "
         "%llu rejected; log size %llu -> %llu (+%llu)%s\n",
         m->path, fmts[m->fmt], (unsigned long long)m->imported, (unsigned long long)m->sent,
         (unsigned long long)m->replayed_or_skipped, (unsigned long long)m->rejected,
         (unsigned long long)m->size_before, (unsigned long long)after,
         (unsigned long long)(after > m->size_before ? after - m->size_before : 0),
         rv == STOPPED          ? " (stopped at --max-batches; rerun with --resume)"
         : rv && m->unreachable ? " (stopped: the node did not answer; rerun with --resume)"
         : rv                   ? " (stopped at a refused batch: fix it and rerun with --resume)"
                                : "");
}

int cmd_import(int argc, char **argv, const cli_opts_t *o) {
  imp_t m = {.o = o, .batch = 1000, .list_type = "abnormal_list"};
  if (parse_args(argc, argv, &m)) {
    fprintf(stderr, "usage: sanjiao import FILE [--region R] [--batch N] [--skip-invalid] "
                    "[--resume] [--list blacklist|abnormal_list]\n"
                    "  FILE: NDJSON records, an EPCIS 2.0 document (or event), a JSON array of "
                    "records, or a CSV of a published list\n");
    return 2;
  }
  FILE *f = fopen(m.path, "rb");
  if (!f) {
    fprintf(stderr, "import: cannot open %s: %s\n", m.path, strerror(errno));
    return 1;
  }
  int rv = hash_file(&m, f);
  m.fmt = detect(m.path, f);
  snprintf(m.state, sizeof m.state, "%s.sjimport", m.path);
  if (m.resume)
    state_load(&m);
  m.tty = isatty(2);
  m.t0 = m.tlast = now_s();
  if (rv == 0)
    rv = check_region(&m);
  m.size_before = log_size(&m);
  if (rv == 0)
    rv = run(&m, f);
  fclose(f);
  progress(&m, 1);
  summary(&m, rv);
  if (rv == 0 && m.rejected == 0)
    unlink(m.state); /* done: nothing to resume */
  sj_buf_deinit(&m.body);
  free(m.offs);
  free(m.lines);
  return rv == STOPPED ? 3 : rv || (m.rejected && !m.skip_invalid) ? 1 : 0;
}
