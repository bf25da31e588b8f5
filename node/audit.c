/* node/audit.c — the audit trail (see audit.h): an append-only NDJSON file written by a flusher
 * thread in batches with one fdatasync each, and an in-memory index from subject key to the
 * offsets of its rows. */
#include "node/audit.h"

#include "node/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

typedef struct {
  uint64_t off;
  uint32_t len;
} span_t;

/* One subject's rows in the file, in file (= time) order. */
typedef struct {
  uint8_t kt, kl;
  uint8_t key[SJ_HASH_LEN];
  span_t *v;
  size_t n, cap;
} subj_t;

typedef struct {
  sj_audit_row_t *v;
  size_t n, cap;
} rows_t;

struct sj_audit {
  int fd;
  uint64_t flush_ms;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake;    /* the flusher waits on it */
  pthread_cond_t done;    /* sj_audit_flush waits on it */
  rows_t queue;           /* added, not yet taken by the flusher */
  rows_t writing;         /* taken by the flusher, not yet in the index */
  uint64_t added, synced; /* rows added / written (or lost) since open: flush waits for equality */
  uint64_t file_size;
  subj_t **tab; /* open addressing on XXH3 of the key; NULL = empty */
  size_t tab_cap, tab_n;
  uint64_t queue_since; /* monotonic ms when the queue's first row came */
  int closing, flush_req, last_err;
  sj_audit_stats_t st;
};

/* ---- index --------------------------------------------------------------------------------------
 */

static uint64_t key_hash(uint8_t kt, const uint8_t *k, size_t kl) {
  return XXH3_64bits_withSeed(k, kl, kt);
}

static subj_t **slot(sj_audit_t *a, uint8_t kt, const uint8_t *k, size_t kl) {
  size_t i = (size_t)key_hash(kt, k, kl) & (a->tab_cap - 1);
  for (;; i = (i + 1) & (a->tab_cap - 1)) {
    subj_t *s = a->tab[i];
    if (!s || (s->kt == kt && s->kl == kl && !memcmp(s->key, k, kl)))
      return &a->tab[i];
  }
}

static int tab_grow(sj_audit_t *a) {
  size_t old = a->tab_cap, cap = old ? old * 2 : 1024;
  subj_t **t = calloc(cap, sizeof *t), **prev = a->tab;
  if (!t)
    return -ENOMEM;
  a->tab = t;
  a->tab_cap = cap;
  for (size_t i = 0; i < old; i++)
    if (prev[i])
      *slot(a, prev[i]->kt, prev[i]->key, prev[i]->kl) = prev[i];
  free(prev);
  return 0;
}

static int index_add(sj_audit_t *a, uint8_t kt, const uint8_t *k, size_t kl, uint64_t off,
                     uint32_t len) {
  if (kl > SJ_HASH_LEN)
    return SJ_EINVAL;
  if ((a->tab_n + 1) * 2 > a->tab_cap && tab_grow(a))
    return -ENOMEM;
  subj_t **p = slot(a, kt, k, kl);
  if (!*p) {
    if (!(*p = calloc(1, sizeof **p)))
      return -ENOMEM;
    (*p)->kt = kt;
    (*p)->kl = (uint8_t)kl;
    memcpy((*p)->key, k, kl);
    a->tab_n++;
  }
  subj_t *s = *p;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 4;
    span_t *v = realloc(s->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = (span_t){off, len};
  return 0;
}

/* ---- row <-> line
 * --------------------------------------------------------------------------------- */

static int row_line(const sj_audit_row_t *r, sj_buf_t *out) {
  char hex[2 * SJ_HASH_LEN + 1], region[12];
  sj_hex_encode(r->key, r->key_len, hex);
  snprintf(region, sizeof region, "%06u", r->region);
  json_t *o =
      json_pack("{s:I,s:s,s:s,s:i,s:s,s:s,s:I,s:s}", "t", (json_int_t)r->time_ms, "role",
                sj_role_name((sj_role_t)r->role), "who", r->who, "kt", (int)r->key_type, "key", hex,
                "region", region, "seq", (json_int_t)r->seq, "purpose", r->purpose);
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  int rv = s ? sj_buf_append_str(out, s) | sj_buf_append_u8(out, '\n') : -ENOMEM;
  free(s);
  json_decref(o);
  return rv ? -ENOMEM : 0;
}

static void copy_str(char *dst, size_t cap, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= cap)
    n = cap - 1;
  while (n > 0 && src && ((unsigned char)src[n] & 0xC0) == 0x80 && n < strlen(src))
    n--; /* never cut a UTF-8 sequence */
  if (n)
    memcpy(dst, src, n);
  dst[n] = 0;
}

static int line_row(const char *p, size_t n, sj_audit_row_t *r) {
  json_t *o = json_loadb(p, n, 0, NULL);
  const char *role = json_string_value(json_object_get(o, "role"));
  const char *key = json_string_value(json_object_get(o, "key"));
  const char *region = json_string_value(json_object_get(o, "region"));
  sj_role_t rl = SJ_ROLE_PUBLIC;
  int rv = SJ_EFORMAT;
  memset(r, 0, sizeof *r);
  if (role && key && region && strlen(key) <= 2 * SJ_HASH_LEN && strlen(key) % 2 == 0 &&
      sj_hex_decode(key, strlen(key), r->key, strlen(key) / 2) == 0) {
    (void)sj_role_parse(role, &rl);
    r->role = (uint8_t)rl;
    r->key_len = (uint8_t)(strlen(key) / 2);
    r->key_type = (uint8_t)json_integer_value(json_object_get(o, "kt"));
    r->time_ms = (uint64_t)json_integer_value(json_object_get(o, "t"));
    r->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    r->region = (uint32_t)strtoul(region, NULL, 10);
    copy_str(r->who, sizeof r->who, json_string_value(json_object_get(o, "who")));
    copy_str(r->purpose, sizeof r->purpose, json_string_value(json_object_get(o, "purpose")));
    rv = 0;
  }
  json_decref(o);
  return rv;
}

/* ---- open: read the file, rebuild the index, cut a torn tail -----------------------------------
 */

static int load(sj_audit_t *a) {
  struct stat st;
  if (fstat(a->fd, &st))
    return -errno;
  size_t size = (size_t)st.st_size, start = 0;
  char *buf = malloc(size ? size : 1);
  if (!buf)
    return -ENOMEM;
  int rv = 0;
  if (size && pread(a->fd, buf, size, 0) != (ssize_t)size)
    rv = -EIO;
  for (size_t i = 0; rv == 0 && i < size; i++) {
    if (buf[i] != '\n')
      continue;
    sj_audit_row_t r;
    if (line_row(buf + start, i - start, &r) == 0) {
      rv = index_add(a, r.key_type, r.key, r.key_len, start, (uint32_t)(i - start));
      a->st.on_disk++;
    }
    start = i + 1;
  }
  free(buf);
  if (rv == 0 && start < size && ftruncate(a->fd, (off_t)start)) /* torn last line */
    rv = -errno;
  a->file_size = start;
  return rv;
}

/* ---- the flusher
 * ----------------------------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes the taken rows (lock not held) and returns their line lengths in lens. */
static int write_rows(sj_audit_t *a, const rows_t *w, uint32_t *lens) {
  sj_buf_t b = {0};
  int rv = 0;
  for (size_t i = 0; rv == 0 && i < w->n; i++) {
    size_t before = b.n;
    rv = row_line(&w->v[i], &b);
    lens[i] = (uint32_t)(b.n - before);
  }
  if (rv == 0)
    rv = write_all(a->fd, b.p, b.n);
  if (rv == 0 && fdatasync(a->fd))
    rv = -errno;
  sj_buf_deinit(&b);
  return rv;
}

static void flush_taken(sj_audit_t *a) {
  uint32_t *lens = calloc(a->writing.n ? a->writing.n : 1, sizeof *lens);
  pthread_mutex_unlock(&a->mu);
  int rv = lens ? write_rows(a, &a->writing, lens) : -ENOMEM;
  pthread_mutex_lock(&a->mu);
  if (rv) {
    a->st.write_errors++;
    a->last_err = rv;
    SJ_LOG_ERR("audit", "cannot write %zu audit rows: %s", a->writing.n, sj_strerror(rv));
    /* the file may hold part of the batch: realign on the next line boundary at next open */
  } else {
    for (size_t i = 0; i < a->writing.n; i++) {
      const sj_audit_row_t *r = &a->writing.v[i];
      if (index_add(a, r->key_type, r->key, r->key_len, a->file_size, lens[i] - 1))
        a->st.write_errors++;
      a->file_size += lens[i];
    }
    a->st.written += a->writing.n;
    a->st.on_disk += a->writing.n;
  }
  a->synced += a->writing.n;
  a->writing.n = 0;
  free(lens);
  pthread_cond_broadcast(&a->done);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits on wake for at most ms (the condition variable uses CLOCK_MONOTONIC). */
static void wait_ms(sj_audit_t *a, uint64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + ms * 1000000u;
  ts.tv_sec += (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  pthread_cond_timedwait(&a->wake, &a->mu, &ts);
}

/* A batch is written when SJ_AUDIT_BATCH rows wait, when its first row waited flush_ms, on
 * sj_audit_flush and on close. */
static void *flusher(void *arg) {
  sj_audit_t *a = arg;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    if (a->queue.n == 0) {
      if (a->closing)
        break;
      pthread_cond_wait(&a->wake, &a->mu);
      continue;
    }
    uint64_t now = mono_ms(), due = a->queue_since + a->flush_ms;
    if (a->queue.n < SJ_AUDIT_BATCH && !a->flush_req && !a->closing && now < due) {
      wait_ms(a, due - now);
      continue;
    }
    rows_t t = a->writing; /* swap: the queue's memory goes to the flusher, and back */
    a->writing = a->queue;
    a->queue = t;
    a->flush_req = 0;
    flush_taken(a);
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

/* ---- public functions --------------------------------------------------------------------------
 */

int sj_audit_open(const char *path, uint64_t flush_ms, sj_audit_t **out) {
  sj_audit_t *a = calloc(1, sizeof *a);
  if (!a)
    return -ENOMEM;
  a->flush_ms = flush_ms ? flush_ms : 200;
  a->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int rv = a->fd < 0 ? -errno : tab_grow(a);
  if (rv == 0)
    rv = load(a);
  if (rv == 0) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->wake, &ca);
    pthread_cond_init(&a->done, NULL);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&a->thread, NULL, flusher, a)) {
      pthread_mutex_destroy(&a->mu);
      pthread_cond_destroy(&a->wake);
      pthread_cond_destroy(&a->done);
      rv = SJ_EINVAL;
    }
  }
  if (rv) {
    if (a->fd >= 0)
      close(a->fd);
    for (size_t i = 0; i < a->tab_cap; i++)
      if (a->tab[i])
        free(a->tab[i]->v), free(a->tab[i]);
    free(a->tab);
    free(a);
    return rv;
  }
  *out = a;
  return 0;
}

int sj_audit_add(sj_audit_t *a, const sj_audit_row_t *row) {
  int rv = 0;
  pthread_mutex_lock(&a->mu);
  if (a->queue.n >= SJ_AUDIT_QUEUE_MAX) {
    a->st.dropped++;
    rv = SJ_ETOOBIG;
  } else if (a->queue.n == a->queue.cap) {
    size_t cap = a->queue.cap ? a->queue.cap * 2 : 256;
    sj_audit_row_t *v = realloc(a->queue.v, cap * sizeof *v);
    if (v) {
      a->queue.v = v;
      a->queue.cap = cap;
    } else {
      a->st.dropped++;
      rv = -ENOMEM;
    }
  }
  if (rv == 0) {
    a->queue.v[a->queue.n++] = *row;
    a->added++;
    if (a->queue.n == 1)
      a->queue_since = mono_ms();
    if (a->queue.n == 1 || a->queue.n == SJ_AUDIT_BATCH)
      pthread_cond_signal(&a->wake);
  }
  pthread_mutex_unlock(&a->mu);
  return rv;
}

int sj_audit_flush(sj_audit_t *a) {
  pthread_mutex_lock(&a->mu);
  uint64_t target = a->added;
  while (a->synced < target) {
    a->flush_req = 1;
    pthread_cond_signal(&a->wake);
    pthread_cond_wait(&a->done, &a->mu);
  }
  int rv = a->last_err;
  a->last_err = 0;
  pthread_mutex_unlock(&a->mu);
  return rv;
}

/* Rows of the subject in ordinal order: the file's (by the index), then those being written, then
 * those queued. Calls fn newest first. Lock held: reads are a few small preads. */
typedef struct {
  const sj_audit_row_t *mem[2]; /* writing, queue */
  size_t nmem[2];
} mem_t;

static int mem_match(const sj_audit_row_t *r, uint8_t kt, const uint8_t *k, size_t kl) {
  return r->key_type == kt && r->key_len == kl && !memcmp(r->key, k, kl);
}

static int read_span(sj_audit_t *a, const span_t *sp, sj_audit_row_t *r) {
  char stackbuf[1024], *buf = sp->len <= sizeof stackbuf ? stackbuf : malloc(sp->len);
  if (!buf)
    return -ENOMEM;
  ssize_t got = pread(a->fd, buf, sp->len, (off_t)sp->off);
  int rv = got == (ssize_t)sp->len ? line_row(buf, sp->len, r) : got < 0 ? -errno : -EIO;
  if (buf != stackbuf)
    free(buf);
  return rv;
}

int sj_audit_query(sj_audit_t *a, uint8_t kt, const uint8_t *key, size_t kl, uint64_t before,
                   size_t limit, sj_audit_fn fn, void *ctx, uint64_t *next) {
  int rv = 0;
  pthread_mutex_lock(&a->mu);
  subj_t *s = kl <= SJ_HASH_LEN ? *slot(a, kt, key, kl) : NULL;
  size_t nfile = s ? s->n : 0, nmem = 0;
  const rows_t *mem[2] = {&a->writing, &a->queue};
  for (int m = 0; m < 2; m++)
    for (size_t i = 0; i < mem[m]->n; i++)
      nmem += mem_match(&mem[m]->v[i], kt, key, kl);
  uint64_t total = nfile + nmem, ord = before < total ? before : total, sent = 0;
  /* newest first: the in-memory rows (queue newest), then the file's */
  for (int m = 1; m >= 0 && rv == 0; m--)
    for (size_t i = mem[m]->n; i-- > 0 && rv == 0;) {
      const sj_audit_row_t *r = &mem[m]->v[i];
      if (!mem_match(r, kt, key, kl))
        continue;
      uint64_t this_ord = nfile + --nmem;
      if (this_ord >= ord)
        continue;
      if (sent == limit)
        goto out;
      rv = fn(ctx, r) ? 1 : 0;
      sent++;
      ord = this_ord;
    }
  for (size_t i = ord < nfile ? ord : nfile; i-- > 0 && rv == 0;) {
    sj_audit_row_t r;
    if (sent == limit)
      goto out;
    rv = read_span(a, &s->v[i], &r);
    if (rv == 0)
      rv = fn(ctx, &r) ? 1 : 0;
    sent++;
    ord = i;
  }
out:
  pthread_mutex_unlock(&a->mu);
  if (rv < 0)
    return rv;
  *next = (rv == 0 && sent == limit && ord > 0) ? ord : 0;
  return 0;
}

void sj_audit_stats(sj_audit_t *a, sj_audit_stats_t *out) {
  pthread_mutex_lock(&a->mu);
  *out = a->st;
  out->pending = a->queue.n + a->writing.n;
  pthread_mutex_unlock(&a->mu);
}

void sj_audit_close(sj_audit_t *a) {
  if (!a)
    return;
  pthread_mutex_lock(&a->mu);
  a->closing = 1;
  pthread_cond_signal(&a->wake);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->thread, NULL);
  close(a->fd);
  for (size_t i = 0; i < a->tab_cap; i++)
    if (a->tab[i]) {
      free(a->tab[i]->v);
      free(a->tab[i]);
    }
  free(a->tab);
  free(a->queue.v);
  free(a->writing.v);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->wake);
  pthread_cond_destroy(&a->done);
  free(a);
}
