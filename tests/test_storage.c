/* Tests of the log store (storage/storage.h): append, reopen, scans, proofs at every tree size,
 * refused adds, batch atomicity, crash recovery, several regions, concurrent readers. Each test
 * runs in a fresh directory under $SJ_TMPDIR. */
#include "storage/storage.h"
#include "tests/rawdb.h"

#include <rocksdb/c.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SH 310000u
#define JS 320000u
#define ZJ 330000u
#define AH 340000u

static char dir[512];
static size_t idx_rows; /* opts.index_buffer_rows of the stores the test opens */

/* ---- Fixture: one temporary directory per test ----------------------------------------------- */

static void rm_tree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char p[1024];
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rm_tree(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(path);
}

static void setup_dir(void) {
  const char *base = getenv("SJ_TMPDIR");
  snprintf(dir, sizeof dir, "%s/storage-XXXXXX", base ? base : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  ck_assert_int_eq(sj_crypto_init(), 0);
}

/* The default: index rows stay in memory for the whole of most tests. */
static void setup(void) {
  setup_dir();
  idx_rows = 65536;
}

/* Index rows written in bulk every few commits, and (0) with every commit. */
static void setup_bulk(void) {
  setup_dir();
  idx_rows = 50;
}

static void setup_direct(void) {
  setup_dir();
  idx_rows = 0;
}

static void teardown(void) {
  rm_tree(dir);
}

static sj_store_t *open_store(void) {
  sj_store_t *s = NULL;
  sj_store_opts_t o;
  sj_store_opts_default(&o);
  o.block_cache_mb = 8;
  o.index_buffer_rows = idx_rows;
  int rv = sj_store_open(dir, &o, &s);
  ck_assert_msg(rv == 0, "open: %s (%s)", sj_strerror(rv), sj_store_last_error());
  return s;
}

/* ---- A test log: entries with proper chain links --------------------------------------------- */

static const char *uscc_a = "91310000MA1FL8XX3A";
static const char *uscc_b = "91320000MA1FL8XX3B";
static const char *sscc_short = "urn:epc:id:sscc:0614141.1234567890";
static const char *sscc_long = "urn:epc:id:sscc:0614141.12345678901";

/* Per region: what the test expects the store to hold. */
typedef struct {
  uint32_t region;
  uint64_t size;
  uint8_t prev[SJ_HASH_LEN];    /* leaf hash of entry size-1 */
  sj_merkle_frontier_t f;       /* tree of the leaves so far */
  uint8_t (*leaf)[SJ_HASH_LEN]; /* leaf hashes, cap entries */
  uint8_t (*root)[SJ_HASH_LEN]; /* root[m] = root at size m */
  size_t cap;
} chain_t;

static void chain_init(chain_t *c, uint32_t region, size_t cap) {
  memset(c, 0, sizeof *c);
  c->region = region;
  sj_merkle_frontier_init(&c->f);
  c->cap = cap;
  c->leaf = calloc(cap, SJ_HASH_LEN);
  c->root = calloc(cap + 1, SJ_HASH_LEN);
  sj_merkle_frontier_root(&c->f, c->root[0]);
}

static void chain_free(chain_t *c) {
  free(c->leaf);
  free(c->root);
}

static int no_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[SJ_HASH_LEN]) {
  (void)ctx;
  (void)level;
  (void)index;
  (void)hash;
  return 0;
}

static void body_of(uint32_t region, uint64_t seq, sj_buf_t *body) {
  sj_buf_reset(body);
  sj_buf_printf(body, "{\"region\":\"%u\",\"seq\":%llu,\"decision\":\"", region,
                (unsigned long long)seq);
  for (uint64_t i = 0; i < 20 + seq % 7; i++)
    sj_buf_append_str(body, "penalty ");
  sj_buf_append_str(body, "\"}");
}

static uint64_t time_of(uint64_t seq) {
  return 1700000000000ull + seq * 1000;
}

/* Keys: every entry names uscc_b (seq % 11 == 0 twice); even ones uscc_a; seq % 3 == 0 the short
 * SSCC; seq % 3 == 1 the long one (the short one is its prefix); seq % 5 == 0 an OTHER_ID with
 * uscc_a's bytes. */
static void header_of(uint32_t region, uint64_t seq, const uint8_t prev[SJ_HASH_LEN],
                      const sj_buf_t *body, sj_buf_t *hdr) {
  sj_index_key_t keys[5];
  uint16_t n = 0;
  keys[n++] = (sj_index_key_t){SJ_KEY_USCC, 18, (const uint8_t *)uscc_b};
  if (seq % 11 == 0) /* named twice: still one row */
    keys[n++] = (sj_index_key_t){SJ_KEY_USCC, 18, (const uint8_t *)uscc_b};
  if (seq % 2 == 0)
    keys[n++] = (sj_index_key_t){SJ_KEY_USCC, 18, (const uint8_t *)uscc_a};
  if (seq % 3 == 0)
    keys[n++] =
        (sj_index_key_t){SJ_KEY_EPC, (uint16_t)strlen(sscc_short), (const uint8_t *)sscc_short};
  if (seq % 3 == 1)
    keys[n++] =
        (sj_index_key_t){SJ_KEY_EPC, (uint16_t)strlen(sscc_long), (const uint8_t *)sscc_long};
  if (seq % 5 == 0)
    keys[n++] = (sj_index_key_t){SJ_KEY_OTHER_ID, 18, (const uint8_t *)uscc_a};
  sj_entry_header_t h = {.version = SJ_ENTRY_VERSION,
                         .region = region,
                         .seq = seq,
                         .time_ms = time_of(seq),
                         .kind = SJ_KIND_CREDIT,
                         .disclosure = SJ_DISCLOSE_PUBLIC,
                         .type_len = 7,
                         .type = "penalty",
                         .body_len = (uint32_t)body->n,
                         .nkeys = n,
                         .keys = keys};
  memcpy(h.prev, prev, SJ_HASH_LEN);
  sj_sha256(body->p, body->n, h.body_hash);
  sj_buf_reset(hdr);
  ck_assert_int_eq(sj_entry_encode(&h, hdr), 0);
}

/* Entry 7 of every region is stored withheld. */
static int withheld(uint64_t seq) {
  return seq == 7;
}

/* Adds the chain's next n entries to b and advances the chain (the caller commits). */
static void add_entries(sj_store_batch_t *b, chain_t *c, uint64_t n) {
  sj_buf_t hdr = {0}, body = {0};
  for (uint64_t i = 0; i < n; i++) {
    uint8_t leaf[SJ_HASH_LEN], want[SJ_HASH_LEN];
    uint64_t seq = c->size;
    body_of(c->region, seq, &body);
    header_of(c->region, seq, c->prev, &body, &hdr);
    int rv = sj_store_batch_add(b, hdr.p, hdr.n, withheld(seq) ? NULL : body.p,
                                withheld(seq) ? 0 : body.n, leaf);
    ck_assert_msg(rv == 0, "add %llu: %s", (unsigned long long)seq, sj_strerror(rv));
    sj_merkle_leaf_hash(hdr.p, hdr.n, want);
    ck_assert_mem_eq(leaf, want, SJ_HASH_LEN);
    ck_assert_uint_lt(seq, c->cap);
    memcpy(c->leaf[seq], leaf, SJ_HASH_LEN);
    memcpy(c->prev, leaf, SJ_HASH_LEN);
    ck_assert_int_eq(sj_merkle_frontier_append(&c->f, leaf, no_emit, NULL), 0);
    c->size++;
    sj_merkle_frontier_root(&c->f, c->root[c->size]);
  }
  sj_buf_deinit(&hdr);
  sj_buf_deinit(&body);
}

/* Advances the chain by n entries without a store. */
static void chain_build(chain_t *c, uint64_t n) {
  sj_buf_t hdr = {0}, body = {0};
  for (uint64_t i = 0; i < n; i++) {
    uint64_t seq = c->size;
    ck_assert_uint_lt(seq, c->cap);
    body_of(c->region, seq, &body);
    header_of(c->region, seq, c->prev, &body, &hdr);
    sj_merkle_leaf_hash(hdr.p, hdr.n, c->leaf[seq]);
    memcpy(c->prev, c->leaf[seq], SJ_HASH_LEN);
    ck_assert_int_eq(sj_merkle_frontier_append(&c->f, c->leaf[seq], no_emit, NULL), 0);
    c->size++;
    sj_merkle_frontier_root(&c->f, c->root[c->size]);
  }
  sj_buf_deinit(&hdr);
  sj_buf_deinit(&body);
}

/* One committed batch of n entries with a checkpoint note "ckpt <size>". */
static void append_batch(sj_store_t *s, chain_t *c, uint64_t n, int sync) {
  sj_store_batch_t *b = NULL;
  uint64_t size;
  uint8_t root[SJ_HASH_LEN], last[SJ_HASH_LEN];
  char note[64];
  ck_assert_int_eq(sj_store_batch_begin(s, c->region, &b), 0);
  add_entries(b, c, n);
  sj_store_batch_head(b, &size, root, last);
  ck_assert_uint_eq(size, c->size);
  ck_assert_mem_eq(root, c->root[c->size], SJ_HASH_LEN);
  ck_assert_mem_eq(last, c->prev, SJ_HASH_LEN);
  int len = snprintf(note, sizeof note, "ckpt %u %llu\n", c->region, (unsigned long long)size);
  ck_assert_int_eq(sj_store_batch_set_checkpoint(b, note, (size_t)len), 0);
  int rv = sj_store_batch_commit(b, sync);
  ck_assert_msg(rv == 0, "commit: %s (%s)", sj_strerror(rv), sj_store_last_error());
}

static void check_head(sj_store_t *s, const chain_t *c) {
  uint64_t size;
  uint8_t root[SJ_HASH_LEN], last[SJ_HASH_LEN], r2[SJ_HASH_LEN];
  sj_store_head(s, c->region, &size, root, last);
  ck_assert_uint_eq(size, c->size);
  ck_assert_mem_eq(root, c->root[c->size], SJ_HASH_LEN);
  ck_assert_mem_eq(last, c->prev, SJ_HASH_LEN);
  ck_assert_int_eq(sj_store_root(s, c->region, c->size, r2), 0);
  ck_assert_mem_eq(r2, root, SJ_HASH_LEN);
}

/* Every entry reads back byte for byte, withheld bodies as withheld. */
static void check_entries(sj_store_t *s, const chain_t *c) {
  sj_buf_t hdr = {0}, body = {0}, want_h = {0}, want_b = {0};
  uint8_t prev[SJ_HASH_LEN] = {0}, leaf[SJ_HASH_LEN];
  for (uint64_t seq = 0; seq < c->size; seq++) {
    int has = -1;
    ck_assert_int_eq(sj_store_get_entry(s, c->region, seq, &hdr, &body, &has), 0);
    body_of(c->region, seq, &want_b);
    header_of(c->region, seq, prev, &want_b, &want_h);
    ck_assert_uint_eq(hdr.n, want_h.n);
    ck_assert_mem_eq(hdr.p, want_h.p, hdr.n);
    ck_assert_int_eq(has, !withheld(seq));
    if (has) {
      ck_assert_uint_eq(body.n, want_b.n);
      ck_assert_mem_eq(body.p, want_b.p, body.n);
    } else {
      ck_assert_uint_eq(body.n, 0);
    }
    ck_assert_int_eq(sj_store_leaf_hash(s, c->region, seq, leaf), 0);
    ck_assert_mem_eq(leaf, c->leaf[seq], SJ_HASH_LEN);
    memcpy(prev, leaf, SJ_HASH_LEN);
  }
  ck_assert_int_eq(sj_store_get_entry(s, c->region, c->size, &hdr, NULL, NULL), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_store_leaf_hash(s, c->region, c->size, leaf), SJ_ENOTFOUND);
  sj_buf_deinit(&hdr);
  sj_buf_deinit(&body);
  sj_buf_deinit(&want_h);
  sj_buf_deinit(&want_b);
}

/* ---- Scans ----------------------------------------------------------------------------------- */

typedef struct {
  sj_entry_ref_t rows[4096];
  uint64_t time[4096];
  size_t n;
  size_t stop_after; /* return 1 after this many rows; 0 = never */
  int fail_with;     /* return this (negative) on the first row when set */
} collect_t;

static int collect(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms) {
  collect_t *c = ctx;
  if (c->fail_with != 0)
    return c->fail_with;
  ck_assert_uint_lt(c->n, 4096);
  c->rows[c->n] = (sj_entry_ref_t){region, seq};
  c->time[c->n++] = time_ms;
  return c->stop_after != 0 && c->n >= c->stop_after ? 1 : 0;
}

static void scan(sj_store_t *s, sj_index_t idx, uint8_t type, const char *key,
                 const sj_entry_ref_t *after, collect_t *out) {
  uint8_t k[1 + SJ_ENTRY_MAX_KEY_LEN];
  size_t kn = sj_store_index_key(type, (const uint8_t *)key, strlen(key), k);
  ck_assert_uint_eq(kn, 1 + strlen(key));
  out->n = 0;
  int rv = sj_store_scan(s, idx, k, kn, after, collect, out);
  ck_assert_int_eq(rv, 0);
}

/* The rows of a scan are exactly the entries of region c with pred(seq), after `after`. */
static void check_rows(const collect_t *got, const chain_t *c, int (*pred)(uint64_t),
                       uint64_t from) {
  size_t k = 0;
  for (uint64_t seq = from; seq < c->size; seq++) {
    if (!pred(seq))
      continue;
    ck_assert_uint_lt(k, got->n);
    ck_assert_uint_eq(got->rows[k].region, c->region);
    ck_assert_uint_eq(got->rows[k].seq, seq);
    ck_assert_uint_eq(got->time[k], time_of(seq));
    k++;
  }
  ck_assert_uint_eq(k, got->n);
}

static int every(uint64_t seq) {
  (void)seq;
  return 1;
}
static int even(uint64_t seq) {
  return seq % 2 == 0;
}
static int mod3_0(uint64_t seq) {
  return seq % 3 == 0;
}
static int mod3_1(uint64_t seq) {
  return seq % 3 == 1;
}
static int mod5_0(uint64_t seq) {
  return seq % 5 == 0;
}

static void check_scans(sj_store_t *s, const chain_t *c) {
  collect_t *got = calloc(1, sizeof *got);
  sj_entry_ref_t after = {c->region, 4};
  scan(s, SJ_INDEX_SUBJECTS, SJ_KEY_USCC, uscc_b, NULL, got);
  check_rows(got, c, every, 0);
  scan(s, SJ_INDEX_SUBJECTS, SJ_KEY_USCC, uscc_a, NULL, got);
  check_rows(got, c, even, 0);
  scan(s, SJ_INDEX_SUBJECTS, SJ_KEY_USCC, uscc_a, &after, got);
  check_rows(got, c, even, 5);
  /* The same bytes under another key type are another key. */
  scan(s, SJ_INDEX_SUBJECTS, SJ_KEY_OTHER_ID, uscc_a, NULL, got);
  check_rows(got, c, mod5_0, 0);
  /* A key that is a prefix of another sees only its own rows. */
  scan(s, SJ_INDEX_TRACE, SJ_KEY_EPC, sscc_short, NULL, got);
  check_rows(got, c, mod3_0, 0);
  scan(s, SJ_INDEX_TRACE, SJ_KEY_EPC, sscc_long, NULL, got);
  check_rows(got, c, mod3_1, 0);
  scan(s, SJ_INDEX_TRACE, SJ_KEY_EPC, sscc_long, &after, got);
  check_rows(got, c, mod3_1, 5);
  /* EPC rows are in trace, not subjects; unknown keys have no rows. */
  scan(s, SJ_INDEX_SUBJECTS, SJ_KEY_EPC, sscc_short, NULL, got);
  ck_assert_uint_eq(got->n, 0);
  scan(s, SJ_INDEX_TRACE, SJ_KEY_EPC, "urn:epc:id:sscc:0614141.123456789", NULL, got);
  ck_assert_uint_eq(got->n, 0);
  free(got);
}

/* ---- TCase append: append, reopen, read back, scan ------------------------------------------- */

START_TEST(append_reopen_reads_everything_back) {
  chain_t c;
  sj_buf_t note = {0}, val = {0};
  uint64_t size = 0;
  chain_init(&c, SH, 64);
  sj_store_t *s = open_store();
  check_head(s, &c);
  append_batch(s, &c, 5, 0);
  append_batch(s, &c, 1, 1);
  sj_store_batch_t *b = NULL;
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b), 0);
  add_entries(b, &c, 14);
  ck_assert_int_eq(sj_store_batch_put_meta(b, "cursor/320000", "42", 2), 0);
  ck_assert_int_eq(sj_store_batch_commit(b, 1), 0);
  ck_assert_int_eq(sj_store_meta_put(s, "evidence", "x\0y", 3), 0);
  check_head(s, &c);
  sj_store_close(s);

  s = open_store();
  check_head(s, &c);
  check_entries(s, &c);
  check_scans(s, &c);
  ck_assert_int_eq(sj_store_checkpoint_get(s, SH, 5, &note), 0);
  ck_assert_str_eq((const char *)note.p, "ckpt 310000 5\n");
  ck_assert_int_eq(sj_store_checkpoint_get(s, SH, 6, &note), 0);
  ck_assert_str_eq((const char *)note.p, "ckpt 310000 6\n");
  ck_assert_int_eq(sj_store_checkpoint_get(s, SH, 20, &note), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_store_checkpoint_latest(s, SH, &size, &note), 0);
  ck_assert_uint_eq(size, 6);
  ck_assert_int_eq(sj_store_checkpoint_put(s, SH, 20, "ckpt 20 cosigned\n", 17), 0);
  ck_assert_int_eq(sj_store_checkpoint_latest(s, SH, &size, &note), 0);
  ck_assert_uint_eq(size, 20);
  ck_assert_str_eq((const char *)note.p, "ckpt 20 cosigned\n");
  ck_assert_int_eq(sj_store_checkpoint_latest(s, JS, &size, &note), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_store_meta_get(s, "cursor/320000", &val), 0);
  ck_assert_uint_eq(val.n, 2);
  ck_assert_mem_eq(val.p, "42", 2);
  ck_assert_int_eq(sj_store_meta_get(s, "evidence", &val), 0);
  ck_assert_uint_eq(val.n, 3);
  ck_assert_mem_eq(val.p, "x\0y", 3);
  ck_assert_int_eq(sj_store_meta_get(s, "cursor", &val), SJ_ENOTFOUND);
  sj_store_close(s);
  sj_buf_deinit(&note);
  sj_buf_deinit(&val);
  chain_free(&c);
}
END_TEST

/* ---- Several entries at once, with their facts rows -------------------------------------------
 */

/* A test annotator: "seq=<seq> body=<0|1> n=<body length>", or nothing for entry 3. */
static size_t test_annotate(void *ctx, const sj_entry_header_t *h, const uint8_t *body, size_t bn,
                            uint8_t *out, size_t cap) {
  (*(int *)ctx)++;
  if (h->seq == 3)
    return 0;
  int n = snprintf((char *)out, cap, "seq=%llu body=%d n=%zu", (unsigned long long)h->seq,
                   body != NULL, bn);
  return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

typedef struct {
  const chain_t *c;
  const sj_entry_ref_t *refs;
  int what, annotated; /* annotated: the store had the annotator when the entries were added */
  size_t calls, stop_at;
} many_t;

static int check_one(void *ctx, size_t i, const sj_store_entry_t *e) {
  many_t *m = ctx;
  sj_buf_t want_h = {0}, want_b = {0};
  ck_assert_uint_eq(i, m->calls);
  m->calls++;
  uint64_t seq = m->refs[i].seq;
  ck_assert_int_eq(e->found, m->refs[i].region == m->c->region && seq < m->c->size);
  if (!e->found)
    return m->stop_at && m->calls == m->stop_at ? 1 : 0;
  if (m->what & SJ_GET_ENTRY) {
    body_of(m->c->region, seq, &want_b);
    header_of(m->c->region, seq, seq ? m->c->leaf[seq - 1] : (const uint8_t[SJ_HASH_LEN]){0},
              &want_b, &want_h);
    ck_assert_uint_eq(e->hn, want_h.n);
    ck_assert_mem_eq(e->header, want_h.p, want_h.n);
    ck_assert_int_eq(e->has_body, !withheld(seq));
    if (e->has_body) {
      ck_assert_uint_eq(e->bn, want_b.n);
      ck_assert_mem_eq(e->body, want_b.p, want_b.n);
    }
  } else {
    ck_assert_ptr_null(e->header);
  }
  if (m->what & SJ_GET_FACTS) {
    ck_assert_ptr_nonnull(e->leaf);
    ck_assert_mem_eq(e->leaf, m->c->leaf[seq], SJ_HASH_LEN);
    char want[64] = "";
    if (m->annotated && seq != 3) {
      body_of(m->c->region, seq, &want_b);
      snprintf(want, sizeof want, "seq=%llu body=%d n=%zu", (unsigned long long)seq, !withheld(seq),
               withheld(seq) ? (size_t)0 : want_b.n);
    }
    ck_assert_uint_eq(e->facts_n, strlen(want));
    ck_assert_mem_eq(e->facts, want, e->facts_n);
  } else {
    ck_assert_ptr_null(e->leaf);
  }
  sj_buf_deinit(&want_h);
  sj_buf_deinit(&want_b);
  return m->stop_at && m->calls == m->stop_at ? 1 : 0;
}

static void get_many(sj_store_t *s, many_t *m, const sj_entry_ref_t *refs, size_t n) {
  m->refs = refs;
  for (int what = 1; what <= 3; what++) {
    m->what = what;
    m->calls = 0;
    int rv = sj_store_get_entries(s, refs, n, what, check_one, m);
    ck_assert_msg(rv == 0, "get_entries: %s (%s)", sj_strerror(rv), sj_store_last_error());
    ck_assert_uint_eq(m->calls, m->stop_at ? m->stop_at : n);
  }
}

START_TEST(entries_and_their_facts_read_many_at_once) {
  chain_t c;
  int calls = 0;
  sj_store_t *s = NULL;
  sj_store_opts_t o;
  chain_init(&c, SH, 200);
  sj_store_opts_default(&o);
  o.block_cache_mb = 8;
  o.index_buffer_rows = idx_rows;
  o.annotate = test_annotate;
  o.annotate_ctx = &calls;
  ck_assert_int_eq(sj_store_open(dir, &o, &s), 0);
  append_batch(s, &c, 70, 1);  /* more than one MultiGet's worth */
  ck_assert_int_eq(calls, 70); /* once per entry, withheld ones too */
  sj_store_close(s);
  s = open_store(); /* facts survive a reopen; this store has no annotator */
  append_batch(s, &c, 10, 1);
  sj_entry_ref_t refs[100];
  size_t n = 0;
  for (uint64_t seq = 0; seq < 82; seq++) /* ascending, two past the head */
    refs[n++] = (sj_entry_ref_t){SH, seq};
  many_t m = {.c = &c, .annotated = 1};
  get_many(s, &m, refs, 70);
  /* entries added without an annotator: a leaf hash, no facts of the node's */
  m.annotated = 0;
  get_many(s, &m, refs + 70, 12);
  /* any order, a region the store does not hold, and stopping early */
  n = 0;
  for (uint64_t seq = 69; seq-- > 0;)
    refs[n++] = (sj_entry_ref_t){SH, seq};
  refs[n++] = (sj_entry_ref_t){JS, 0};
  m.annotated = 1;
  get_many(s, &m, refs, n);
  m.stop_at = 5;
  get_many(s, &m, refs, n);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

static int collect_none(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms) {
  (void)ctx;
  (void)region;
  (void)seq;
  (void)time_ms;
  return 0;
}

/* ---- Index rows carry a copy of their entry ----------------------------------------------------
 */

/* Entries with seq % 4 == 1 are added as the writer's own, with their facts made by the caller;
 * the others through sj_store_batch_add (replicated), annotated by the store's hook. */
static void append_mixed(sj_store_t *s, chain_t *c, uint64_t n) {
  sj_store_batch_t *b = NULL;
  sj_buf_t hdr = {0}, body = {0};
  ck_assert_int_eq(sj_store_batch_begin(s, c->region, &b), 0);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t seq = c->size;
    char own[32];
    int on = snprintf(own, sizeof own, "own=%llu", (unsigned long long)seq);
    body_of(c->region, seq, &body);
    header_of(c->region, seq, c->prev, &body, &hdr);
    const uint8_t *bp = withheld(seq) ? NULL : body.p;
    size_t bn = withheld(seq) ? 0 : body.n;
    int rv = seq % 4 == 1 ? sj_store_batch_add_own(b, hdr.p, hdr.n, bp, bn, (const uint8_t *)own,
                                                   (size_t)on, c->leaf[seq])
                          : sj_store_batch_add(b, hdr.p, hdr.n, bp, bn, c->leaf[seq]);
    ck_assert_int_eq(rv, 0);
    memcpy(c->prev, c->leaf[seq], SJ_HASH_LEN);
    ck_assert_int_eq(sj_merkle_frontier_append(&c->f, c->leaf[seq], no_emit, NULL), 0);
    c->size++;
    sj_merkle_frontier_root(&c->f, c->root[c->size]);
  }
  ck_assert_int_eq(sj_store_batch_commit(b, 1), 0);
  sj_buf_deinit(&hdr);
  sj_buf_deinit(&body);
}

typedef struct {
  sj_store_t *s;
  const chain_t *c;
  size_t n, copies;
  uint64_t no_copy; /* the seq whose row is expected to carry no copy (UINT64_MAX: none) */
} copies_t;

typedef struct {
  const sj_store_entry_t *copy;
  const chain_t *c;
  uint64_t seq;
} same_t;

/* The stored entry and facts (entries and facts families) equal the row's copy. */
static int same_as_copy(void *ctx, size_t i, const sj_store_entry_t *e) {
  const same_t *x = ctx;
  const sj_store_entry_t *y = x->copy;
  (void)i;
  ck_assert_int_eq(e->found, 1);
  ck_assert_int_eq(y->found, 1);
  ck_assert_uint_eq(y->hn, e->hn);
  ck_assert_mem_eq(y->header, e->header, e->hn);
  ck_assert_int_eq(y->has_body, e->has_body);
  ck_assert_int_eq(y->has_body, !withheld(x->seq));
  ck_assert_uint_eq(y->bn, e->bn);
  if (e->bn > 0)
    ck_assert_mem_eq(y->body, e->body, e->bn);
  ck_assert_ptr_nonnull(e->leaf);
  ck_assert_mem_eq(y->leaf, e->leaf, SJ_HASH_LEN);
  ck_assert_mem_eq(y->leaf, x->c->leaf[x->seq], SJ_HASH_LEN);
  ck_assert_uint_eq(y->facts_n, e->facts_n);
  ck_assert_mem_eq(y->facts, e->facts, e->facts_n);
  char want[64];
  sj_buf_t b = {0};
  body_of(x->c->region, x->seq, &b);
  if (x->seq % 4 == 1)
    snprintf(want, sizeof want, "own=%llu", (unsigned long long)x->seq);
  else if (x->seq == 3)
    want[0] = 0; /* test_annotate makes none */
  else
    snprintf(want, sizeof want, "seq=%llu body=%d n=%zu", (unsigned long long)x->seq,
             !withheld(x->seq), withheld(x->seq) ? (size_t)0 : b.n);
  sj_buf_deinit(&b);
  ck_assert_uint_eq(y->facts_n, strlen(want));
  ck_assert_mem_eq(y->facts, want, y->facts_n);
  return 0;
}

static int check_copy(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms,
                      const sj_store_entry_t *e) {
  copies_t *x = ctx;
  ck_assert_uint_eq(region, x->c->region);
  ck_assert_uint_eq(time_ms, time_of(seq));
  x->n++;
  if (seq == x->no_copy) {
    ck_assert_ptr_null(e);
    return 0;
  }
  ck_assert_msg(e != NULL, "row of seq %llu has no copy", (unsigned long long)seq);
  x->copies++;
  same_t same = {e, x->c, seq};
  sj_entry_ref_t ref = {region, seq};
  ck_assert_int_eq(
      sj_store_get_entries(x->s, &ref, 1, SJ_GET_ENTRY | SJ_GET_FACTS, same_as_copy, &same), 0);
  return 0;
}

/* Every row of the keys carries a copy equal to its entry and facts (except no_copy's subjects
 * rows). */
static void check_copies(sj_store_t *s, const chain_t *c, uint64_t no_copy) {
  static const struct {
    sj_index_t idx;
    uint8_t type;
    const char **key;
    int (*pred)(uint64_t);
  } keys[] = {{SJ_INDEX_SUBJECTS, SJ_KEY_USCC, &uscc_b, every},
              {SJ_INDEX_SUBJECTS, SJ_KEY_USCC, &uscc_a, even},
              {SJ_INDEX_TRACE, SJ_KEY_EPC, &sscc_long, mod3_1}};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    uint8_t k[1 + SJ_ENTRY_MAX_KEY_LEN];
    size_t kn =
        sj_store_index_key(keys[i].type, (const uint8_t *)*keys[i].key, strlen(*keys[i].key), k);
    uint64_t none = keys[i].idx == SJ_INDEX_SUBJECTS ? no_copy : UINT64_MAX;
    copies_t x = {s, c, 0, 0, none};
    int rv = sj_store_scan_entries(s, keys[i].idx, k, kn, NULL, check_copy, &x);
    ck_assert_msg(rv == 0, "scan: %s (%s)", sj_strerror(rv), sj_store_last_error());
    size_t want = 0;
    for (uint64_t seq = 0; seq < c->size; seq++)
      want += keys[i].pred(seq) != 0;
    ck_assert_uint_eq(x.n, want);
    ck_assert_uint_eq(x.copies, want - (none < c->size && keys[i].pred(none)));
  }
}

/* Writes value under the index row (key, region, seq) with RocksDB itself, the store closed: a row
 * as an older binary wrote it, or a damaged one. */
static void raw_index_put(const char *cf, uint8_t type, const char *key, uint32_t region,
                          uint64_t seq, const void *value, size_t vn) {
  rawdb_t r;
  rawdb_open(&r, dir);
  uint8_t row[2 + 1 + SJ_ENTRY_MAX_KEY_LEN + 12];
  size_t kl = strlen(key), n = 0;
  row[n++] = (uint8_t)((1 + kl) >> 8);
  row[n++] = (uint8_t)(1 + kl);
  row[n++] = type;
  memcpy(row + n, key, kl);
  n += kl;
  for (int i = 3; i >= 0; i--)
    row[n++] = (uint8_t)(region >> (8 * i));
  for (int i = 7; i >= 0; i--)
    row[n++] = (uint8_t)(seq >> (8 * i));
  char *err = NULL;
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_put_cf(r.db, wo, rawdb_cf(&r, cf), (const char *)row, n, value, vn, &err);
  ck_assert_msg(err == NULL, "raw put: %s", err);
  rocksdb_writeoptions_destroy(wo);
  rawdb_close(&r);
}

static sj_store_t *open_annotated(int *calls) {
  sj_store_t *s = NULL;
  sj_store_opts_t o;
  sj_store_opts_default(&o);
  o.block_cache_mb = 8;
  o.index_buffer_rows = idx_rows;
  o.annotate = test_annotate;
  o.annotate_ctx = calls;
  ck_assert_int_eq(sj_store_open(dir, &o, &s), 0);
  return s;
}

static int count_scan(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms,
                      const sj_store_entry_t *e) {
  (void)region;
  (void)seq;
  (void)time_ms;
  (void)e;
  (*(size_t *)ctx)++;
  return 0;
}

START_TEST(index_rows_carry_copies_of_their_entries) {
  chain_t c;
  int calls = 0;
  chain_init(&c, SH, 200);
  sj_store_t *s = open_annotated(&calls);
  append_mixed(s, &c, 40);
  append_mixed(s, &c, 30);
  check_copies(s, &c, UINT64_MAX); /* memory rows (or ingested, or written: by the TCase) */
  sj_store_close(s);
  s = open_annotated(&calls); /* memory rows derived again from the entries at open */
  check_copies(s, &c, UINT64_MAX);
  ck_assert_int_eq(sj_store_flush(s, 0), 0);
  check_copies(s, &c, UINT64_MAX); /* rows in table files */
  append_mixed(s, &c, 10);
  check_copies(s, &c, UINT64_MAX);
  ck_assert_int_eq(sj_store_flush(s, 1), 0);
  sj_store_close(s);
  /* A row as written before rows carried copies (its 8-byte time only): read without one. */
  uint8_t t[8];
  for (int i = 0; i < 8; i++)
    t[i] = (uint8_t)(time_of(4) >> (8 * (7 - i)));
  raw_index_put("subjects", SJ_KEY_USCC, uscc_b, SH, 4, t, sizeof t);
  raw_index_put("subjects", SJ_KEY_USCC, uscc_a, SH, 4, t, sizeof t);
  s = open_annotated(&calls);
  check_copies(s, &c, 4);
  check_entries(s, &c);
  sj_store_close(s);
  /* Damaged values: a time of 7 bytes, a copy whose lengths do not add up. */
  raw_index_put("subjects", SJ_KEY_USCC, "91110000MA1FL8XX3C", SH, 2, t, 7);
  uint8_t bad[64] = {0};
  bad[8] = 0x01;  /* body held */
  bad[14] = 0x40; /* header length 64: more than the value's 17 bytes after the leaf hash */
  raw_index_put("subjects", SJ_KEY_USCC, "91110000MA1FL8XX3D", SH, 2, bad, sizeof bad);
  bad[8] = 0x02; /* an unknown flag */
  bad[14] = 0x01;
  raw_index_put("subjects", SJ_KEY_USCC, "91110000MA1FL8XX3E", SH, 2, bad, sizeof bad);
  s = open_annotated(&calls);
  const char *damaged[] = {"91110000MA1FL8XX3C", "91110000MA1FL8XX3D", "91110000MA1FL8XX3E"};
  for (size_t i = 0; i < 3; i++) {
    uint8_t k[1 + SJ_ENTRY_MAX_KEY_LEN];
    size_t kn = sj_store_index_key(SJ_KEY_USCC, (const uint8_t *)damaged[i], 18, k), rows = 0;
    ck_assert_int_eq(sj_store_scan_entries(s, SJ_INDEX_SUBJECTS, k, kn, NULL, count_scan, &rows),
                     SJ_ESTORE);
    ck_assert_int_eq(sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, NULL, collect_none, NULL),
                     SJ_ESTORE);
    ck_assert_uint_eq(rows, 0);
  }
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

/* Compacting the index families (after a bulk load) leaves every row and copy readable as before
 * and every table file in the last level. */
START_TEST(index_compaction_keeps_every_row) {
  chain_t c;
  int calls = 0;
  chain_init(&c, SH, 300);
  sj_store_t *s = open_annotated(&calls);
  for (int i = 0; i < 3; i++) {
    append_mixed(s, &c, 40);
    ck_assert_int_eq(sj_store_flush(s, 0), 0);
  }
  uint64_t before = 99, after = 99;
  ck_assert_int_eq(sj_store_compact_index(s, &before, &after), 0);
  if (idx_rows == 0) /* rows written with their batches: each flush made a level-0 file */
    ck_assert_uint_ge(before, 3);
  ck_assert_uint_eq(after, 0);
  check_copies(s, &c, UINT64_MAX);
  check_entries(s, &c);
  append_mixed(s, &c, 20); /* appends go on after it */
  check_copies(s, &c, UINT64_MAX);
  sj_store_cancel_compaction(s); /* a shutdown: later compactions return at once */
  ck_assert_int_eq(sj_store_compact_index(s, NULL, NULL), 0);
  sj_store_close(s);
  s = open_annotated(&calls);
  check_copies(s, &c, UINT64_MAX);
  check_entries(s, &c);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

static sj_store_t *open_cache_mb(int *calls, size_t mb) {
  sj_store_t *s = NULL;
  sj_store_opts_t o;
  sj_store_opts_default(&o);
  o.block_cache_mb = mb;
  o.index_buffer_rows = idx_rows;
  o.annotate = test_annotate;
  o.annotate_ctx = calls;
  ck_assert_int_eq(sj_store_open(dir, &o, &s), 0);
  return s;
}

/* Warming reads the families asked for through the block cache (after a restart, where it starts
 * empty), leaves every read as it was, returns at once when told to stop, and stops by itself
 * once the cache is full. */
START_TEST(warm_cache_reads_families_into_the_block_cache) {
  chain_t c;
  int calls = 0;
  atomic_int stop;
  sj_store_warm_stats_t st;
  size_t u0, u1, cap;
  chain_init(&c, SH, 4000);
  sj_store_t *s = open_cache_mb(&calls, 8);
  for (int i = 0; i < 4; i++)
    append_mixed(s, &c, 1000);
  ck_assert_int_eq(sj_store_flush(s, 1), 0); /* everything in table files */
  sj_store_close(s);

  s = open_cache_mb(&calls, 64);
  sj_store_block_cache_usage(s, &u0, &cap);
  ck_assert_uint_eq(cap, 64u << 20);
  atomic_init(&stop, 1); /* a node closing as it starts: nothing is read */
  ck_assert_int_eq(sj_store_warm_cache(s, SJ_WARM_SUBJECTS | SJ_WARM_TREE, &stop, &st), 0);
  ck_assert_int_eq(st.stopped, 1);
  ck_assert_uint_eq(st.families_done, 0);
  ck_assert_uint_eq(st.bytes_read, 0);
  atomic_store(&stop, 0);
  ck_assert_int_eq(sj_store_warm_cache(s, SJ_WARM_SUBJECTS | SJ_WARM_TREE, &stop, &st), 0);
  ck_assert_uint_eq(st.families_done, SJ_WARM_SUBJECTS | SJ_WARM_TREE);
  ck_assert_int_eq(st.stopped, 0);
  ck_assert_int_eq(st.cache_full, 0);
  ck_assert_uint_gt(st.bytes_read, 0);
  sj_store_block_cache_usage(s, &u1, NULL);
  ck_assert_uint_ge(u1, u0 + st.bytes_read / 2); /* the blocks hold (about) what was read */
  ck_assert_int_eq(sj_store_warm_cache(s, 0, NULL, NULL), 0); /* nothing asked: nothing done */
  check_copies(s, &c, UINT64_MAX);
  check_entries(s, &c);
  sj_store_close(s);

  /* A 1 MiB cache holds less than the entries: the scan stops when it is full. */
  s = open_cache_mb(&calls, 1);
  ck_assert_int_eq(sj_store_warm_cache(s, SJ_WARM_ENTRIES | SJ_WARM_FACTS, NULL, &st), 0);
  ck_assert_int_eq(st.cache_full, 1);
  ck_assert_uint_ne(st.families_done & SJ_WARM_ENTRIES, SJ_WARM_ENTRIES);
  sj_store_block_cache_usage(s, &u1, &cap);
  ck_assert_uint_le(u1, cap + (cap >> 2));
  check_entries(s, &c);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

START_TEST(scan_stops_resumes_and_aborts) {
  chain_t c;
  collect_t *got = calloc(1, sizeof *got);
  uint8_t k[1 + SJ_ENTRY_MAX_KEY_LEN];
  size_t kn = sj_store_index_key(SJ_KEY_USCC, (const uint8_t *)uscc_b, 18, k);
  chain_init(&c, SH, 64);
  sj_store_t *s = open_store();
  append_batch(s, &c, 20, 0);
  got->stop_after = 3;
  ck_assert_int_eq(sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, NULL, collect, got), 0);
  ck_assert_uint_eq(got->n, 3);
  /* Resume after the last row seen: the next page starts at seq 3. */
  sj_entry_ref_t after = got->rows[2];
  got->n = 0;
  got->stop_after = 0;
  ck_assert_int_eq(sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, &after, collect, got), 0);
  check_rows(got, &c, every, 3);
  /* Resuming after a row of another region that sorts first starts at this region's first row. */
  after = (sj_entry_ref_t){SH - 1, 99};
  ck_assert_int_eq(sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, &after, collect, got), 0);
  after = (sj_entry_ref_t){SH, c.size - 1};
  got->n = 0;
  ck_assert_int_eq(sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, &after, collect, got), 0);
  ck_assert_uint_eq(got->n, 0);
  got->fail_with = -EIO;
  ck_assert_int_eq(sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, NULL, collect, got), -EIO);
  ck_assert_int_eq(sj_store_scan(s, SJ_INDEX_SUBJECTS, k, 0, NULL, collect, got), SJ_EINVAL);
  sj_store_close(s);
  chain_free(&c);
  free(got);
}
END_TEST

static void check_all_proofs(sj_store_t *s, const chain_t *c);

/* Rows in memtables, in L0 files and in compacted files read alike. */
START_TEST(reads_span_memtables_and_table_files) {
  chain_t c;
  chain_init(&c, SH, 400);
  sj_store_t *s = open_store();
  append_batch(s, &c, 150, 0);
  ck_assert_int_eq(sj_store_flush(s, 0), 0);
  append_batch(s, &c, 100, 0);
  ck_assert_int_eq(sj_store_flush(s, 1), 0);
  append_batch(s, &c, 50, 1);
  check_head(s, &c);
  check_entries(s, &c);
  check_scans(s, &c);
  sj_store_close(s);
  s = open_store();
  check_head(s, &c);
  check_entries(s, &c);
  check_scans(s, &c);
  check_all_proofs(s, &c);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

/* ---- TCase proofs ---------------------------------------------------------------------------- */

/* Every inclusion and consistency proof of every size up to c->size verifies. */
static void check_all_proofs(sj_store_t *s, const chain_t *c) {
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], root[SJ_HASH_LEN];
  size_t n = 0;
  for (uint64_t m = 1; m <= c->size; m++) {
    ck_assert_int_eq(sj_store_root(s, c->region, m, root), 0);
    ck_assert_msg(memcmp(root, c->root[m], SJ_HASH_LEN) == 0, "root at %llu",
                  (unsigned long long)m);
    for (uint64_t i = 0; i < m; i++) {
      ck_assert_int_eq(sj_store_prove_inclusion(s, c->region, i, m, path, &n), 0);
      ck_assert_msg(sj_merkle_verify_inclusion(
                        c->leaf[i], i, m, (const uint8_t(*)[SJ_HASH_LEN])path, n, c->root[m]) == 0,
                    "inclusion %llu in %llu", (unsigned long long)i, (unsigned long long)m);
    }
    for (uint64_t f = 1; f <= m; f++) {
      ck_assert_int_eq(sj_store_prove_consistency(s, c->region, f, m, path, &n), 0);
      ck_assert_msg(sj_merkle_verify_consistency(f, m, c->root[f], c->root[m],
                                                 (const uint8_t(*)[SJ_HASH_LEN])path, n) == 0,
                    "consistency %llu -> %llu", (unsigned long long)f, (unsigned long long)m);
    }
  }
}

START_TEST(proofs_verify_at_every_size_to_300) {
  chain_t c;
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], root[SJ_HASH_LEN];
  size_t n = 0;
  chain_init(&c, SH, 300);
  sj_store_t *s = open_store();
  /* Batches of 1, 2, 3, ... 7, 1, 2, ...: commits land on many different frontiers. */
  for (uint64_t k = 1; c.size < 300; k = k % 7 + 1) {
    uint64_t want = c.size + k > 300 ? 300 - c.size : k;
    append_batch(s, &c, want, 0);
    check_head(s, &c);
  }
  check_all_proofs(s, &c);
  ck_assert_int_eq(sj_store_prove_inclusion(s, SH, 300, 300, path, &n), SJ_ERANGE);
  ck_assert_int_eq(sj_store_prove_inclusion(s, SH, 0, 301, path, &n), SJ_ERANGE);
  ck_assert_int_eq(sj_store_prove_inclusion(s, JS, 0, 1, path, &n), SJ_ERANGE);
  ck_assert_int_eq(sj_store_prove_consistency(s, SH, 0, 10, path, &n), SJ_ERANGE);
  ck_assert_int_eq(sj_store_prove_consistency(s, SH, 11, 10, path, &n), SJ_ERANGE);
  ck_assert_int_eq(sj_store_prove_consistency(s, SH, 10, 301, path, &n), SJ_ERANGE);
  ck_assert_int_eq(sj_store_root(s, SH, 301, root), SJ_ERANGE);
  ck_assert_int_eq(sj_store_root(s, SH, 0, root), 0);
  ck_assert_mem_eq(root, c.root[0], SJ_HASH_LEN);
  sj_store_close(s);
  /* After reopen the frontier and the upper-level cache come from disk. */
  s = open_store();
  check_head(s, &c);
  check_all_proofs(s, &c);
  append_batch(s, &c, 0, 0);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

START_TEST(one_entry_per_batch_frontier_matches) {
  chain_t c;
  chain_init(&c, SH, 130);
  sj_store_t *s = open_store();
  for (int i = 0; i < 130; i++) {
    append_batch(s, &c, 1, 0);
    check_head(s, &c);
    if (i == 64) { /* reopen mid-way, right after the first level-6 node */
      sj_store_close(s);
      s = open_store();
      check_head(s, &c);
    }
  }
  check_all_proofs(s, &c);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

/* ---- TCase refuse: validation and atomicity -------------------------------------------------- */

/* The head of b must be exactly the chain's. */
static void check_batch_head(const sj_store_batch_t *b, const chain_t *c) {
  uint64_t size;
  uint8_t root[SJ_HASH_LEN], last[SJ_HASH_LEN];
  sj_store_batch_head(b, &size, root, last);
  ck_assert_uint_eq(size, c->size);
  ck_assert_mem_eq(root, c->root[c->size], SJ_HASH_LEN);
  ck_assert_mem_eq(last, c->prev, SJ_HASH_LEN);
}

/* Tries an add of entry seq of region with prev and body as given; expects rv. */
static void try_add(sj_store_batch_t *b, uint32_t region, uint64_t seq,
                    const uint8_t prev[SJ_HASH_LEN], int corrupt_body, int rv) {
  sj_buf_t hdr = {0}, body = {0};
  body_of(region, seq, &body);
  header_of(region, seq, prev, &body, &hdr);
  if (corrupt_body)
    body.p[body.n / 2] ^= 1;
  ck_assert_int_eq(sj_store_batch_add(b, hdr.p, hdr.n, body.p, body.n, NULL), rv);
  sj_buf_deinit(&hdr);
  sj_buf_deinit(&body);
}

START_TEST(refused_adds_leave_batch_usable) {
  chain_t c;
  uint8_t bad[SJ_HASH_LEN];
  sj_buf_t hdr = {0}, body = {0};
  chain_init(&c, SH, 64);
  sj_store_t *s = open_store();
  append_batch(s, &c, 3, 0);
  sj_store_batch_t *b = NULL;
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b), 0);
  add_entries(b, &c, 2);
  memcpy(bad, c.prev, SJ_HASH_LEN);
  bad[0] ^= 0x80;
  try_add(b, SH, c.size, bad, 0, SJ_ECHAIN);
  try_add(b, SH, c.size + 1, c.prev, 0, SJ_ESEQ);
  try_add(b, SH, c.size - 1, c.prev, 0, SJ_ESEQ);
  try_add(b, SH, c.size, c.prev, 1, SJ_EVERIFY);
  try_add(b, JS, c.size, c.prev, 0, SJ_EINVAL);
  /* A body of the wrong length, and garbage headers. */
  body_of(SH, c.size, &body);
  header_of(SH, c.size, c.prev, &body, &hdr);
  ck_assert_int_eq(sj_store_batch_add(b, hdr.p, hdr.n, body.p, body.n - 1, NULL), SJ_EVERIFY);
  ck_assert_int_lt(sj_store_batch_add(b, hdr.p, hdr.n - 1, body.p, body.n, NULL), 0);
  ck_assert_int_lt(sj_store_batch_add(b, (const uint8_t *)"garbage", 7, NULL, 0, NULL), 0);
  hdr.p[0] = 99; /* unknown version */
  ck_assert_int_lt(sj_store_batch_add(b, hdr.p, hdr.n, body.p, body.n, NULL), 0);
  check_batch_head(b, &c);
  add_entries(b, &c, 3);
  check_batch_head(b, &c);
  ck_assert_int_eq(sj_store_batch_commit(b, 1), 0);
  check_head(s, &c);
  sj_store_close(s);
  s = open_store();
  check_head(s, &c);
  check_entries(s, &c);
  check_all_proofs(s, &c);
  sj_store_close(s);
  sj_buf_deinit(&hdr);
  sj_buf_deinit(&body);
  chain_free(&c);
}
END_TEST

START_TEST(abort_and_uncommitted_batches_leave_nothing) {
  chain_t c, lost;
  sj_buf_t note = {0};
  uint64_t size;
  size_t n = 9;
  uint32_t regions[4];
  chain_init(&c, SH, 64);
  chain_init(&lost, JS, 64);
  sj_store_t *s = open_store();
  sj_store_batch_t *b = NULL;
  /* A region whose only batch is aborted is not held. */
  ck_assert_int_eq(sj_store_batch_begin(s, JS, &b), 0);
  add_entries(b, &lost, 5);
  ck_assert_int_eq(sj_store_batch_set_checkpoint(b, "ckpt\n", 5), 0);
  ck_assert_int_eq(sj_store_batch_put_meta(b, "m", "1", 1), 0);
  sj_store_batch_abort(b);
  sj_store_batch_abort(NULL);
  append_batch(s, &c, 4, 0);
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b), 0);
  chain_t more = c; /* the entries of the aborted batch, not advancing c */
  more.leaf = calloc(64, SJ_HASH_LEN);
  more.root = calloc(65, SJ_HASH_LEN);
  add_entries(b, &more, 6);
  sj_store_batch_abort(b);
  sj_store_head(s, JS, &size, NULL, NULL);
  ck_assert_uint_eq(size, 0);
  check_head(s, &c);
  sj_store_close(s);
  s = open_store();
  check_head(s, &c);
  ck_assert_int_eq(sj_store_regions(s, regions, 4, &n), 0);
  ck_assert_uint_eq(n, 1);
  ck_assert_uint_eq(regions[0], SH);
  ck_assert_int_eq(sj_store_checkpoint_latest(s, JS, &size, &note), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_store_meta_get(s, "m", &note), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_store_get_entry(s, SH, 4, &note, NULL, NULL), SJ_ENOTFOUND);
  /* The region continues from where the committed log ends. */
  append_batch(s, &c, 2, 1);
  check_entries(s, &c);
  sj_store_close(s);
  free(more.leaf);
  free(more.root);
  sj_buf_deinit(&note);
  chain_free(&c);
  chain_free(&lost);
}
END_TEST

START_TEST(one_open_batch_per_region) {
  chain_t a, j;
  chain_init(&a, SH, 16);
  chain_init(&j, JS, 16);
  sj_store_t *s = open_store();
  sj_store_batch_t *b1 = NULL, *b2 = NULL, *b3 = NULL;
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b1), 0);
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b2), SJ_EBUSY);
  ck_assert_ptr_null(b2);
  ck_assert_int_eq(sj_store_batch_begin(s, JS, &b3), 0);
  add_entries(b1, &a, 3);
  add_entries(b3, &j, 2);
  ck_assert_int_eq(sj_store_batch_commit(b3, 0), 0);
  ck_assert_int_eq(sj_store_batch_commit(b1, 0), 0);
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b2), 0); /* free again after commit */
  sj_store_batch_abort(b2);
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b2), 0); /* and after abort */
  add_entries(b2, &a, 1);
  ck_assert_int_eq(sj_store_batch_commit(b2, 0), 0);
  check_head(s, &a);
  check_head(s, &j);
  sj_store_close(s);
  chain_free(&a);
  chain_free(&j);
}
END_TEST

/* ---- TCase crash: a writer killed without closing -------------------------------------------- */

/* Child: appends synced batches of 3 forever, reporting each committed size on fd. No Check
 * assertions here: the child only ever _exit()s or is killed. */
static int crash_pipelined; /* crash_child commits in two steps, as the node's writer does */

/* Appends batches of 3 entries for ever, reporting each synced size on fd. Pipelined: batch k+1
 * is built (and its predecessor not yet synced) when batch k's sync runs. */
static void crash_child(int fd) {
  sj_buf_t hdr = {0}, body = {0};
  uint8_t prev[SJ_HASH_LEN] = {0};
  uint64_t seq = 0;
  sj_store_t *s = NULL;
  sj_store_batch_t *written = NULL; /* pipelined: written, not yet synced */
  sj_store_opts_t o;
  sj_store_opts_default(&o);
  o.index_buffer_rows = idx_rows;
  if (sj_store_open(dir, &o, &s) != 0)
    _exit(2);
  for (;;) {
    sj_store_batch_t *b = NULL;
    if (sj_store_batch_begin(s, SH, &b) != 0)
      _exit(3);
    for (int i = 0; i < 3; i++, seq++) {
      body_of(SH, seq, &body);
      header_of(SH, seq, prev, &body, &hdr);
      if (sj_store_batch_add(b, hdr.p, hdr.n, withheld(seq) ? NULL : body.p,
                             withheld(seq) ? 0 : body.n, prev) != 0)
        _exit(4);
    }
    uint64_t synced = seq;
    if (!crash_pipelined) {
      if (sj_store_batch_commit(b, 1) != 0)
        _exit(5);
    } else {
      if (written != NULL) {
        if (sj_store_sync(s) != 0)
          _exit(5);
        sj_store_batch_publish(written, 1);
      }
      if (sj_store_batch_write(b) != 0)
        _exit(5);
      written = b;
      synced = seq - 3;
    }
    if (synced > 0 && write(fd, &synced, sizeof synced) != (ssize_t)sizeof synced)
      _exit(6);
  }
}

static void crash_and_reopen(int pipelined) {
  int fds[2];
  uint64_t got = 0, size = 0;
  int status = 0;
  crash_pipelined = pipelined;
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    crash_child(fds[1]);
  }
  close(fds[1]);
  while (got < 60 && read(fds[0], &size, sizeof size) == (ssize_t)sizeof size)
    got = size;
  ck_assert_uint_ge(got, 60);
  kill(pid, SIGKILL); /* no close, no flush: a prefix of whole batches survives */
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFSIGNALED(status));
  close(fds[0]);

  /* Whatever survived is a whole number of batches, at least every reported one. */
  sj_store_t *s = open_store();
  sj_store_head(s, SH, &size, NULL, NULL);
  ck_assert_uint_ge(size, got);
  ck_assert_uint_eq(size % 3, 0);
  chain_t c;
  chain_init(&c, SH, size + 8);
  chain_build(&c, size);
  check_head(s, &c);
  check_entries(s, &c);
  check_scans(s, &c);        /* index rows held in memory were derived again from the entries */
  append_batch(s, &c, 3, 1); /* the log continues */
  check_head(s, &c);
  sj_store_close(s);
  chain_free(&c);
}

START_TEST(reopen_after_crash_keeps_synced_batches) {
  crash_and_reopen(0);
}
END_TEST

START_TEST(reopen_after_crash_keeps_synced_pipelined_batches) {
  crash_and_reopen(1);
}
END_TEST

/* ---- TCase pipeline: write now, sync and publish later ------------------------------------- */

/* Readers see exactly the first n entries of c: head, entries, checkpoints, index rows. */
static void check_visible(sj_store_t *s, const chain_t *c, uint64_t n) {
  uint64_t size = 0;
  uint8_t root[SJ_HASH_LEN], leaf[SJ_HASH_LEN];
  sj_buf_t buf = {0};
  sj_store_head(s, c->region, &size, root, NULL);
  ck_assert_uint_eq(size, n);
  ck_assert_mem_eq(root, c->root[n], SJ_HASH_LEN);
  ck_assert_int_eq(sj_store_get_entry(s, c->region, n, &buf, NULL, NULL), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_store_leaf_hash(s, c->region, n, leaf), SJ_ENOTFOUND);
  ck_assert_int_eq(sj_store_checkpoint_latest(s, c->region, &size, &buf), 0);
  ck_assert_uint_eq(size, n);
  ck_assert_int_eq(sj_store_checkpoint_get(s, c->region, n + 1, &buf), SJ_ENOTFOUND);
  collect_t *got = calloc(1, sizeof *got);
  scan(s, SJ_INDEX_SUBJECTS, SJ_KEY_USCC, uscc_b, NULL, got); /* every entry names uscc_b */
  ck_assert_uint_eq(got->n, n);
  free(got);
  sj_buf_deinit(&buf);
}

/* Begins a batch of c's next n entries with its checkpoint (the caller writes it). */
static sj_store_batch_t *batch_of(sj_store_t *s, chain_t *c, uint64_t n) {
  sj_store_batch_t *b = NULL;
  char note[64];
  uint64_t size;
  uint8_t last[SJ_HASH_LEN];
  ck_assert_int_eq(sj_store_batch_begin(s, c->region, &b), 0);
  sj_store_batch_head(b, &size, NULL, last);
  ck_assert_uint_eq(size, c->size); /* continues the last batch written, published or not */
  ck_assert_mem_eq(last, c->prev, SJ_HASH_LEN);
  add_entries(b, c, n);
  int len = snprintf(note, sizeof note, "ckpt %u %llu\n", c->region, (unsigned long long)c->size);
  ck_assert_int_eq(sj_store_batch_set_checkpoint(b, note, (size_t)len), 0);
  return b;
}

START_TEST(written_batches_stay_hidden_until_published) {
  chain_t c, lost;
  chain_init(&c, SH, 64);
  sj_store_t *s = open_store();
  append_batch(s, &c, 4, 1);
  check_visible(s, &c, 4);

  /* Written, not synced: nothing of it shows, and the next batch builds on it. */
  sj_store_batch_t *b1 = batch_of(s, &c, 5);
  ck_assert_int_eq(sj_store_batch_write(b1), 0);
  check_visible(s, &c, 4);
  sj_store_batch_t *b2 = batch_of(s, &c, 3);
  check_visible(s, &c, 4);
  ck_assert_int_eq(sj_store_sync(s), 0);
  sj_store_batch_publish(b1, 1);
  check_visible(s, &c, 9);
  ck_assert_int_eq(sj_store_batch_write(b2), 0);
  check_visible(s, &c, 9);
  ck_assert_int_eq(sj_store_sync(s), 0);
  sj_store_batch_publish(b2, 1);
  check_visible(s, &c, 12);
  check_entries(s, &c);
  check_scans(s, &c);

  /* A dropped batch (its sync failed): what was built on it fails at its write, and the next
   * batch continues from the committed log; the dropped batch's rows stay hidden. */
  lost = c; /* the dropped entries, not advancing c */
  lost.leaf = calloc(64, SJ_HASH_LEN);
  lost.root = calloc(65, SJ_HASH_LEN);
  memcpy(lost.leaf, c.leaf, 64 * SJ_HASH_LEN);
  memcpy(lost.root, c.root, 65 * SJ_HASH_LEN);
  sj_store_batch_t *b3 = batch_of(s, &lost, 2);
  ck_assert_int_eq(sj_store_batch_write(b3), 0);
  sj_store_batch_t *b4 = batch_of(s, &lost, 1);
  sj_store_batch_publish(b3, 0);
  ck_assert_int_eq(sj_store_batch_write(b4), SJ_ESTORE);
  check_visible(s, &c, 12);
  append_batch(s, &c, 1, 1);
  check_visible(s, &c, 13); /* not the dropped batch's checkpoint of 14 */
  check_entries(s, &c);
  sj_store_close(s);

  s = open_store();
  check_visible(s, &c, 13);
  check_entries(s, &c);
  check_scans(s, &c);
  append_batch(s, &c, 2, 1);
  check_visible(s, &c, 15);
  check_scans(s, &c);
  sj_store_close(s);
  chain_free(&lost);
  chain_free(&c);
}
END_TEST

/* ---- TCase regions: replicas side by side ---------------------------------------------------- */

START_TEST(several_regions_side_by_side) {
  chain_t c[4];
  const uint32_t codes[4] = {AH, SH, ZJ, JS}; /* created out of order */
  uint32_t out[4];
  size_t n = 0;
  for (int i = 0; i < 4; i++)
    chain_init(&c[i], codes[i], 64);
  sj_store_t *s = open_store();
  ck_assert_int_eq(sj_store_regions(s, out, 4, &n), 0);
  ck_assert_uint_eq(n, 0);
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 4; i++)
      append_batch(s, &c[i], (uint64_t)(i + round + 1), round == 2);
  for (int reopen = 0; reopen < 2; reopen++) {
    ck_assert_int_eq(sj_store_regions(s, out, 4, &n), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(out[0], SH);
    ck_assert_uint_eq(out[1], JS);
    ck_assert_uint_eq(out[2], ZJ);
    ck_assert_uint_eq(out[3], AH);
    out[1] = 0;
    ck_assert_int_eq(sj_store_regions(s, out, 1, &n), 0); /* cap smaller than the count */
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(out[0], SH);
    ck_assert_uint_eq(out[1], 0);
    for (int i = 0; i < 4; i++) {
      check_head(s, &c[i]);
      check_entries(s, &c[i]);
      check_all_proofs(s, &c[i]);
    }
    /* Index rows of all regions, ordered by (region, seq). */
    collect_t *got = calloc(1, sizeof *got);
    scan(s, SJ_INDEX_SUBJECTS, SJ_KEY_USCC, uscc_b, NULL, got);
    size_t total = 0;
    for (int i = 0; i < 4; i++)
      total += c[i].size;
    ck_assert_uint_eq(got->n, total);
    for (size_t k = 1; k < got->n; k++)
      ck_assert(got->rows[k - 1].region < got->rows[k].region ||
                (got->rows[k - 1].region == got->rows[k].region &&
                 got->rows[k - 1].seq < got->rows[k].seq));
    free(got);
    sj_store_close(s);
    s = open_store();
  }
  sj_store_close(s);
  for (int i = 0; i < 4; i++)
    chain_free(&c[i]);
}
END_TEST

/* ---- TCase ingester: the in-memory index's sealed generation -------------------------------- */

/* Index rows of entry seq (header_of's keys, a key named twice counted twice). */
static uint64_t rows_of(uint64_t seq) {
  return 1 + (seq % 11 == 0) + (seq % 2 == 0) + (seq % 3 != 2) + (seq % 5 == 0);
}

static uint64_t rows_between(uint64_t from, uint64_t to) {
  uint64_t n = 0;
  for (uint64_t seq = from; seq < to; seq++)
    n += rows_of(seq);
  return n;
}

/* Waits (at most 10 s) for region SH's sealed generation to be in state st; returns the rows. */
static sj_store_index_memory_t wait_sealed(sj_store_t *s, int st) {
  sj_store_index_memory_t m;
  for (int i = 0; i < 1000; i++) {
    ck_assert_int_eq(sj_store_index_memory(s, SH, &m), 0);
    if (m.sealed_state == st)
      return m;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  ck_abort_msg("sealed generation still in state %d, not %d", m.sealed_state, st);
  return m;
}

static int scan_is_exact(sj_store_t *s);

/* The commit that fills the in-memory index (50 rows here) only seals it: the ingester writes it
 * while commits go on — even when it cannot (its directory gone), the commit that sealed has
 * succeeded, and the rows stay readable; the next commit that needs room then writes both
 * generations itself, failing like any write while it cannot, and leaving nothing behind. */
START_TEST(ingester_writes_sealed_rows_while_commits_go_on) {
  chain_t c;
  char ingest[1100];
  snprintf(ingest, sizeof ingest, "%s/ingest", dir);
  chain_init(&c, SH, 400);
  sj_store_t *s = open_store();
  append_batch(s, &c, 30, 0); /* held: not yet full when it began */
  append_batch(s, &c, 10, 0); /* full: seals the 30 entries' rows, holds its own */
  sj_store_index_memory_t m = wait_sealed(s, 0);
  ck_assert_uint_eq(m.sealed_rows, 0);
  ck_assert_uint_eq(m.memory_rows, rows_between(30, 40));
  ck_assert(scan_is_exact(s));

  rm_tree(ingest);            /* the ingester's table files cannot be built */
  append_batch(s, &c, 30, 0); /* seals entries 30..39: succeeds without waiting for the ingester */
  m = wait_sealed(s, 2);
  ck_assert_uint_eq(m.sealed_rows, rows_between(30, 40));
  ck_assert_uint_eq(m.memory_rows, rows_between(40, 70));
  ck_assert(scan_is_exact(s));

  /* full again: this commit must write both generations itself, and cannot */
  uint64_t size0 = c.size;
  uint8_t prev0[SJ_HASH_LEN];
  sj_merkle_frontier_t f0 = c.f;
  memcpy(prev0, c.prev, SJ_HASH_LEN);
  sj_store_batch_t *b = NULL;
  ck_assert_int_eq(sj_store_batch_begin(s, SH, &b), 0);
  add_entries(b, &c, 30);
  ck_assert_int_eq(sj_store_batch_commit(b, 0), SJ_ESTORE);
  c.size = size0; /* the chain as the store still has it */
  c.f = f0;
  memcpy(c.prev, prev0, SJ_HASH_LEN);
  check_head(s, &c);
  ck_assert(scan_is_exact(s));
  m = wait_sealed(s, 2);
  ck_assert_uint_eq(m.memory_rows, rows_between(40, 70));

  ck_assert_int_eq(mkdir(ingest, 0700), 0);
  append_batch(s, &c, 30, 0); /* now it can: both generations written, its own rows held */
  m = wait_sealed(s, 0);
  ck_assert_uint_eq(m.sealed_rows, 0);
  ck_assert_uint_eq(m.memory_rows, rows_between(70, 100));
  ck_assert(scan_is_exact(s));
  check_entries(s, &c);
  ck_assert_int_eq(sj_store_flush(s, 0), 0); /* waits for the ingester, writes what is held */
  ck_assert_int_eq(sj_store_index_memory(s, SH, &m), 0);
  ck_assert_uint_eq(m.memory_rows + m.sealed_rows, 0);
  while (c.size + 23 <= 400) /* many seals; the last ones may still be sealed at close */
    append_batch(s, &c, 23, 0);
  sj_store_close(s);
  s = open_store();
  check_head(s, &c);
  ck_assert(scan_is_exact(s));
  check_entries(s, &c);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

/* ---- TCase threads: readers during commits --------------------------------------------------- */

typedef struct {
  sj_store_t *s;
  atomic_int *stop;
  long proofs;
  int failures;
} reader_t;

typedef struct {
  uint64_t below; /* rows with seq < limit */
  uint64_t limit;
  uint64_t max; /* largest seq + 1 seen */
} count_t;

static int count_rows(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms) {
  count_t *c = ctx;
  (void)time_ms;
  if (region == SH && seq < c->limit)
    c->below++;
  if (seq + 1 > c->max)
    c->max = seq + 1;
  return 0;
}

/* Every entry names uscc_b once: a scan sees exactly the committed entries, whether their rows are
 * in memory, being ingested, or in the family. */
static int scan_is_exact(sj_store_t *s) {
  uint8_t k[1 + SJ_ENTRY_MAX_KEY_LEN];
  size_t kn = sj_store_index_key(SJ_KEY_USCC, (const uint8_t *)uscc_b, 18, k);
  uint64_t after = 0;
  count_t c = {0, 0, 0};
  sj_store_head(s, SH, &c.limit, NULL, NULL);
  if (sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, NULL, count_rows, &c) != 0)
    return 0;
  sj_store_head(s, SH, &after, NULL, NULL);
  return c.below == c.limit && c.max <= after;
}

static void *reader_main(void *arg) {
  reader_t *r = arg;
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], root[SJ_HASH_LEN], leaf[SJ_HASH_LEN];
  size_t n = 0;
  uint64_t size = 0, x = 88172645463325252ull;
  while (!atomic_load(r->stop)) {
    sj_store_head(r->s, SH, &size, root, NULL);
    if (size == 0)
      continue;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t i = x % size;
    if (sj_store_prove_inclusion(r->s, SH, i, size, path, &n) != 0 ||
        sj_store_leaf_hash(r->s, SH, i, leaf) != 0 ||
        sj_merkle_verify_inclusion(leaf, i, size, (const uint8_t(*)[SJ_HASH_LEN])path, n, root) !=
            0)
      r->failures++;
    if (r->proofs++ % 8 == 0 && !scan_is_exact(r->s))
      r->failures++;
  }
  return NULL;
}

START_TEST(readers_see_consistent_heads_during_commits) {
  chain_t c;
  atomic_int stop;
  pthread_t th[2];
  reader_t rd[2];
  atomic_init(&stop, 0);
  chain_init(&c, SH, 1000);
  sj_store_t *s = open_store();
  for (int i = 0; i < 2; i++) {
    rd[i] = (reader_t){s, &stop, 0, 0};
    ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
  }
  while (c.size + 17 <= 1000)
    append_batch(s, &c, 17, 0);
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(rd[i].failures, 0);
  }
  check_head(s, &c);
  sj_store_close(s);
  chain_free(&c);
}
END_TEST

static Suite *storage_suite(void) {
  Suite *s = suite_create("storage");
  const TTest *append[] = {append_reopen_reads_everything_back,
                           scan_stops_resumes_and_aborts,
                           reads_span_memtables_and_table_files,
                           entries_and_their_facts_read_many_at_once,
                           index_rows_carry_copies_of_their_entries,
                           index_compaction_keeps_every_row,
                           warm_cache_reads_families_into_the_block_cache,
                           NULL};
  const TTest *proofs[] = {proofs_verify_at_every_size_to_300, one_entry_per_batch_frontier_matches,
                           NULL};
  const TTest *refuse[] = {refused_adds_leave_batch_usable,
                           abort_and_uncommitted_batches_leave_nothing, one_open_batch_per_region,
                           NULL};
  const TTest *crash[] = {reopen_after_crash_keeps_synced_batches,
                          reopen_after_crash_keeps_synced_pipelined_batches, NULL};
  const TTest *pipeline[] = {written_batches_stay_hidden_until_published, NULL};
  const TTest *regions[] = {several_regions_side_by_side, NULL};
  const TTest *threads[] = {readers_see_consistent_heads_during_commits, NULL};
  const TTest *ingester[] = {ingester_writes_sealed_rows_while_commits_go_on, NULL};
  struct {
    const char *name;
    void (*setup)(void);
    const TTest **tests;
  } cases[] = {
      {"append", setup, append},
      {"append_bulk_index", setup_bulk, append},
      {"append_direct_index", setup_direct, append},
      {"proofs", setup, proofs},
      {"refuse", setup, refuse},
      {"crash", setup, crash},
      {"crash_bulk_index", setup_bulk, crash},
      {"pipeline", setup, pipeline},
      {"pipeline_bulk_index", setup_bulk, pipeline},
      {"pipeline_direct_index", setup_direct, pipeline},
      {"regions", setup, regions},
      {"regions_bulk_index", setup_bulk, regions},
      {"threads", setup_bulk, threads},
      {"ingester", setup_bulk, ingester},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, cases[i].setup, teardown);
    tcase_set_timeout(tc, 120);
    for (size_t k = 0; cases[i].tests[k] != NULL; k++)
      tcase_add_test(tc, cases[i].tests[k]);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(storage_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
