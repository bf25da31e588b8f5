/* sjbench-store: the log store's append and proof rates against raw RocksDB.
 *
 *   sjbench-store [--n N] [--batch B] [--body BYTES] [--sync-n N] [--proofs P] [--scans S]
 *                 [--keys K] [--only store|raw|none] [--dir DIR]
 *
 * 1. Appends N entries to one region through the store, one batch per B entries, unsynced; and,
 *    interleaved batch by batch so background compaction hits both alike, writes the same records
 *    (the store's entry row: key and value) as raw RocksDB WriteBatches of B records into a
 *    separate DB opened with the same options. Only the store calls / the raw writes are timed;
 *    building the headers (what a submitter does) is not.
 * 2. The same with every batch fsync'd, for sync-n entries (another region, same two DBs).
 * 3. Inclusion proofs over the N-entry log at random indices: P proofs timed, a sample verified.
 * 4. Subject scans (index lookups) of S random enterprises of the pool the entries named.
 * --only store|raw|none runs one side alone, or neither (only generating the records; the printed
 * rates and ratio are then meaningless), so that on a busy machine the process CPU time of each
 * side, minus that of "none", can be compared (e.g. under /usr/bin/time).
 * Progress goes to stderr, results to stdout. DIR defaults to a fresh directory under $SJ_TMPDIR
 * (or /tmp), removed at the end. */
#include "storage/storage.h"

#include <dirent.h>
#include <errno.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uint64_t n, batch, body, sync_n, proofs, scans;
  unsigned keys;
  const char *dir;
  int only; /* 0 both, 1 store only, 2 raw only, 3 neither (CPU-time comparisons, see top) */
} args_t;

typedef struct {
  uint32_t region;
  uint64_t seq;
  uint8_t prev[SJ_HASH_LEN];
  sj_buf_t *hdr;  /* batch headers, one buffer each */
  sj_buf_t *body; /* batch bodies */
} gen_t;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread: a figure that a busy machine does not inflate. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rv) {
  fprintf(stderr, "sjbench-store: %s: %s %s\n", what, sj_strerror(rv), sj_store_last_error());
  exit(1);
}

static void rm_tree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *e;
  char p[4096];
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

/* ---- Records: a credit entry naming two enterprises and, every third one, a lot -------------- */

static void make_body(uint64_t seq, size_t want, sj_buf_t *b) {
  sj_buf_reset(b);
  sj_buf_printf(b, "{\"seq\":%llu,\"authority\":\"310000-market-regulation\",\"text\":\"",
                (unsigned long long)seq);
  while (b->n + 2 < want)
    sj_buf_append_u8(b, (uint8_t)('a' + (b->n * 7 + seq) % 26));
  sj_buf_append_str(b, "\"}");
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser: a fixed pseudo-random draw */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Generates the next count entries of g's chain into g->hdr / g->body. Keys: one enterprise
 * (USCC) drawn from a pool of 10^6, and nkeys-1 lots (EPC) drawn from a pool of 10^6 (none when
 * nkeys is 0): random
 * positions in the index, as real submissions are. */
static void generate(gen_t *g, uint64_t count, size_t body_len, unsigned nkeys) {
  char uscc[19], epc[8][64];
  sj_index_key_t keys[8];
  for (uint64_t i = 0; i < count; i++, g->seq++) {
    uint64_t r = mix(g->seq ^ ((uint64_t)g->region << 40));
    snprintf(uscc, sizeof uscc, "91310000MA%08llu", (unsigned long long)(r % 1000000));
    keys[0] = (sj_index_key_t){SJ_KEY_USCC, 18, (const uint8_t *)uscc};
    for (unsigned k = 1; k < nkeys; k++) {
      int en = snprintf(epc[k], sizeof epc[k], "urn:epc:id:sgtin:0614141.107346.%llu",
                        (unsigned long long)(mix(r + k) % 1000000));
      keys[k] = (sj_index_key_t){SJ_KEY_EPC, (uint16_t)en, (const uint8_t *)epc[k]};
    }
    make_body(g->seq, body_len, &g->body[i]);
    sj_entry_header_t h = {.version = SJ_ENTRY_VERSION,
                           .region = g->region,
                           .seq = g->seq,
                           .time_ms = 1700000000000ull + g->seq,
                           .kind = SJ_KIND_CREDIT,
                           .disclosure = SJ_DISCLOSE_PUBLIC,
                           .type_len = 7,
                           .type = "penalty",
                           .body_len = (uint32_t)g->body[i].n,
                           .nkeys = (uint16_t)nkeys,
                           .keys = keys};
    memcpy(h.prev, g->prev, SJ_HASH_LEN);
    sj_sha256(g->body[i].p, g->body[i].n, h.body_hash);
    sj_buf_reset(&g->hdr[i]);
    if (sj_entry_encode(&h, &g->hdr[i]) != 0)
      die("encode", SJ_EINVAL);
    sj_merkle_leaf_hash(g->hdr[i].p, g->hdr[i].n, g->prev);
  }
}

/* ---- Raw RocksDB baseline: the options of storage/log_store.c for the entries family --------- */

static rocksdb_t *raw_open(const char *path, rocksdb_cache_t *cache) {
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(o, 1);
  rocksdb_options_set_max_background_jobs(o, 2);
  rocksdb_options_set_max_total_wal_size(o, 256u << 20);
  rocksdb_options_set_bytes_per_sync(o, 1u << 20);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
  rocksdb_options_set_compression(o, rocksdb_lz4_compression);
  rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
  rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_checksum(t, 4);
  rocksdb_block_based_options_set_block_cache(t, cache);
  rocksdb_block_based_options_set_format_version(t, 5);
  rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
  rocksdb_options_set_block_based_table_factory(o, t);
  rocksdb_block_based_options_destroy(t);
  char *err = NULL;
  rocksdb_t *db = rocksdb_open(o, path, &err);
  rocksdb_options_destroy(o);
  if (err != NULL) {
    fprintf(stderr, "sjbench-store: raw open: %s\n", err);
    exit(1);
  }
  return db;
}

/* One raw batch of the rows the store writes for entries: (region, seq) -> flags | len |
 * header | body. */
static void raw_write(rocksdb_t *db, rocksdb_writeoptions_t *wo, const gen_t *g, uint64_t first,
                      uint64_t count) {
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  for (uint64_t i = 0; i < count; i++) {
    uint8_t k[12], pre[5];
    sj_put_be32(k, g->region);
    sj_put_be64(k + 4, first + i);
    pre[0] = 1;
    sj_put_be32(pre + 1, (uint32_t)g->hdr[i].n);
    const char *kl[1] = {(const char *)k};
    size_t ks[1] = {sizeof k};
    const char *vl[3] = {(const char *)pre, (const char *)g->hdr[i].p, (const char *)g->body[i].p};
    size_t vs[3] = {sizeof pre, g->hdr[i].n, g->body[i].n};
    rocksdb_writebatch_putv(wb, 1, kl, ks, 3, vl, vs);
  }
  char *err = NULL;
  rocksdb_write(db, wo, wb, &err);
  rocksdb_writebatch_destroy(wb);
  if (err != NULL) {
    fprintf(stderr, "sjbench-store: raw write: %s\n", err);
    exit(1);
  }
}

static void store_write_batch(sj_store_t *s, const gen_t *g, uint64_t count, int sync) {
  sj_store_batch_t *b = NULL;
  int rv = sj_store_batch_begin(s, g->region, &b);
  if (rv != 0)
    die("begin", rv);
  for (uint64_t i = 0; i < count; i++) {
    rv = sj_store_batch_add(b, g->hdr[i].p, g->hdr[i].n, g->body[i].p, g->body[i].n, NULL);
    if (rv != 0)
      die("add", rv);
  }
  if ((rv = sj_store_batch_commit(b, sync)) != 0)
    die("commit", rv);
}

/* Appends n entries of region to the store and the raw DB; prints records/s and the ratio. */
static void append_phase(const args_t *a, sj_store_t *s, rocksdb_t *raw, uint32_t region,
                         uint64_t n, int sync) {
  gen_t g = {.region = region};
  g.hdr = calloc(a->batch, sizeof *g.hdr);
  g.body = calloc(a->batch, sizeof *g.body);
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(wo, sync);
  double t_store = 0, t_raw = 0, t0;
  for (uint64_t done = 0; done < n;) {
    uint64_t count = n - done < a->batch ? n - done : a->batch;
    generate(&g, count, a->body, a->keys);
    t0 = now();
    if (a->only == 0 || a->only == 1)
      store_write_batch(s, &g, count, sync);
    t_store += now() - t0;
    t0 = now();
    if (a->only == 0 || a->only == 2)
      raw_write(raw, wo, &g, done, count);
    t_raw += now() - t0;
    done += count;
    if (done % (n / 10 ? n / 10 : 1) < count)
      fprintf(stderr, "  %s: %llu / %llu (so far: store %.0f rec/s, raw %.0f rec/s)\n",
              sync ? "synced" : "unsynced", (unsigned long long)done, (unsigned long long)n,
              (double)done / t_store, (double)done / t_raw);
  }
  printf("append %-8s n=%llu batch=%llu body=%llu keys=%u: store %.0f rec/s, raw rocksdb %.0f "
         "rec/s, ratio %.2f\n",
         sync ? "synced" : "unsynced", (unsigned long long)n, (unsigned long long)a->batch,
         (unsigned long long)a->body, a->keys, (double)n / t_store, (double)n / t_raw,
         t_raw / t_store);
  for (uint64_t i = 0; i < a->batch; i++) {
    sj_buf_deinit(&g.hdr[i]);
    sj_buf_deinit(&g.body[i]);
  }
  free(g.hdr);
  free(g.body);
  rocksdb_writeoptions_destroy(wo);
}

static void proof_phase(const args_t *a, sj_store_t *s, uint32_t region) {
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], root[SJ_HASH_LEN], leaf[SJ_HASH_LEN];
  size_t plen = 0;
  uint64_t size = 0, x = 0x9E3779B97F4A7C15ull;
  sj_store_head(s, region, &size, root, NULL);
  double t = 0, c0 = cpu_now(), cpu = 0;
  for (uint64_t i = 0; i < a->proofs; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint64_t idx = x % size;
    double t0 = now();
    int rv = sj_store_prove_inclusion(s, region, idx, size, path, &plen);
    t += now() - t0;
    if (rv != 0)
      die("prove", rv);
    if (i % 1000 == 0) { /* untimed sample check */
      cpu += cpu_now() - c0;
      if ((rv = sj_store_leaf_hash(s, region, idx, leaf)) != 0)
        die("leaf", rv);
      if (sj_merkle_verify_inclusion(leaf, idx, size, (const uint8_t(*)[SJ_HASH_LEN])path, plen,
                                     root) != 0)
        die("verify", SJ_EVERIFY);
      c0 = cpu_now();
    }
  }
  cpu += cpu_now() - c0;
  printf("inclusion proofs at size %llu: %.0f proofs/s (%.1f us each; %.1f us of CPU each, i.e. "
         "%.0f/s per core; %llu proofs)\n",
         (unsigned long long)size, (double)a->proofs / t, t / (double)a->proofs * 1e6,
         cpu / (double)a->proofs * 1e6, (double)a->proofs / cpu, (unsigned long long)a->proofs);
}

static int count_row(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms) {
  (void)region;
  (void)seq;
  (void)time_ms;
  (*(uint64_t *)ctx)++;
  return 0;
}

/* Subject lookups: scans of random enterprises of the pool the entries drew from. */
static void scan_phase(const args_t *a, sj_store_t *s) {
  char uscc[19];
  uint8_t k[1 + SJ_ENTRY_MAX_KEY_LEN];
  uint64_t rows = 0;
  double t = 0, c0 = cpu_now();
  for (uint64_t i = 0; i < a->scans; i++) {
    snprintf(uscc, sizeof uscc, "91310000MA%08llu", (unsigned long long)(mix(i) % 1000000));
    size_t kn = sj_store_index_key(SJ_KEY_USCC, (const uint8_t *)uscc, 18, k);
    double t0 = now();
    int rv = sj_store_scan(s, SJ_INDEX_SUBJECTS, k, kn, NULL, count_row, &rows);
    t += now() - t0;
    if (rv != 0)
      die("scan", rv);
  }
  double cpu = cpu_now() - c0;
  printf("subject scans: %.0f scans/s (%.1f us each; %.1f us of CPU each; %.2f rows per scan, "
         "%llu scans)\n",
         (double)a->scans / t, t / (double)a->scans * 1e6, cpu / (double)a->scans * 1e6,
         (double)rows / (double)a->scans, (unsigned long long)a->scans);
}

static void usage(void) {
  fprintf(stderr, "usage: sjbench-store [--n N] [--batch B] [--body BYTES] [--sync-n N] "
                  "[--proofs P] [--scans S] [--keys 0..8] [--only store|raw|none] [--dir DIR]\n");
  exit(2);
}

static void parse_args(int argc, char **argv, args_t *a) {
  *a = (args_t){1000000, 100, 300, 100000, 200000, 100000, 2, NULL, 0};
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (strcmp(argv[i - 1], "--dir") == 0) {
      a->dir = v;
      continue;
    }
    if (strcmp(argv[i - 1], "--only") == 0) {
      a->only = strcmp(v, "store") == 0  ? 1
                : strcmp(v, "raw") == 0  ? 2
                : strcmp(v, "none") == 0 ? 3
                                         : -1;
      if (a->only < 0)
        usage();
      continue;
    }
    uint64_t n = strtoull(v, NULL, 10);
    if (strcmp(argv[i - 1], "--n") == 0)
      a->n = n;
    else if (strcmp(argv[i - 1], "--batch") == 0)
      a->batch = n;
    else if (strcmp(argv[i - 1], "--body") == 0)
      a->body = n;
    else if (strcmp(argv[i - 1], "--sync-n") == 0)
      a->sync_n = n;
    else if (strcmp(argv[i - 1], "--proofs") == 0)
      a->proofs = n;
    else if (strcmp(argv[i - 1], "--scans") == 0)
      a->scans = n;
    else if (strcmp(argv[i - 1], "--keys") == 0)
      a->keys = (unsigned)n;
    else
      usage();
  }
  if (a->n == 0 || a->batch == 0 || a->keys > 8)
    usage();
}

int main(int argc, char **argv) {
  args_t a;
  char base[3072], path[4096];
  parse_args(argc, argv, &a);
  if (sj_crypto_init() != 0)
    die("crypto init", SJ_EINVAL);
  int own_dir = a.dir == NULL;
  if (own_dir) {
    const char *t = getenv("SJ_TMPDIR");
    snprintf(base, sizeof base, "%s/sjbench-store-XXXXXX", t ? t : "/tmp");
    if (mkdtemp(base) == NULL)
      die("mkdtemp", -errno);
  } else {
    snprintf(base, sizeof base, "%s", a.dir);
    mkdir(base, 0700);
  }
  sj_store_t *s = NULL;
  snprintf(path, sizeof path, "%s/store", base);
  /* --only raw: no store at all, so that none of its threads (flushes, compactions, the index
   * ingester) runs beside the raw writes, and its options leave RocksDB's default env alone */
  int rv = a.only == 2 ? 0 : sj_store_open(path, NULL, &s);
  if (rv != 0)
    die("open", rv);
  rocksdb_cache_t *cache = rocksdb_cache_create_lru(256u << 20);
  snprintf(path, sizeof path, "%s/raw", base);
  rocksdb_t *raw = raw_open(path, cache);

  append_phase(&a, s, raw, 310000, a.n, 0);
  if (a.sync_n > 0)
    append_phase(&a, s, raw, 320000, a.sync_n, 1);
  if (a.proofs > 0 && (a.only == 0 || a.only == 1))
    proof_phase(&a, s, 310000);
  if (a.scans > 0 && (a.only == 0 || a.only == 1))
    scan_phase(&a, s);

  rocksdb_close(raw);
  rocksdb_cache_destroy(cache);
  sj_store_close(s);
  if (own_dir)
    rm_tree(base);
  return 0;
}
