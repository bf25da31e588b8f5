/* bench/sjload.c — sjload (built as build/bin/sjload): an HTTP/2 load generator for the node's API,
 * on the net/ client, plus the synthetic data it loads and a replication-lag probe.
 *
 *   sjload --url URL [--connections C] [--streams S] [--duration SEC] [--requests N]
 *          [--mix subject=80,proof=10,trace=10,post=0] [--keys FILE] [--trace-keys FILE]
 *          [--dist uniform|zipf:1.1] [--rate R [--pace spin|timer]] [--warmup SEC] [--seed N]
 *          [--body FILE --batch K --token-file FILE] [--path /static] [--region R]
 *          [--proof-size N] [--grace SEC] [--follow URL [--follow-region R]
 *          [--follow-token-file FILE]] [--read-token-file FILE] [--timeline FILE]
 *          [--json] [--quiet]
 *   sjload --gen N --out DIR [--subjects K] [--trace-every M] [--region R] [--size B] [--seed N]
 *   sjload --url URL --dump N [--mix ...] [--keys ...] [--dist ...]   (prints N request URLs)
 *   sjload --self-test                     (checks the histogram, Zipf sampler, USCC generator)
 *
 * Request kinds of --mix (weights, any scale): subject GET /v1/subjects/{id}; report
 * GET /v1/subjects/{id}/report; trace GET /v1/trace/{code}; journey GET /v1/trace/{code}/journey;
 * proof GET /v1/logs/{region}/proof/inclusion?index=I&size=N; record GET /v1/records/{region}/{seq}
 * (I, seq uniform below the tree size); checkpoint; post POST /v1/records with the next K lines of
 * the NDJSON body file (wrapping around) and the bearer token; path GET --path (a static file, for
 * baselines such as nghttpd). ids come from --keys, codes from --trace-keys (one a line), picked
 * uniformly or by a Zipf law of exponent s over a seeded random ranking of the keys. GETs go
 * without a token (as the public) unless --read-token-file gives one (e.g. an authority's).
 *
 * Every run is bounded by --duration (default 10 s) AND --requests (default 10^8), whichever comes
 * first; requests still in flight then get --grace seconds (default 10) before they are cancelled.
 * Closed loop (default): C connections x S streams, each stream sending its next request as soon
 * as the last one is answered — maximum throughput. Open loop (--rate R): requests are due at
 * t0 + i/R whatever happens; each is sent on a free stream as soon as it is due (the loop spins to
 * send on time) and its latency is measured from the time it was due, so a stalled server is
 * charged for the requests it delayed (no coordinated omission). --pace timer checks what is due
 * every millisecond instead of spinning (requests go up to ~1 ms late, and that is charged to
 * them): for a load that shares its CPUs with the servers, where a spinning loop would take a
 * whole CPU from them (bench/repl-catchup). Requests due before --warmup
 * seconds are sent but not recorded.
 *
 * --follow URL also opens GET /v1/logs/{region}/entries?start=S&follow=1 on URL (a follower
 * node; S its local size at start) and records, for each entry appended after the measurement
 * started, the arrival time minus the header's time_ms (the origin's clock at acceptance; same
 * machine, millisecond resolution): replication lag from append at the origin to commit at the
 * follower. After the load it waits (up to --grace) until the last acknowledged entry arrived.
 * --follow-token-file presents a token on that stream (a peer or authority token: the public's
 * stream also passes every entry through the node's disclosure rules).
 *
 * Latencies go into log-bucketed histograms (128 buckets per power of two: <= 0.8 % error);
 * the summary gives p50/p90/p99/p99.9/max per kind and overall; --json prints one JSON object.
 * --timeline FILE also writes every measured request (due time, latency, kind, status), to see
 * when in a run the slow ones fell (a stall hits neighbours; a slow path hits scattered ones).
 * --gen writes DIR/records.ndjson (credit records spread evenly over K enterprises, default N/10,
 * with valid GB 32100 codes; every M-th record a traceability ObjectEvent, about five per lot),
 * DIR/subjects.txt and DIR/trace.txt. --dump prints the URLs of N GET requests as the mix and
 * popularity law would pick them (an input file for h2load -i).
 * Exit status: 0 when every request got a 2xx answer, 1 otherwise, 2 on bad usage. */
#include "common/common.h"
#include "net/net.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ================================================================================================
 * Histogram: values in ns, HdrHistogram-like. Below 2^H_BITS a bucket per value; above, each power
 * of two is split into H_HALF equal buckets, so a bucket is at most 1/H_HALF of its value wide.
 * ============================================================================================== */

#define H_BITS 8
#define H_HALF (1u << (H_BITS - 1))
#define H_MAXMSB 41 /* values clamp at 2^42 ns (~73 minutes) */
#define H_N ((H_MAXMSB - H_BITS + 3) * H_HALF)

typedef struct {
  uint64_t n[H_N]; /* count per bucket */
  uint64_t count;  /* values recorded */
  uint64_t max;    /* exact largest value */
  double sum;      /* for the mean */
} hist_t;

static size_t h_index(uint64_t v) {
  if (v >= ((uint64_t)1 << (H_MAXMSB + 1)))
    v = ((uint64_t)1 << (H_MAXMSB + 1)) - 1;
  if (v < (1u << H_BITS))
    return (size_t)v;
  int msb = 63 - __builtin_clzll(v);
  int shift = msb - H_BITS + 1;
  return (size_t)shift * H_HALF + (size_t)(v >> shift);
}

/* The largest value that lands in bucket i (the conservative answer for a percentile). */
static uint64_t h_upper(size_t i) {
  if (i < (1u << H_BITS))
    return i;
  unsigned shift = (unsigned)(i / H_HALF) - 1;
  uint64_t mant = i % H_HALF + H_HALF;
  return ((mant + 1) << shift) - 1;
}

static void h_add(hist_t *h, uint64_t v) {
  h->n[h_index(v)]++;
  h->count++;
  h->sum += (double)v;
  if (v > h->max)
    h->max = v;
}

static void h_merge(hist_t *into, const hist_t *from) {
  for (size_t i = 0; i < H_N; i++)
    into->n[i] += from->n[i];
  into->count += from->count;
  into->sum += from->sum;
  if (from->max > into->max)
    into->max = from->max;
}

static uint64_t h_quantile(const hist_t *h, double q) {
  if (h->count == 0)
    return 0;
  uint64_t want = (uint64_t)ceil(q * (double)h->count), cum = 0;
  if (want == 0)
    want = 1;
  for (size_t i = 0; i < H_N; i++) {
    cum += h->n[i];
    if (cum >= want)
      return h_upper(i) < h->max ? h_upper(i) : h->max;
  }
  return h->max;
}

/* ================================================================================================
 * Random numbers (splitmix64) and key popularity
 * ============================================================================================== */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) {
  return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
  char **v; /* keys, already %-encoded for a path segment */
  size_t n;
  uint32_t *perm; /* Zipf: rank -> key index (a seeded shuffle) */
  double *cdf;    /* Zipf: cumulative probability of ranks 0..n-1; NULL = uniform */
} keyset_t;

static void keys_free(keyset_t *k) {
  for (size_t i = 0; i < k->n; i++)
    free(k->v[i]);
  free(k->v);
  free(k->perm);
  free(k->cdf);
  memset(k, 0, sizeof *k);
}

/* Prepares Zipf sampling with exponent s over k's keys; s <= 0 leaves it uniform. */
static int keys_zipf(keyset_t *k, double s, uint64_t seed) {
  if (s <= 0 || k->n == 0)
    return 0;
  k->perm = malloc(k->n * sizeof *k->perm);
  k->cdf = malloc(k->n * sizeof *k->cdf);
  if (!k->perm || !k->cdf)
    return -ENOMEM;
  double sum = 0;
  for (size_t i = 0; i < k->n; i++) {
    sum += 1.0 / pow((double)(i + 1), s);
    k->cdf[i] = sum;
    k->perm[i] = (uint32_t)i;
  }
  for (size_t i = 0; i < k->n; i++)
    k->cdf[i] /= sum;
  for (size_t i = k->n - 1; i > 0; i--) { /* Fisher-Yates: the popular keys are random ones */
    size_t j = rng_next(&seed) % (i + 1);
    uint32_t t = k->perm[i];
    k->perm[i] = k->perm[j];
    k->perm[j] = t;
  }
  return 0;
}

static const char *keys_pick(const keyset_t *k, uint64_t *rng) {
  if (!k->cdf)
    return k->v[rng_next(rng) % k->n];
  double u = rng_unit(rng);
  size_t lo = 0, hi = k->n - 1;
  while (lo < hi) { /* first rank whose cumulative probability reaches u */
    size_t mid = lo + (hi - lo) / 2;
    if (k->cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return k->v[k->perm[lo]];
}

/* ================================================================================================
 * Input files
 * ============================================================================================== */

static int read_file(const char *path, sj_buf_t *out) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -errno;
  char tmp[65536];
  size_t got;
  int rv = 0;
  while (rv == 0 && (got = fread(tmp, 1, sizeof tmp, f)) > 0)
    rv = sj_buf_append(out, tmp, got);
  if (rv == 0 && ferror(f))
    rv = -EIO;
  fclose(f);
  return rv;
}

/* Copies a key into a path segment: unreserved characters and ":@" stay, the rest is %XX. */
static char *path_segment(const char *p, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  char *o = malloc(n * 3 + 1), *q = o;
  if (!o)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~:@", c)) {
      *q++ = (char)c;
    } else {
      *q++ = '%';
      *q++ = hex[c >> 4];
      *q++ = hex[c & 15];
    }
  }
  *q = 0;
  return o;
}

/* One key a line; blank lines and lines starting with '#' are skipped. */
static int keys_load(const char *path, keyset_t *k) {
  sj_buf_t b = {0};
  int rv = read_file(path, &b);
  size_t cap = 0;
  for (size_t i = 0; rv == 0 && i < b.n;) {
    size_t e = i;
    while (e < b.n && b.p[e] != '\n')
      e++;
    size_t s = i, t = e;
    while (s < t && (b.p[s] == ' ' || b.p[s] == '\t'))
      s++;
    while (t > s && (b.p[t - 1] == ' ' || b.p[t - 1] == '\t' || b.p[t - 1] == '\r'))
      t--;
    i = e + 1;
    if (s == t || b.p[s] == '#')
      continue;
    if (k->n == cap) {
      cap = cap ? cap * 2 : 1024;
      char **nv = realloc(k->v, cap * sizeof *nv);
      if (!nv) {
        rv = -ENOMEM;
        break;
      }
      k->v = nv;
    }
    if (!(k->v[k->n] = path_segment((const char *)b.p + s, t - s)))
      rv = -ENOMEM;
    else
      k->n++;
  }
  sj_buf_deinit(&b);
  if (rv == 0 && k->n == 0)
    rv = SJ_EFORMAT;
  return rv;
}

/* The POST body file: NDJSON, split into chunks of `batch` non-blank lines. */
typedef struct {
  sj_buf_t data;
  size_t *start; /* byte offset of chunk i; start[nchunks] = end of the last one */
  size_t nchunks;
  unsigned batch;
} bodies_t;

static int bodies_load(const char *path, unsigned batch, bodies_t *bd) {
  int rv = read_file(path, &bd->data);
  size_t lines = 0, cap = 0;
  bd->batch = batch;
  for (size_t i = 0; rv == 0 && i < bd->data.n;) {
    size_t e = i;
    while (e < bd->data.n && bd->data.p[e] != '\n')
      e++;
    if (e > i && !(e == i + 1 && bd->data.p[i] == '\r')) {
      if (lines % batch == 0) {
        if (bd->nchunks + 1 >= cap) {
          cap = cap ? cap * 2 : 1024;
          size_t *ns = realloc(bd->start, cap * sizeof *ns);
          if (!ns)
            return -ENOMEM;
          bd->start = ns;
        }
        bd->start[bd->nchunks++] = i;
      }
      lines++;
      bd->start[bd->nchunks] = e + 1 < bd->data.n ? e + 1 : bd->data.n;
    }
    i = e + 1;
  }
  if (rv == 0 && lines % batch) /* a short last chunk would change the batch size: drop it */
    bd->nchunks--;
  return rv == 0 && bd->nchunks == 0 ? SJ_EFORMAT : rv;
}

static int read_token(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  int rv = fgets(out, (int)cap, f) ? 0 : SJ_EFORMAT;
  fclose(f);
  out[strcspn(out, "\r\n \t")] = 0;
  return rv == 0 && out[0] == 0 ? SJ_EFORMAT : rv;
}

/* ================================================================================================
 * Arguments
 * ============================================================================================== */

enum {
  K_SUBJECT,
  K_REPORT,
  K_TRACE,
  K_JOURNEY,
  K_PROOF,
  K_RECORD,
  K_CHECKPOINT,
  K_POST,
  K_PATH,
  NKIND
};
static const char *const kind_names[NKIND] = {"subject", "report",     "trace", "journey", "proof",
                                              "record",  "checkpoint", "post",  "path"};

typedef struct {
  const char *url, *keys, *trace_keys, *dist, *body, *token_file, *path, *follow, *gen_out;
  const char *follow_token_file, *read_token_file, *timeline;
  unsigned conns, streams, batch;
  uint64_t requests, seed, proof_size, gen_n, gen_subjects, gen_trace_every, gen_size, dump;
  double duration, warmup, rate, grace, weights[NKIND];
  uint32_t region, follow_region;
  int json, quiet, pace_timer;
} args_t;

static int usage(void) {
  fprintf(
      stderr,
      "usage: sjload --url URL [--connections C] [--streams S] [--duration SEC] [--requests N]\n"
      "         [--mix subject=80,proof=10,trace=10,post=0] [--keys FILE] [--trace-keys FILE]\n"
      "         [--dist uniform|zipf:S] [--rate R] [--warmup SEC] [--seed N] [--grace SEC]\n"
      "         [--body NDJSON --batch K --token-file FILE] [--path P] [--region R]\n"
      "         [--proof-size N] [--follow URL [--follow-region R] [--follow-token-file F]]\n"
      "         [--pace spin|timer] [--timeline FILE] [--json] [--quiet]\n"
      "       sjload --gen N --out DIR [--subjects K] [--trace-every M] [--region R]\n"
      "         [--size BYTES] [--seed N]\n"
      "       sjload --url URL --dump N [--mix ...] [--keys FILE] [--dist ...]\n"
      "       sjload --self-test\n"
      "kinds: subject report trace journey proof record checkpoint post path\n");
  return 2;
}

static int parse_mix(const char *s, double *w) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", s);
  memset(w, 0, NKIND * sizeof *w);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(t, '=');
    int k = 0;
    if (!eq)
      return SJ_EINVAL;
    *eq = 0;
    while (k < NKIND && strcmp(kind_names[k], t))
      k++;
    if (k == NKIND || (w[k] = strtod(eq + 1, NULL)) < 0)
      return SJ_EINVAL;
  }
  return 0;
}

static void args_default(args_t *a) {
  memset(a, 0, sizeof *a);
  a->conns = 4;
  a->streams = 32;
  a->batch = 100;
  a->requests = 100000000;
  a->duration = 10;
  a->grace = 10;
  a->seed = 1;
  a->dist = "uniform";
  a->weights[K_SUBJECT] = 1;
  a->gen_trace_every = 10;
  a->gen_size = 300;
  a->region = 310000;
}

/* Options with a value: name -> where it goes. */
static int set_opt(args_t *a, const char *o, const char *v) {
  const char **str[] = {&a->url,
                        &a->keys,
                        &a->trace_keys,
                        &a->dist,
                        &a->body,
                        &a->token_file,
                        &a->path,
                        &a->follow,
                        &a->gen_out,
                        &a->follow_token_file,
                        &a->read_token_file,
                        &a->timeline};
  static const char *sname[] = {"--url",
                                "--keys",
                                "--trace-keys",
                                "--dist",
                                "--body",
                                "--token-file",
                                "--path",
                                "--follow",
                                "--out",
                                "--follow-token-file",
                                "--read-token-file",
                                "--timeline"};
  for (size_t i = 0; i < sizeof sname / sizeof *sname; i++)
    if (!strcmp(o, sname[i])) {
      *str[i] = v;
      return 0;
    }
  uint64_t *u64[] = {&a->requests,        &a->seed,     &a->proof_size, &a->gen_n, &a->gen_subjects,
                     &a->gen_trace_every, &a->gen_size, &a->dump};
  static const char *uname[] = {"--requests", "--seed",        "--proof-size", "--gen",
                                "--subjects", "--trace-every", "--size",       "--dump"};
  for (size_t i = 0; i < sizeof uname / sizeof *uname; i++)
    if (!strcmp(o, uname[i])) {
      *u64[i] = strtoull(v, NULL, 10);
      return 0;
    }
  double *dbl[] = {&a->duration, &a->warmup, &a->rate, &a->grace};
  static const char *dname[] = {"--duration", "--warmup", "--rate", "--grace"};
  for (size_t i = 0; i < sizeof dname / sizeof *dname; i++)
    if (!strcmp(o, dname[i])) {
      *dbl[i] = strtod(v, NULL);
      return 0;
    }
  if (!strcmp(o, "--connections") || !strcmp(o, "-c"))
    a->conns = (unsigned)strtoul(v, NULL, 10);
  else if (!strcmp(o, "--streams") || !strcmp(o, "-m"))
    a->streams = (unsigned)strtoul(v, NULL, 10);
  else if (!strcmp(o, "--batch"))
    a->batch = (unsigned)strtoul(v, NULL, 10);
  else if (!strcmp(o, "--region"))
    a->region = (uint32_t)strtoul(v, NULL, 10);
  else if (!strcmp(o, "--follow-region"))
    a->follow_region = (uint32_t)strtoul(v, NULL, 10);
  else if (!strcmp(o, "--mix"))
    return parse_mix(v, a->weights);
  else if (!strcmp(o, "--pace") && (!strcmp(v, "spin") || !strcmp(v, "timer")))
    a->pace_timer = !strcmp(v, "timer");
  else
    return SJ_EINVAL;
  return 0;
}

static int parse_args(int argc, char **argv, args_t *a) {
  args_default(a);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      a->json = 1;
    else if (!strcmp(argv[i], "--quiet"))
      a->quiet = 1;
    else if (i + 1 < argc && set_opt(a, argv[i], argv[i + 1]) == 0)
      i++;
    else {
      fprintf(stderr, "sjload: bad option %s\n", argv[i]);
      return SJ_EINVAL;
    }
  }
  if (a->gen_n)
    return a->gen_out ? 0 : SJ_EINVAL;
  if (!a->url || !a->conns || !a->streams || !a->batch || a->duration <= 0 || !a->requests) {
    fprintf(stderr, "sjload: --url, positive --connections, --streams, --duration, --requests\n");
    return SJ_EINVAL;
  }
  return 0;
}

/* ================================================================================================
 * The load
 * ============================================================================================== */

typedef struct load load_t;
typedef struct lconn lconn_t;

/* One stream slot: a request in flight, or free on its connection's list. */
typedef struct slot {
  load_t *L;
  lconn_t *c;
  struct slot *next_free;
  uint64_t intended; /* ns (uv_hrtime): when it was due (open loop) or sent (closed loop) */
  int kind;
  char path[640];
} slot_t;

struct lconn {
  sj_client_t *cl;
  slot_t *free; /* free slots of this connection */
};

typedef struct {
  hist_t h;
  uint64_t sent, done, ok, s4xx, s5xx, other, errs, bytes, records;
} kstat_t;

/* --timeline: one measured request (times in ns from the start of measurement). */
typedef struct {
  uint64_t due, latency;
  int kind, status; /* status 0: transport error */
} tl_rec_t;

#define TL_MAX 20000000 /* records kept at most (480 MB); beyond, counted as dropped */

typedef struct {
  sj_client_t *cl;
  sj_buf_t in;       /* follow stream bytes not yet parsed */
  hist_t lag;        /* ns from the header's time_ms to arrival */
  uint64_t start;    /* first seq asked for */
  uint64_t next;     /* seq expected next */
  uint64_t skipped;  /* entries appended before the measurement started */
  int64_t t_meas_ms; /* realtime ms at measurement start */
  int active, done, err;
} follow_t;

struct load {
  const args_t *a;
  uv_loop_t loop;
  uv_timer_t stop_timer, grace_timer;
  uv_idle_t spin;
  uv_timer_t pace; /* --pace timer: dispatches every millisecond instead of spinning */
  lconn_t *conns;
  slot_t *slots;
  size_t next_conn;  /* open loop: round robin over connections */
  double cum[NKIND]; /* cumulative mix weights */
  keyset_t keys, tkeys;
  bodies_t bodies;
  char auth[300];      /* "Bearer <token>" for POSTs */
  char read_auth[300]; /* for GETs; empty: none (the public) */
  uint64_t rng, tree_size, post_chunk;
  uint64_t t0, t_meas, t_stop, t_last; /* ns */
  uint64_t sent, inflight, scheduled, acked_size, sync_fail;
  uint64_t answered_all; /* responses with a status, warm-up included (for CPU per request) */
  kstat_t ks[NKIND];
  follow_t fw;
  tl_rec_t *tl; /* --timeline */
  size_t tl_n, tl_cap, tl_dropped;
  int stopping, load_done, closed, grace_on, first_err_shown;
};

static uint64_t now_ns(void) {
  return uv_hrtime();
}

static int64_t realtime_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int pick_kind(load_t *L) {
  double u = rng_unit(&L->rng) * L->cum[NKIND - 1];
  for (int k = 0; k < NKIND; k++)
    if (u < L->cum[k])
      return k;
  return NKIND - 1;
}

/* Fills s->path for kind k; returns the body to send (POST) through body and blen. */
static void build_request(load_t *L, slot_t *s, int k, const void **body, size_t *blen) {
  const args_t *a = L->a;
  uint64_t size = L->tree_size ? L->tree_size : 1;
  *body = NULL;
  *blen = 0;
  switch (k) {
  case K_SUBJECT:
  case K_REPORT:
    snprintf(s->path, sizeof s->path, "/v1/subjects/%s%s", keys_pick(&L->keys, &L->rng),
             k == K_REPORT ? "/report" : "");
    break;
  case K_TRACE:
  case K_JOURNEY:
    snprintf(s->path, sizeof s->path, "/v1/trace/%s%s", keys_pick(&L->tkeys, &L->rng),
             k == K_JOURNEY ? "/journey" : "");
    break;
  case K_PROOF:
    snprintf(s->path, sizeof s->path, "/v1/logs/%06u/proof/inclusion?index=%llu&size=%llu",
             (unsigned)a->region, (unsigned long long)(rng_next(&L->rng) % size),
             (unsigned long long)size);
    break;
  case K_RECORD:
    snprintf(s->path, sizeof s->path, "/v1/records/%06u/%llu", (unsigned)a->region,
             (unsigned long long)(rng_next(&L->rng) % size));
    break;
  case K_CHECKPOINT:
    snprintf(s->path, sizeof s->path, "/v1/logs/%06u/checkpoint", (unsigned)a->region);
    break;
  case K_POST: {
    size_t c = L->post_chunk++ % L->bodies.nchunks;
    snprintf(s->path, sizeof s->path, "/v1/records");
    *body = L->bodies.data.p + L->bodies.start[c];
    *blen = L->bodies.start[c + 1] - L->bodies.start[c];
    break;
  }
  default:
    snprintf(s->path, sizeof s->path, "%s", a->path);
  }
}

static void on_done(int err, const sj_resp_t *r, void *arg);
static void try_finish(load_t *L);

static void slot_release(slot_t *s) {
  s->next_free = s->c->free;
  s->c->free = s;
}

/* Sends one request on slot s (taken off its free list), due at `intended`. */
static int send_on(load_t *L, slot_t *s, uint64_t intended) {
  const void *body;
  size_t blen;
  int k = pick_kind(L);
  build_request(L, s, k, &body, &blen);
  sj_header_t h[2];
  size_t nh = 0;
  if (k == K_POST) {
    h[nh++] = (sj_header_t){"content-type", "application/x-ndjson"};
    h[nh++] = (sj_header_t){"authorization", L->auth};
  } else if (L->read_auth[0]) {
    h[nh++] = (sj_header_t){"authorization", L->read_auth};
  }
  sj_call_req_t rq = {.method = k == K_POST ? "POST" : "GET",
                      .path = s->path,
                      .hdrs = h,
                      .nhdrs = nh,
                      .body = body,
                      .body_len = blen};
  sj_call_cbs_t cbs = {.on_done = on_done, .arg = s};
  s->kind = k;
  s->intended = intended;
  int rv = sj_client_request(s->c->cl, &rq, &cbs, NULL);
  if (rv) {
    L->sync_fail++;
    return rv;
  }
  L->sent++;
  L->inflight++;
  if (intended >= L->t_meas)
    L->ks[k].sent++;
  return 0;
}

static slot_t *take_slot(load_t *L, size_t ci) {
  slot_t *s = L->conns[ci].free;
  if (s)
    L->conns[ci].free = s->next_free;
  return s;
}

static void stop_load(load_t *L);

/* Open loop: sends every request that is due, while streams are free. */
static void dispatch_open(load_t *L) {
  const args_t *a = L->a;
  uint64_t now = now_ns();
  double step = 1e9 / a->rate;
  while (!L->stopping && L->scheduled < a->requests) {
    uint64_t due = L->t0 + (uint64_t)((double)L->scheduled * step);
    if (due > now)
      return;
    slot_t *s = NULL;
    for (size_t i = 0; i < a->conns && !s; i++) /* round robin: spread over connections */
      s = take_slot(L, (L->next_conn + i) % a->conns);
    if (!s)
      return; /* all streams busy: the request waits, and its latency grows */
    L->next_conn = (size_t)(s->c - L->conns + 1) % a->conns;
    if (send_on(L, s, due)) {
      slot_release(s);
      stop_load(L);
      return;
    }
    L->scheduled++;
  }
  if (L->scheduled >= a->requests)
    stop_load(L);
}

/* Closed loop: slot s sends its next request at once. */
static void dispatch_closed(load_t *L, slot_t *s) {
  if (L->stopping || L->sent >= L->a->requests) {
    slot_release(s);
    if (!L->stopping)
      stop_load(L);
    return;
  }
  if (send_on(L, s, now_ns())) {
    slot_release(s);
    stop_load(L);
  }
}

/* "tree_size":N in a 201 answer: the follower's target. */
static void note_tree_size(load_t *L, const sj_resp_t *r) {
  static const char key[] = "\"tree_size\":";
  const char *b = (const char *)r->body;
  for (size_t i = 0; b && i + sizeof key - 1 < r->body_len; i++)
    if (b[i] == '"' && !memcmp(b + i, key, sizeof key - 1)) {
      uint64_t v = strtoull(b + i + sizeof key - 1, NULL, 10);
      if (v > L->acked_size)
        L->acked_size = v;
      return;
    }
}

static void show_first_error(load_t *L, const slot_t *s, int err, const sj_resp_t *r) {
  if (L->first_err_shown || L->a->quiet)
    return;
  L->first_err_shown = 1;
  if (err)
    fprintf(stderr, "sjload: %s %s: %s\n", kind_names[s->kind], s->path, sj_strerror(err));
  else
    fprintf(stderr, "sjload: %s %s: HTTP %d %.*s\n", kind_names[s->kind], s->path, r->status,
            (int)(r->body_len < 300 ? r->body_len : 300), r->body ? (const char *)r->body : "");
}

/* Keeps one measured request for --timeline (growing the array; past TL_MAX or without memory,
 * counts it as dropped: the file and stderr say so). */
static void tl_add(load_t *L, const slot_t *s, int status, uint64_t now) {
  if (L->tl_n == L->tl_cap) {
    size_t cap = L->tl_cap ? L->tl_cap * 2 : 65536;
    tl_rec_t *n = cap <= TL_MAX ? realloc(L->tl, cap * sizeof *n) : NULL;
    if (!n) {
      L->tl_dropped++;
      return;
    }
    L->tl = n;
    L->tl_cap = cap;
  }
  L->tl[L->tl_n++] = (tl_rec_t){s->intended - L->t_meas, now - s->intended, s->kind, status};
}

/* Writes --timeline FILE: a header line, then one line per measured request in the order they
 * completed: due (us from the start of measurement), latency (us), kind, HTTP status. The header
 * gives the start of measurement on CLOCK_MONOTONIC (uv_hrtime's clock), to line the requests up
 * with other traces of the same run. */
static int tl_write(const load_t *L, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f)
    return fprintf(stderr, "sjload: %s: %s\n", path, strerror(errno)), 1;
  fprintf(f, "# start of measurement: %llu ns on CLOCK_MONOTONIC (e.g. for perf record -k mono)\n",
          (unsigned long long)L->t_meas);
  if (L->tl_dropped) {
    fprintf(f, "# incomplete: %zu requests not kept\n", L->tl_dropped);
    fprintf(stderr, "sjload: %s: %zu requests not kept (at most %d)\n", path, L->tl_dropped, TL_MAX);
  }
  fprintf(f, "# due_us latency_us kind status\n");
  for (size_t i = 0; i < L->tl_n; i++)
    fprintf(f, "%.1f %.1f %s %d\n", (double)L->tl[i].due / 1e3, (double)L->tl[i].latency / 1e3,
            kind_names[L->tl[i].kind], L->tl[i].status);
  if (fclose(f))
    return fprintf(stderr, "sjload: %s: %s\n", path, strerror(errno)), 1;
  return 0;
}

static void record(load_t *L, const slot_t *s, int err, const sj_resp_t *r, uint64_t now) {
  kstat_t *k = &L->ks[s->kind];
  int good = !err && r->status >= 200 && r->status < 300;
  if (s->kind == K_POST && good)
    note_tree_size(L, r);
  if (!good)
    show_first_error(L, s, err, r);
  if (!err && r->status)
    L->answered_all++;
  if (s->intended < L->t_meas)
    return;
  k->done++;
  L->t_last = now;
  if (L->a->timeline)
    tl_add(L, s, err ? 0 : r->status, now);
  if (err) {
    k->errs++;
    return;
  }
  h_add(&k->h, now - s->intended);
  k->bytes += r->body_len;
  k->ok += good;
  k->s4xx += r->status >= 400 && r->status < 500;
  k->s5xx += r->status >= 500;
  k->other += !good && r->status < 400;
  if (s->kind == K_POST && good)
    k->records += L->bodies.batch;
}

static void on_done(int err, const sj_resp_t *r, void *arg) {
  slot_t *s = arg;
  load_t *L = s->L;
  L->inflight--;
  record(L, s, err, r, now_ns());
  if (L->closed) {
    slot_release(s);
    return;
  }
  if (L->a->rate > 0) {
    slot_release(s);
    dispatch_open(L);
  } else {
    dispatch_closed(L, s);
  }
  if (L->stopping && L->inflight == 0)
    try_finish(L);
}

/* ---- Follow stream: replication lag -----------------------------------------------------------
 */

/* Parses whole records of the follow stream ('E' + entry frame, 'C' + u32 + note). */
static int follow_parse(load_t *L) {
  follow_t *f = &L->fw;
  size_t off = 0;
  int64_t now_us = realtime_us();
  while (off < f->in.n) {
    const uint8_t *p = f->in.p + off;
    size_t left = f->in.n - off;
    if (p[0] == 'C') {
      if (left < 5 || left < 5 + (size_t)sj_get_be32(p + 1))
        break;
      off += 5 + sj_get_be32(p + 1);
      continue;
    }
    if (p[0] != 'E')
      return SJ_EFORMAT;
    if (left < 5)
      break;
    size_t h = sj_get_be32(p + 1);
    if (h < 21 || left < 5 + h + 4)
      break;
    uint32_t b = sj_get_be32(p + 5 + h);
    size_t need = 5 + h + 4 + (b == 0xFFFFFFFFu ? 0 : b);
    if (left < need)
      break;
    uint64_t seq = sj_get_be64(p + 5 + 5), t_ms = sj_get_be64(p + 5 + 13);
    if ((int64_t)t_ms < f->t_meas_ms) {
      f->skipped++;
    } else {
      int64_t lag = now_us - (int64_t)t_ms * 1000;
      h_add(&f->lag, (uint64_t)(lag > 0 ? lag : 0) * 1000);
    }
    f->next = seq + 1;
    off += need;
  }
  if (off) {
    memmove(f->in.p, f->in.p + off, f->in.n - off);
    f->in.n -= off;
  }
  return 0;
}

static int follow_on_data(const uint8_t *p, size_t n, void *arg) {
  load_t *L = arg;
  if (sj_buf_append(&L->fw.in, p, n) || follow_parse(L)) {
    L->fw.err = SJ_EFORMAT;
    return 1;
  }
  if (L->load_done && !L->fw.done && L->fw.next >= L->acked_size) {
    L->fw.done = 1;
    try_finish(L);
  }
  return 0;
}

static void follow_on_done(int err, const sj_resp_t *r, void *arg) {
  load_t *L = arg;
  L->fw.active = 0;
  if (!L->closed && !L->a->quiet)
    fprintf(stderr, "sjload: follow stream ended: %s (HTTP %d)\n", err ? sj_strerror(err) : "ok",
            r->status);
  if (!L->closed && !L->fw.err)
    L->fw.err = err ? err : SJ_ECLOSED;
  if (!L->closed) {
    L->fw.done = 1;
    try_finish(L);
  }
}

/* The follower's local size of the region, from its /v1/status. */
static int follow_local_size(const char *url, uint32_t region, uint64_t *out) {
  char u[600];
  sj_buf_t b = {0};
  int status = 0, rv;
  snprintf(u, sizeof u, "%s/v1/status", url);
  rv = sj_http_fetch(u, "GET", NULL, 0, NULL, 0, 10000, &status, &b, NULL);
  json_t *j = rv == 0 && status == 200 ? json_loadb((const char *)b.p, b.n, 0, NULL) : NULL;
  json_t *regs = json_object_get(j, "regions"), *r;
  size_t i;
  rv = SJ_ENOTFOUND;
  json_array_foreach(regs, i, r) {
    const char *code = json_string_value(json_object_get(r, "region"));
    if (code && (uint32_t)atol(code) == region) {
      *out = (uint64_t)json_integer_value(json_object_get(r, "local_size"));
      rv = 0;
    }
  }
  json_decref(j);
  sj_buf_deinit(&b);
  return rv;
}

static int follow_start(load_t *L) {
  const args_t *a = L->a;
  follow_t *f = &L->fw;
  uint32_t region = a->follow_region ? a->follow_region : a->region;
  int rv = follow_local_size(a->follow, region, &f->start);
  if (rv) {
    fprintf(stderr, "sjload: cannot read %s/v1/status for region %06u\n", a->follow, region);
    return rv;
  }
  sj_client_opts_t o;
  sj_client_opts_default(&o);
  o.request_timeout_ms = 0;
  if ((rv = sj_client_new(&L->loop, a->follow, &o, &f->cl)))
    return rv;
  static char path[128], auth[300];
  char tok[256];
  sj_header_t h = {"authorization", auth};
  snprintf(path, sizeof path, "/v1/logs/%06u/entries?start=%llu&follow=1", region,
           (unsigned long long)f->start);
  if (a->follow_token_file && (rv = read_token(a->follow_token_file, tok, sizeof tok)))
    return rv;
  snprintf(auth, sizeof auth, "Bearer %s", a->follow_token_file ? tok : "");
  sj_call_req_t rq = {
      .method = "GET", .path = path, .hdrs = &h, .nhdrs = a->follow_token_file ? 1 : 0};
  sj_call_cbs_t cbs = {.on_data = follow_on_data, .on_done = follow_on_done, .arg = L};
  f->next = f->start;
  if ((rv = sj_client_request(f->cl, &rq, &cbs, NULL)) == 0)
    f->active = 1;
  return rv;
}

/* ---- Run control --------------------------------------------------------------------------------
 */

static void close_all(load_t *L) {
  if (L->closed)
    return;
  L->closed = 1;
  for (unsigned i = 0; i < L->a->conns; i++)
    sj_client_close(L->conns[i].cl, NULL, NULL);
  if (L->fw.cl)
    sj_client_close(L->fw.cl, NULL, NULL);
  uv_close((uv_handle_t *)&L->stop_timer, NULL);
  uv_close((uv_handle_t *)&L->grace_timer, NULL);
  uv_close((uv_handle_t *)&L->spin, NULL);
  uv_close((uv_handle_t *)&L->pace, NULL);
}

static void on_grace(uv_timer_t *t) {
  load_t *L = t->data;
  if (!L->a->quiet)
    fprintf(stderr, "sjload: grace period over: %llu requests still in flight%s\n",
            (unsigned long long)L->inflight,
            L->fw.active && !L->fw.done ? ", follower behind" : "");
  close_all(L);
}

static void arm_grace(load_t *L) {
  if (L->grace_on)
    return;
  L->grace_on = 1;
  uv_timer_start(&L->grace_timer, on_grace, (uint64_t)(L->a->grace * 1000), 0);
}

/* Ends the run once the load is over and the follower (if any) caught up. */
static void try_finish(load_t *L) {
  if (L->closed || !L->stopping || L->inflight)
    return;
  L->load_done = 1;
  if (L->fw.active && !L->fw.done && L->fw.next < L->acked_size) {
    arm_grace(L);
    return;
  }
  close_all(L);
}

static void stop_load(load_t *L) {
  if (L->stopping)
    return;
  L->stopping = 1;
  L->t_stop = now_ns();
  uv_idle_stop(&L->spin);
  uv_timer_stop(&L->pace);
  if (L->inflight)
    arm_grace(L);
  else
    try_finish(L);
}

static void on_stop_timer(uv_timer_t *t) {
  stop_load(t->data);
}

static void on_spin(uv_idle_t *h) {
  dispatch_open(h->data);
}

static void on_pace(uv_timer_t *t) {
  dispatch_open(t->data);
}

/* tree_size and region of the target node, for proofs and records. */
static int fetch_health(load_t *L, args_t *a) {
  char u[600];
  sj_buf_t b = {0};
  int status = 0;
  snprintf(u, sizeof u, "%s/healthz", a->url);
  int rv = sj_http_fetch(u, "GET", NULL, 0, NULL, 0, 10000, &status, &b, NULL);
  json_t *j = rv == 0 && status == 200 ? json_loadb((const char *)b.p, b.n, 0, NULL) : NULL;
  if (j) {
    const char *reg = json_string_value(json_object_get(j, "region"));
    if (reg)
      a->region = (uint32_t)atol(reg);
    L->tree_size = (uint64_t)json_integer_value(json_object_get(j, "tree_size"));
  }
  json_decref(j);
  sj_buf_deinit(&b);
  return j ? 0 : rv ? rv : SJ_EPROTO;
}

static int load_inputs(load_t *L, args_t *a) {
  int rv = 0;
  double s = 0;
  if (!strncmp(a->dist, "zipf:", 5))
    s = strtod(a->dist + 5, NULL);
  else if (strcmp(a->dist, "uniform"))
    return SJ_EINVAL;
  if ((a->weights[K_SUBJECT] > 0 || a->weights[K_REPORT] > 0) &&
      (!a->keys || (rv = keys_load(a->keys, &L->keys)) || (rv = keys_zipf(&L->keys, s, a->seed))))
    return fprintf(stderr, "sjload: --keys FILE needed (%s)\n", sj_strerror(rv)), SJ_EINVAL;
  if ((a->weights[K_TRACE] > 0 || a->weights[K_JOURNEY] > 0) &&
      (!a->trace_keys || (rv = keys_load(a->trace_keys, &L->tkeys)) ||
       (rv = keys_zipf(&L->tkeys, s, a->seed))))
    return fprintf(stderr, "sjload: --trace-keys FILE needed (%s)\n", sj_strerror(rv)), SJ_EINVAL;
  if (a->weights[K_POST] > 0) {
    char tok[256];
    if (!a->body || (rv = bodies_load(a->body, a->batch, &L->bodies)) || !a->token_file ||
        (rv = read_token(a->token_file, tok, sizeof tok)))
      return fprintf(stderr,
                     "sjload: post needs --body FILE (>= --batch lines) and --token-file\n"),
             SJ_EINVAL;
    snprintf(L->auth, sizeof L->auth, "Bearer %s", tok);
  }
  if (a->read_token_file) {
    char tok[256];
    if ((rv = read_token(a->read_token_file, tok, sizeof tok)))
      return fprintf(stderr, "sjload: %s: %s\n", a->read_token_file, sj_strerror(rv)), SJ_EINVAL;
    snprintf(L->read_auth, sizeof L->read_auth, "Bearer %s", tok);
  }
  if (a->weights[K_PATH] > 0 && (!a->path || a->path[0] != '/'))
    return fprintf(stderr, "sjload: --path /FILE needed\n"), SJ_EINVAL;
  if ((a->weights[K_PROOF] > 0 || a->weights[K_RECORD] > 0) && !a->proof_size &&
      (rv = fetch_health(L, a)))
    return fprintf(stderr, "sjload: %s/healthz: %s\n", a->url, sj_strerror(rv)), rv;
  if (a->proof_size)
    L->tree_size = a->proof_size;
  return 0;
}

static int setup(load_t *L) {
  const args_t *a = L->a;
  size_t nslots = (size_t)a->conns * a->streams;
  L->conns = calloc(a->conns, sizeof *L->conns);
  L->slots = calloc(nslots, sizeof *L->slots);
  if (!L->conns || !L->slots)
    return -ENOMEM;
  sj_client_opts_t o;
  sj_client_opts_default(&o);
  o.request_timeout_ms = 60000;
  for (unsigned i = 0; i < a->conns; i++) {
    int rv = sj_client_new(&L->loop, a->url, &o, &L->conns[i].cl);
    if (rv)
      return rv;
  }
  for (size_t i = 0; i < nslots; i++) { /* slot i belongs to connection i % C */
    slot_t *s = &L->slots[i];
    s->L = L;
    s->c = &L->conns[i % a->conns];
    slot_release(s);
  }
  uv_timer_init(&L->loop, &L->stop_timer);
  uv_timer_init(&L->loop, &L->grace_timer);
  uv_idle_init(&L->loop, &L->spin);
  uv_timer_init(&L->loop, &L->pace);
  L->stop_timer.data = L->grace_timer.data = L->spin.data = L->pace.data = L;
  return 0;
}

/* Starts the load (or only the follower when the mix is empty). */
static void start(load_t *L) {
  const args_t *a = L->a;
  L->t0 = now_ns();
  L->t_meas = L->t0 + (uint64_t)(a->warmup * 1e9);
  L->fw.t_meas_ms = realtime_us() / 1000 + (int64_t)(a->warmup * 1000);
  uv_timer_start(&L->stop_timer, on_stop_timer, (uint64_t)(a->duration * 1000), 0);
  if (L->cum[NKIND - 1] <= 0) { /* follow only */
    L->sent = 0;
    return;
  }
  if (a->rate > 0) {
    if (a->pace_timer)
      uv_timer_start(&L->pace, on_pace, 1, 1);
    else
      uv_idle_start(&L->spin, on_spin);
    dispatch_open(L);
    return;
  }
  for (size_t i = 0; i < (size_t)a->conns * a->streams && !L->stopping; i++) {
    slot_t *s = take_slot(L, i % a->conns);
    dispatch_closed(L, s);
  }
}

/* ================================================================================================
 * Report
 * ============================================================================================== */

static void lat_json(sj_buf_t *o, const hist_t *h) {
  sj_buf_printf(o,
                "{\"count\":%llu,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
                "\"p999\":%.1f,\"max\":%.1f}",
                (unsigned long long)h->count, h->count ? h->sum / (double)h->count / 1e3 : 0.0,
                (double)h_quantile(h, 0.5) / 1e3, (double)h_quantile(h, 0.9) / 1e3,
                (double)h_quantile(h, 0.99) / 1e3, (double)h_quantile(h, 0.999) / 1e3,
                (double)h->max / 1e3);
}

static double measured_seconds(const load_t *L) {
  uint64_t end = L->t_last > L->t_meas ? L->t_last : L->t_meas;
  double s = (double)(end - L->t_meas) / 1e9;
  return s > 0 ? s : 1e-9;
}

static void totals(const load_t *L, kstat_t *t) {
  memset(t, 0, sizeof *t);
  for (int k = 0; k < NKIND; k++) {
    const kstat_t *s = &L->ks[k];
    h_merge(&t->h, &s->h);
    t->sent += s->sent, t->done += s->done, t->ok += s->ok, t->s4xx += s->s4xx;
    t->s5xx += s->s5xx, t->other += s->other, t->errs += s->errs, t->bytes += s->bytes;
    t->records += s->records;
  }
}

/* Requests that were due before the stop but never sent (open loop, streams all busy). */
static uint64_t backlog(const load_t *L) {
  if (L->a->rate <= 0 || !L->t_stop)
    return 0;
  uint64_t due = (uint64_t)((double)(L->t_stop - L->t0) / 1e9 * L->a->rate);
  if (due > L->a->requests)
    due = L->a->requests;
  return due > L->scheduled ? due - L->scheduled : 0;
}

static void kind_json(sj_buf_t *o, const char *name, const kstat_t *s, double secs) {
  sj_buf_printf(o,
                "\"%s\":{\"requests\":%llu,\"ok\":%llu,\"status_4xx\":%llu,\"status_5xx\":%llu,"
                "\"errors\":%llu,\"rps\":%.1f,\"records\":%llu,\"records_per_s\":%.1f,"
                "\"bytes_per_response\":%.1f,\"latency_us\":",
                name, (unsigned long long)s->done, (unsigned long long)s->ok,
                (unsigned long long)s->s4xx, (unsigned long long)s->s5xx,
                (unsigned long long)(s->errs + s->other), (double)s->done / secs,
                (unsigned long long)s->records, (double)s->records / secs,
                s->h.count ? (double)s->bytes / (double)s->h.count : 0.0);
  lat_json(o, &s->h);
  sj_buf_append_str(o, "}");
}

static void report_json(const load_t *L, const kstat_t *t) {
  const args_t *a = L->a;
  double secs = measured_seconds(L);
  sj_buf_t o = {0};
  sj_buf_printf(&o,
                "{\"url\":\"%s\",\"mode\":\"%s\",\"connections\":%u,\"streams\":%u,\"rate\":%.1f,"
                "\"dist\":\"%s\",\"seconds\":%.3f,\"backlog_at_stop\":%llu,"
                "\"answered_all\":%llu,",
                a->url, a->rate > 0 ? "open" : "closed", a->conns, a->streams, a->rate, a->dist,
                secs, (unsigned long long)backlog(L), (unsigned long long)L->answered_all);
  kind_json(&o, "total", t, secs);
  sj_buf_append_str(&o, ",\"kinds\":{");
  int first = 1;
  for (int k = 0; k < NKIND; k++) {
    if (!L->ks[k].done)
      continue;
    sj_buf_append_str(&o, first ? "" : ",");
    kind_json(&o, kind_names[k], &L->ks[k], secs);
    first = 0;
  }
  sj_buf_append_str(&o, "}");
  if (a->follow) {
    sj_buf_printf(&o,
                  ",\"lag_ms\":{\"entries\":%llu,\"skipped\":%llu,\"next_seq\":%llu,"
                  "\"acked_size\":%llu,\"caught_up\":%s,\"mean\":%.3f,\"p50\":%.3f,"
                  "\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
                  (unsigned long long)L->fw.lag.count, (unsigned long long)L->fw.skipped,
                  (unsigned long long)L->fw.next, (unsigned long long)L->acked_size,
                  L->fw.next >= L->acked_size ? "true" : "false",
                  L->fw.lag.count ? L->fw.lag.sum / (double)L->fw.lag.count / 1e6 : 0.0,
                  (double)h_quantile(&L->fw.lag, 0.5) / 1e6,
                  (double)h_quantile(&L->fw.lag, 0.9) / 1e6,
                  (double)h_quantile(&L->fw.lag, 0.99) / 1e6, (double)L->fw.lag.max / 1e6);
  }
  sj_buf_append_str(&o, "}\n");
  fwrite(o.p, 1, o.n, stdout);
  sj_buf_deinit(&o);
}

static void human_line(const char *name, const kstat_t *s, double secs) {
  const hist_t *h = &s->h;
  printf("%-10s %9llu req %10.0f req/s  p50 %8.0f  p90 %8.0f  p99 %8.0f  p99.9 %8.0f  max %8.0f us",
         name, (unsigned long long)s->done, (double)s->done / secs,
         (double)h_quantile(h, 0.5) / 1e3, (double)h_quantile(h, 0.9) / 1e3,
         (double)h_quantile(h, 0.99) / 1e3, (double)h_quantile(h, 0.999) / 1e3,
         (double)h->max / 1e3);
  if (s->records)
    printf("  %.0f records/s", (double)s->records / secs);
  if (s->done != s->ok)
    printf("  [%llu not 2xx: 4xx %llu 5xx %llu errors %llu]", (unsigned long long)(s->done - s->ok),
           (unsigned long long)s->s4xx, (unsigned long long)s->s5xx,
           (unsigned long long)(s->errs + s->other));
  printf("\n");
}

static void report_human(const load_t *L, const kstat_t *t) {
  const args_t *a = L->a;
  double secs = measured_seconds(L);
  printf("sjload %s: %s loop, %u connections x %u streams, %s keys, %.2f s measured\n", a->url,
         a->rate > 0 ? "open" : "closed", a->conns, a->streams, a->dist, secs);
  if (a->rate > 0)
    printf("target %.0f req/s, achieved %.0f req/s, %llu due but unsent at stop\n", a->rate,
           (double)t->done / secs, (unsigned long long)backlog(L));
  for (int k = 0; k < NKIND; k++)
    if (L->ks[k].done)
      human_line(kind_names[k], &L->ks[k], secs);
  human_line("total", t, secs);
  if (a->follow) {
    const hist_t *h = &L->fw.lag;
    printf("replication lag over %llu entries: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms%s\n",
           (unsigned long long)h->count, (double)h_quantile(h, 0.5) / 1e6,
           (double)h_quantile(h, 0.9) / 1e6, (double)h_quantile(h, 0.99) / 1e6,
           (double)h->max / 1e6, L->fw.next >= L->acked_size ? "" : " (follower did not catch up)");
  }
}

/* ================================================================================================
 * --gen: synthetic records
 * ============================================================================================== */

/* An 18-character unified social credit code: market regulator (9), enterprise (1), division
 * code, "MA" + 7 digits of n, and the GB 32100 check character (weights 3^i mod 31). */
static void make_uscc(uint32_t division, uint64_t n, char out[19]) {
  static const char alpha[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  memcpy(out, "91", 2);
  for (int i = 7; i >= 2; i--, division /= 10)
    out[i] = (char)('0' + division % 10);
  memcpy(out + 8, "MA", 2);
  for (int i = 16; i >= 10; i--, n /= 10)
    out[i] = (char)('0' + n % 10);
  unsigned sum = 0, w = 1;
  for (int i = 0; i < 17; i++) {
    sum += (unsigned)(strchr(alpha, out[i]) - alpha) * w;
    w = w * 3 % 31;
  }
  out[17] = alpha[(31 - sum % 31) % 31];
  out[18] = 0;
}

/* Ends the record that starts at b->p + from with a "note" that brings it to `want` bytes. */
static void pad_note(sj_buf_t *b, size_t from, size_t want, uint64_t i) {
  sj_buf_printf(b, ",\"note\":\"bench %llu ", (unsigned long long)i);
  while (b->n - from + 3 < want)
    sj_buf_append_u8(b, (uint8_t)('a' + (b->n * 7 + i) % 26));
  sj_buf_append_str(b, "\"}\n");
}

static void gen_credit(sj_buf_t *b, const args_t *a, uint64_t i, uint64_t subject,
                       const char *uscc) {
  size_t from = b->n;
  static const char *types[] = {"penalty", "commendation", "commitment", "penalty"};
  sj_buf_printf(b,
                "{\"kind\":\"credit\",\"type\":\"%s\",\"subject\":{\"type\":\"enterprise\","
                "\"id\":\"%s\",\"name\":\"样例食品有限公司 %llu\"},\"disclosure\":\"public\"",
                types[i % 4], uscc, (unsigned long long)subject);
  pad_note(b, from, a->gen_size, i);
}

static void gen_trace(sj_buf_t *b, const args_t *a, uint64_t i, const char *code) {
  size_t from = b->n;
  sj_buf_printf(b,
                "{\"kind\":\"trace\",\"event\":{\"type\":\"ObjectEvent\",\"eventTime\":"
                "\"2024-05-%02lluT%02llu:%02llu:00+08:00\",\"eventTimeZoneOffset\":\"+08:00\","
                "\"action\":\"OBSERVE\",\"epcList\":[\"%s\"]}",
                (unsigned long long)(i % 28 + 1), (unsigned long long)(i / 60 % 24),
                (unsigned long long)(i % 60), code);
  pad_note(b, from, a->gen_size, i);
}

static int write_buf(const char *dir, const char *name, const sj_buf_t *b) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  if (!f)
    return -errno;
  int rv = fwrite(b->p, 1, b->n, f) == b->n ? 0 : -EIO;
  return fclose(f) || rv ? -EIO : 0;
}

static int gen(args_t *a) {
  if (!a->gen_subjects)
    a->gen_subjects = a->gen_n / 10 ? a->gen_n / 10 : 1;
  uint32_t division = a->region / 1000 * 1000 + 115; /* a district of the region */
  uint64_t ntrace = a->gen_trace_every ? a->gen_n / a->gen_trace_every : 0;
  uint64_t ncodes = ntrace / 5 ? ntrace / 5 : 1; /* about five events per lot */
  sj_buf_t recs = {0}, subj = {0}, codes = {0};
  char id[19], code[96];
  mkdir(a->gen_out, 0755);
  for (uint64_t s = 0; s < a->gen_subjects; s++) {
    make_uscc(division, s, id);
    sj_buf_printf(&subj, "%s\n", id);
  }
  for (uint64_t c = 0; ntrace && c < ncodes; c++)
    sj_buf_printf(&codes, "urn:epc:id:sgtin:9506000.013435.R%uL%llu\n", (unsigned)a->region,
                  (unsigned long long)c);
  for (uint64_t i = 0, ncredit = 0; i < a->gen_n; i++) {
    if (a->gen_trace_every && i % a->gen_trace_every == a->gen_trace_every - 1) {
      snprintf(code, sizeof code, "urn:epc:id:sgtin:9506000.013435.R%uL%llu", (unsigned)a->region,
               (unsigned long long)(rng_next(&a->seed) % ncodes));
      gen_trace(&recs, a, i, code);
    } else {
      uint64_t subject = ncredit++ % a->gen_subjects; /* every enterprise as often */
      make_uscc(division, subject, id);
      gen_credit(&recs, a, i, subject, id);
    }
  }
  int rv = write_buf(a->gen_out, "records.ndjson", &recs);
  rv = rv ? rv : write_buf(a->gen_out, "subjects.txt", &subj);
  rv = rv ? rv : write_buf(a->gen_out, "trace.txt", &codes);
  if (rv == 0)
    printf("%llu records (%llu trace events), %llu subjects, %llu trace codes in %s\n",
           (unsigned long long)a->gen_n, (unsigned long long)ntrace,
           (unsigned long long)a->gen_subjects, (unsigned long long)(ntrace ? ncodes : 0),
           a->gen_out);
  sj_buf_deinit(&recs);
  sj_buf_deinit(&subj);
  sj_buf_deinit(&codes);
  return rv;
}

/* --self-test: the histogram's quantiles, the Zipf sampler and the generated codes, checked
 * against what they must be. Prints what failed; returns the number of failures. */
static int self_test(void) {
  static hist_t h;
  int bad = 0;
  for (uint64_t v = 1; v <= 1000000; v++) /* 1 us .. 1 s uniformly, in ns */
    h_add(&h, v * 1000);
  static const double qs[] = {0.5, 0.9, 0.99, 0.999};
  for (size_t i = 0; i < 4; i++) {
    double want = qs[i] * 1e9, got = (double)h_quantile(&h, qs[i]);
    if (got < want || got > want * (1.0 + 2.0 / H_HALF))
      bad++, fprintf(stderr, "self-test: p%g = %.0f ns, want %.0f (+0.8 %%)\n", qs[i] * 100, got,
                     want);
  }
  if (h.max != 1000000000ull || h_quantile(&h, 1.0) != h.max)
    bad++, fprintf(stderr, "self-test: max %llu\n", (unsigned long long)h.max);
  for (uint64_t v = 0; v < 5000000; v += 7) /* every value falls in a bucket that holds it */
    if (h_upper(h_index(v)) < v || (h_index(v) && h_upper(h_index(v) - 1) >= v))
      return fprintf(stderr, "self-test: bucket of %llu\n", (unsigned long long)v), bad + 1;
  keyset_t k = {0};
  uint64_t rng = 42, hits = 0, n = 200000;
  if (!(k.v = calloc(1000, sizeof *k.v)))
    return bad + 1;
  for (k.n = 0; k.n < 1000; k.n++) {
    char b[16];
    snprintf(b, sizeof b, "k%zu", k.n);
    if (!(k.v[k.n] = path_segment(b, strlen(b))))
      return bad + 1;
  }
  if (keys_zipf(&k, 1.1, 9))
    return bad + 1;
  const char *top = k.v[k.perm[0]];
  for (uint64_t i = 0; i < n; i++)
    hits += keys_pick(&k, &rng) == top;
  double hsum = 0, got = (double)hits / (double)n; /* rank 1's share: 1 / H(1000, 1.1) */
  for (int i = 1; i <= 1000; i++)
    hsum += pow(i, -1.1);
  double p1 = 1.0 / hsum;
  if (fabs(got - p1) > 0.01)
    bad++, fprintf(stderr, "self-test: zipf rank-1 share %.4f, want %.4f\n", got, p1);
  keys_free(&k);
  for (uint64_t i = 0; i < 100000; i += 97) {
    char id[19];
    make_uscc(310115, i, id);
    if (sj_uscc_check(id, 18) != SJ_ID_OK)
      return fprintf(stderr, "self-test: bad USCC %s\n", id), bad + 1;
  }
  if (!bad)
    printf("sjload self-test: histogram, zipf sampler and USCC generator OK\n");
  return bad;
}

/* --dump: N request URLs, one a line (POSTs are skipped). */
static int dump(load_t *L) {
  slot_t s = {.L = L};
  for (uint64_t i = 0; i < L->a->dump; i++) {
    const void *body;
    size_t blen;
    int k = pick_kind(L);
    if (k == K_POST)
      continue;
    build_request(L, &s, k, &body, &blen);
    printf("%s%s\n", L->a->url, s.path);
  }
  return fflush(stdout) ? 1 : 0;
}

/* ================================================================================================
 */

static void load_free(load_t *L) {
  keys_free(&L->keys);
  keys_free(&L->tkeys);
  sj_buf_deinit(&L->bodies.data);
  free(L->bodies.start);
  sj_buf_deinit(&L->fw.in);
  free(L->conns);
  free(L->slots);
  free(L->tl);
}

int main(int argc, char **argv) {
  static args_t a;
  static load_t L; /* big (histograms): not on the stack */
  if (argc == 2 && !strcmp(argv[1], "--self-test"))
    return self_test() ? 1 : 0;
  if (parse_args(argc, argv, &a))
    return usage();
  if (a.gen_n)
    return gen(&a) ? 1 : 0;
  sj_log_set_level(SJ_LOG_LEVEL_ERR);
  L.a = &a;
  L.rng = a.seed * 0x2545f4914f6cdd1dull + 1;
  for (int k = 0; k < NKIND; k++)
    L.cum[k] = (k ? L.cum[k - 1] : 0) + a.weights[k];
  if (L.cum[NKIND - 1] <= 0 && !a.follow)
    return fprintf(stderr, "sjload: empty --mix\n"), 2;
  int rv = load_inputs(&L, &a);
  if (rv)
    return 2;
  if (a.dump)
    return dump(&L);
  uv_loop_init(&L.loop);
  if ((rv = setup(&L)) || (a.follow && (rv = follow_start(&L)))) {
    fprintf(stderr, "sjload: %s\n", sj_strerror(rv));
    return 1;
  }
  start(&L);
  uv_run(&L.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&L.loop) && !a.quiet)
    fprintf(stderr, "sjload: loop still had handles at exit\n");
  kstat_t t;
  totals(&L, &t);
  if (a.json)
    report_json(&L, &t);
  else
    report_human(&L, &t);
  int bad = t.done != t.ok || L.sync_fail || (a.follow && (L.fw.next < L.acked_size));
  if (a.timeline && tl_write(&L, a.timeline))
    bad = 1;
  load_free(&L);
  return bad ? 1 : 0;
}
