/* node/disclosure.c — what a caller may see of an entry (docs/DISCLOSURE.md): whole bodies, the
 * public view of a record, and the audit trail of non-public reads. Every endpoint that shows a
 * record comes through here (api_entry_json -> api_disclose_record; the raw entries stream ->
 * api_body_visible).
 *
 * Roles: an authority sees every body; a subject token sees the bodies of the entries about the
 * subject it is bound to (PIPL art. 45) and the public view of the rest; a peer sees the bodies of
 * entries marked public (replication; the serving node applies this file again); the public and
 * submit tokens see the public view: entries marked public, not about a person, inside their
 * publication window (after the subject's corrections, repairs and revocations are folded in),
 * with personal members removed.
 *
 * Loop thread (the window cache below has a lock, so other threads would be safe too). The window
 * cache is the node's (n->folds), sized by fold-cache-entries (docs/CONFIG.md). */
#include "node/audit.h"
#include "node/credit.h"
#include "node/json.h"
#include "node/node_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t api_cache_expiry(const sj_node_t *n, uint64_t changes_ms, uint64_t loop_now_ms) {
  uint64_t wall = wall_ms();
  uint64_t ttl = n->cfg.cache_ttl > UINT64_MAX / 2000 ? UINT64_MAX / 2 : n->cfg.cache_ttl * 1000;
  uint64_t left = changes_ms > wall ? changes_ms - wall : 0;
  return loop_now_ms + (left < ttl ? left : ttl);
}

static int names_subject(const caller_t *c, const sj_entry_header_t *h) {
  for (uint16_t i = 0; i < h->nkeys; i++)
    if (h->keys[i].type == c->subject_key_type && h->keys[i].len == c->subject_key_len &&
        !memcmp(h->keys[i].p, c->subject_key, c->subject_key_len))
      return 1;
  return 0;
}

static int names_person(const sj_entry_header_t *h) {
  for (uint16_t i = 0; i < h->nkeys; i++)
    if (h->keys[i].type == SJ_KEY_PERSON)
      return 1;
  return 0;
}

/* The caller sees the whole body. */
static int full_access(const caller_t *c, const sj_entry_header_t *h) {
  return c->role == SJ_ROLE_AUTHORITY || (c->role == SJ_ROLE_SUBJECT && names_subject(c, h)) ||
         (c->role == SJ_ROLE_PEER && h->disclosure == SJ_DISCLOSE_PUBLIC);
}

/* Judging by the header alone, the public might see the body: marked public, not about a person,
 * and for credit records of a type the rules publish. */
static int header_public(const sj_entry_header_t *h) {
  if (h->disclosure != SJ_DISCLOSE_PUBLIC || names_person(h))
    return 0;
  return h->kind == SJ_KIND_TRACE || sj_credit_header_may_publish(h->type, h->type_len);
}

static int raw_public(sj_node_t *n, const sj_entry_header_t *h, const uint8_t *body, size_t len,
                      uint64_t now);

int api_body_visible(sj_node_t *n, const caller_t *c, const sj_entry_header_t *h,
                     const uint8_t *body, size_t len) {
  uint64_t now = wall_ms();
  if (full_access(c, h))
    return 1;
  return body && header_public(h) && raw_public(n, h, body, len, now);
}

/* ---- publication windows, per subject, cached
 * ------------------------------------------------------ Whether a credit entry is inside its
 * public window depends on the subject's other entries (a later repair ends it), so the subject's
 * entries are folded once and the result kept until an entry about the subject is committed, or
 * until the earliest instant at which any of its entries' state may change with time alone (the
 * fold's changes_ms: a window ending, a minor turning 18), or for at most cache-ttl. The lookup
 * response cache (node/cache.c) expires its answers by the same instants: one mechanism.
 *
 * The cache is direct-mapped, fold-cache-entries slots (a subject goes to slot hash % slots). 0
 * turns it off: every lookup then folds its subject, and one slot is left only to carry that fold
 * to the lookup's own records (and, outside lookups, a subject's fold to the next record about the
 * same subject). */

/* A body masked at read time may change when a minor named inside it turns 18; answers showing
 * one are kept at most this long rather than walking the body for those birthdays. */
#define MASK_RECHECK_MS 60000
#define PC_KEY_MAX 64
#define PC_SUBJECT_CAP 20000 /* entries folded per subject for the public window */

typedef struct {
  uint32_t region;
  uint64_t seq;
  uint64_t until;     /* the public view is shown while now < until */
  uint64_t raw_until; /* the raw body is the public view (nothing to mask) while now < raw_until */
  uint64_t changes;   /* the earliest instant after the fold at which until may change (the
                         fold's changes_ms); the caller's now when the entry was not folded */
} pub_t;

typedef struct {
  uint64_t gen;
  uint64_t built_ms;    /* wall clock of the fold */
  uint64_t valid_until; /* the fold holds while built_ms <= now < valid_until (and gen holds) */
  uint8_t key[PC_KEY_MAX];
  size_t keylen;
  pub_t *v; /* sorted by (region, seq) */
  size_t n;
} pslot_t;

struct fold_cache {
  pthread_mutex_t mu;
  int off;          /* fold-cache-entries 0: lookups fold every time */
  size_t nslots;    /* fold-cache-entries, 1 when off */
  uint64_t hits;    /* a current fold found (never counted when off) */
  uint64_t folds;   /* subjects folded */
  uint64_t entries; /* slots holding a fold */
  pslot_t slot[];
};

int api_folds_new(size_t entries, fold_cache_t **out) {
  size_t nslots = entries ? entries : 1;
  *out = NULL;
  if (nslots > (SIZE_MAX - sizeof(fold_cache_t)) / sizeof(pslot_t))
    return -EINVAL;
  fold_cache_t *fc = calloc(1, sizeof *fc + nslots * sizeof(pslot_t));
  if (!fc)
    return -ENOMEM;
  pthread_mutex_init(&fc->mu, NULL);
  fc->off = entries == 0;
  fc->nslots = nslots;
  *out = fc;
  return 0;
}

void api_folds_free(fold_cache_t *fc) {
  if (!fc)
    return;
  for (size_t i = 0; i < fc->nslots; i++)
    free(fc->slot[i].v);
  pthread_mutex_destroy(&fc->mu);
  free(fc);
}

void api_folds_stats(fold_cache_t *fc, uint64_t *hits, uint64_t *folds, uint64_t *entries) {
  pthread_mutex_lock(&fc->mu);
  *hits = fc->hits;
  *folds = fc->folds;
  *entries = fc->entries;
  pthread_mutex_unlock(&fc->mu);
}

/* Changes whenever an entry about this subject is committed, in any region (node/cache.c keeps
 * one generation per index key, bumped after each commit). */
static uint64_t subject_gen(sj_node_t *n, const uint8_t *key, size_t keylen) {
  return sj_cache_dep_gen(n->cache, key, keylen);
}

static int pub_cmp(const void *a, const void *b) {
  const pub_t *x = a, *y = b;
  if (x->region != y->region)
    return x->region < y->region ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A subject's entries for the fold: from their stored facts (no body read or parsed), or, for an
 * entry stored before facts were kept (or under other rules), from its parsed body as before. */
typedef struct {
  sj_entry_ref_t *refs;
  uint64_t *time; /* header times, from the index rows */
  size_t n, cap;
  int truncated;
  sj_credit_entry_t *e;
  sj_credit_fact_t *facts;
  json_t **rec;   /* bodies parsed for entries without usable facts */
  uint8_t *plain; /* the raw body is its public view */
  uint8_t *need;  /* no usable facts: read and parse the entry */
  size_t nneed;
  uint64_t now;
  uint8_t (*leaf)[SJ_HASH_LEN];   /* optional: the stored leaf hash of refs[i] ... */
  uint8_t *has_leaf;              /* ... where has_leaf[i] */
  const sj_store_entry_t *copies; /* optional, borrowed: the entry refs[i] as its index row's
                                     copy holds it (found = 0: no copy; read from the store) */
} fold_in_t;

static int fold_ref(void *ctx, uint32_t region, uint64_t seq, uint64_t time_ms) {
  fold_in_t *F = ctx;
  if (F->n == PC_SUBJECT_CAP) {
    F->truncated = 1;
    return 1;
  }
  if (F->n == F->cap) {
    size_t cap = F->cap ? F->cap * 2 : 32;
    sj_entry_ref_t *r = realloc(F->refs, cap * sizeof *r);
    uint64_t *t = r ? realloc(F->time, cap * sizeof *t) : NULL;
    if (r)
      F->refs = r;
    if (!t)
      return -ENOMEM;
    F->time = t;
    F->cap = cap;
  }
  F->refs[F->n] = (sj_entry_ref_t){region, seq};
  F->time[F->n++] = time_ms;
  return 0;
}

static int fold_fact(void *ctx, size_t i, const sj_store_entry_t *se) {
  fold_in_t *F = ctx;
  sj_credit_fact_t *f = &F->facts[i];
  F->e[i] = (sj_credit_entry_t){
      .region = F->refs[i].region, .seq = F->refs[i].seq, .time_ms = F->time[i]};
  if (!se->found || !se->leaf || !se->facts_n || sj_credit_fact_decode(se->facts, se->facts_n, f)) {
    F->need[i] = 1;
    F->nneed++;
    return 0;
  }
  if (F->leaf) {
    memcpy(F->leaf[i], se->leaf, SJ_HASH_LEN);
    F->has_leaf[i] = 1;
  }
  F->e[i].disclosure = f->disclosure;
  F->e[i].person = f->person;
  F->e[i].fact = f;
  F->plain[i] = f->has_rec && f->plain;
  return 0;
}

/* The old way, for one entry: its header and parsed body. */
static int fold_body(void *ctx, size_t i, const sj_store_entry_t *se) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  fold_in_t *F = ctx;
  sj_entry_header_t h;
  sj_credit_entry_t *e = &F->e[i];
  if (!F->need[i])
    return 0;
  if (!se->found)
    return SJ_ENOTFOUND;
  int rv = sj_entry_decode(se->header, se->hn, &h, keys, SJ_ENTRY_MAX_KEYS);
  if (rv)
    return rv;
  e->time_ms = h.time_ms;
  e->disclosure = h.disclosure;
  for (uint16_t k = 0; k < h.nkeys; k++)
    e->person |= h.keys[k].type == SJ_KEY_PERSON;
  if (se->has_body && h.kind == SJ_KIND_CREDIT)
    F->rec[i] = sj_json_loadb((const char *)se->body, se->bn, JSON_DECODE_INT_AS_REAL, NULL);
  e->rec = F->rec[i];
  if (e->rec) {
    F->plain[i] = !sj_credit_body_may_mask(se->body, se->bn);
    if (!F->plain[i]) { /* may: check for real on a copy */
      json_t *copy = json_deep_copy(e->rec);
      F->plain[i] = copy && sj_credit_mask_public(copy, F->now) == 0;
      json_decref(copy);
    }
  }
  return 0;
}

/* Calls fn(F, i, entry i) for every i (where want[i], when want is not NULL): from its copy when
 * the index row carried one, the others read with one sj_store_get_entries (what). */
typedef struct {
  fold_in_t *F;
  const size_t *map; /* refs[map[j]] is the j-th entry read */
  sj_store_entry_fn fn;
} fold_read_t;

static int fold_read_one(void *ctx, size_t j, const sj_store_entry_t *e) {
  const fold_read_t *x = ctx;
  return x->fn(x->F, x->map[j], e);
}

static int fold_read(sj_node_t *n, fold_in_t *F, const uint8_t *want, int what,
                     sj_store_entry_fn fn) {
  sj_entry_ref_t *refs = malloc((F->n ? F->n : 1) * sizeof *refs);
  size_t *map = malloc((F->n ? F->n : 1) * sizeof *map);
  size_t m = 0;
  int rv = refs && map ? 0 : -ENOMEM;
  for (size_t i = 0; rv == 0 && i < F->n; i++) {
    if (want && !want[i])
      continue;
    if (F->copies && F->copies[i].found) {
      rv = fn(F, i, &F->copies[i]);
    } else {
      refs[m] = F->refs[i];
      map[m++] = i;
    }
  }
  fold_read_t x = {F, map, fn};
  if (rv == 0 && m > 0)
    rv = sj_store_get_entries(n->store, refs, m, what, fold_read_one, &x);
  free(refs);
  free(map);
  return rv;
}

static void fold_in_free(fold_in_t *F) {
  for (size_t i = 0; F->rec && i < F->n; i++)
    json_decref(F->rec[i]);
  free(F->refs);
  free(F->time);
  free(F->e);
  free(F->facts);
  free(F->rec);
  free(F->plain);
  free(F->need);
}

/* Folds F's refs (every entry of the subject) into slot p. Frees F. */
static int pslot_fold(sj_node_t *n, pslot_t *p, const uint8_t *key, size_t keylen, uint64_t gen,
                      uint64_t now, fold_in_t F) {
  n->folds->folds++;
  sj_credit_state_t *st = NULL;
  pub_t *v = NULL;
  int rv = 0;
  size_t m = F.n ? F.n : 1;
  F.e = sj_zalloc(m, sizeof *F.e);
  F.facts = malloc(m * sizeof *F.facts);
  F.rec = sj_zalloc(m, sizeof *F.rec);
  F.plain = sj_zalloc(m, 1);
  F.need = sj_zalloc(m, 1);
  st = malloc(m * sizeof *st);
  v = malloc(m * sizeof *v);
  rv = F.e && F.facts && F.rec && F.plain && F.need && st && v ? 0 : -ENOMEM;
  if (rv == 0)
    rv = fold_read(n, &F, NULL, SJ_GET_FACTS, fold_fact);
  if (rv == 0 && F.nneed)
    rv = fold_read(n, &F, F.need, SJ_GET_ENTRY, fold_body);
  if (rv == 0)
    rv = sj_credit_fold(F.e, F.n, now, st);
  if (rv)
    goto done;
  uint64_t ttl = n->cfg.cache_ttl > UINT64_MAX / 2000 ? UINT64_MAX / 2 : n->cfg.cache_ttl * 1000;
  uint64_t valid = now + ttl;
  for (size_t i = 0; i < F.n; i++) {
    uint64_t u = st[i].public_until_ms;
    v[i] = (pub_t){F.e[i].region, F.e[i].seq, u, F.plain[i] ? u : 0, st[i].changes_ms};
    valid = st[i].changes_ms < valid ? st[i].changes_ms : valid;
  }
  qsort(v, F.n, sizeof *v, pub_cmp);
  if (!p->v)
    n->folds->entries++;
  free(p->v);
  *p = (pslot_t){
      .gen = gen, .built_ms = now, .valid_until = valid, .keylen = keylen, .v = v, .n = F.n};
  memcpy(p->key, key, keylen);
  v = NULL;
done:
  free(v);
  free(st);
  fold_in_free(&F);
  return rv < 0 ? rv : 0;
}

static int pslot_fill(sj_node_t *n, pslot_t *p, const uint8_t *key, size_t keylen, uint64_t gen,
                      uint64_t now) {
  fold_in_t F = {.now = now};
  int rv = sj_store_scan(n->store, SJ_INDEX_SUBJECTS, key, keylen, NULL, fold_ref, &F);
  if (rv < 0) {
    fold_in_free(&F);
    return rv;
  }
  return pslot_fold(n, p, key, keylen, gen, now, F);
}

/* The cache slot of a subject key, and whether it holds a current fold; the caller holds
 * n->folds->mu. */
static pslot_t *pslot_of(sj_node_t *n, const uint8_t *key, size_t keylen, uint64_t gen,
                         uint64_t now, int *fresh) {
  fold_cache_t *fc = n->folds;
  pslot_t *p = &fc->slot[fc->nslots == 1 ? 0 : XXH3_64bits(key, keylen) % fc->nslots];
  *fresh = p->v && p->gen == gen && p->built_ms <= now && now < p->valid_until &&
           p->keylen == keylen && !memcmp(p->key, key, keylen);
  if (*fresh && !fc->off)
    fc->hits++;
  return p;
}

int api_public_prime(sj_node_t *n, const uint8_t *key, size_t keylen, const sj_entry_ref_t *refs,
                     const uint64_t *time_ms, const sj_store_entry_t *copies, size_t nrefs,
                     uint8_t (*leaf)[SJ_HASH_LEN], uint8_t *has_leaf, uint64_t *changes_ms) {
  int fresh, rv = 0;
  uint64_t now = wall_ms();
  memset(has_leaf, 0, nrefs);
  if (keylen > PC_KEY_MAX || nrefs > PC_SUBJECT_CAP ||
      (key[0] != SJ_KEY_USCC && key[0] != SJ_KEY_OTHER_ID))
    return 0; /* folded when a record needs it, as always */
  uint64_t gen = subject_gen(n, key, keylen);
  pthread_mutex_lock(&n->folds->mu);
  pslot_t *p = pslot_of(n, key, keylen, gen, now, &fresh);
  if (!fresh || n->folds->off) { /* off: every lookup folds */
    fold_in_t F = {
        .now = now, .n = nrefs, .cap = nrefs, .leaf = leaf, .has_leaf = has_leaf, .copies = copies};
    F.refs = malloc((nrefs ? nrefs : 1) * sizeof *F.refs);
    F.time = malloc((nrefs ? nrefs : 1) * sizeof *F.time);
    if (F.refs && F.time) {
      memcpy(F.refs, refs, nrefs * sizeof *refs);
      memcpy(F.time, time_ms, nrefs * sizeof *time_ms);
      rv = pslot_fold(n, p, key, keylen, gen, now, F);
    } else {
      fold_in_free(&F);
      rv = -ENOMEM;
    }
  }
  if (rv == 0 && changes_ms && p->valid_until < *changes_ms)
    *changes_ms = p->valid_until;
  pthread_mutex_unlock(&n->folds->mu);
  return rv;
}

/* The public window of a credit entry: *out gets {until, raw_until} (both 0 when not found). */
static void public_window(sj_node_t *n, const sj_entry_header_t *h, uint64_t now, pub_t *out) {
  const sj_index_key_t *k = NULL;
  *out = (pub_t){h->region, h->seq, 0, 0, now}; /* not folded: hidden, and not to be kept */
  for (uint16_t i = 0; i < h->nkeys && !k; i++)
    if (h->keys[i].type == SJ_KEY_USCC || h->keys[i].type == SJ_KEY_OTHER_ID)
      k = &h->keys[i];
  uint8_t key[1 + SJ_ENTRY_MAX_KEY_LEN];
  if (!k)
    return;
  size_t keylen = sj_store_index_key(k->type, k->p, k->len, key);
  if (keylen > PC_KEY_MAX)
    return;
  uint64_t gen = subject_gen(n, key, keylen);
  int fresh;
  pthread_mutex_lock(&n->folds->mu);
  pslot_t *p = pslot_of(n, key, keylen, gen, now, &fresh);
  if (fresh || pslot_fill(n, p, key, keylen, gen, now) == 0) {
    const pub_t *x = bsearch(out, p->v, p->n, sizeof *p->v, pub_cmp);
    if (x)
      *out = *x;
  }
  pthread_mutex_unlock(&n->folds->mu);
}

/* ---- the public view
 * -------------------------------------------------------------------------------- */

/* Whether the public may see the record; *masked receives the re-serialised public view when
 * personal members were removed (owned, free()), NULL when the body is shown as it is. *changes
 * is lowered to the earliest instant after now at which the answer may change with time alone
 * (every comparison with now below lowers it). */
static int public_view(sj_node_t *n, const sj_entry_header_t *h, const uint8_t *body, size_t len,
                       uint64_t now, char **masked, uint64_t *changes) {
  *masked = NULL;
  if (h->disclosure != SJ_DISCLOSE_PUBLIC || names_person(h))
    return 0;
  if (h->kind == SJ_KIND_CREDIT) {
    pub_t w;
    public_window(n, h, now, &w);
    if (w.changes < *changes)
      *changes = w.changes;
    if (now >= w.until)
      return 0;
    if (now < w.raw_until)
      return 1; /* the fold found this body to be its own public view (nothing to mask) */
  }
  if (!sj_credit_body_may_mask(body, len))
    return 1;
  /* Integers as integers for a faithful re-serialisation; a huge one only parses as a real. */
  json_t *rec = sj_json_loadb((const char *)body, len, 0, NULL);
  if (!rec)
    rec = sj_json_loadb((const char *)body, len, JSON_DECODE_INT_AS_REAL, NULL);
  int removed = rec ? sj_credit_mask_public(rec, now) : -1;
  if (rec && removed != 0 && now + MASK_RECHECK_MS < *changes)
    *changes = now + MASK_RECHECK_MS; /* a minor inside may turn 18: see MASK_RECHECK_MS */
  if (removed > 0)
    *masked = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(rec);
  return removed == 0 || (removed > 0 && *masked);
}

/* Whether the raw body is exactly what the public may see: inside its publication window (credit
 * entries: from the subject's folded window, cached) and with nothing to mask. */
static int raw_public(sj_node_t *n, const sj_entry_header_t *h, const uint8_t *body, size_t len,
                      uint64_t now) {
  char *masked = NULL;
  uint64_t changes = SJ_CREDIT_FOREVER;
  int ok = public_view(n, h, body, len, now, &masked, &changes) && !masked;
  free(masked);
  return ok;
}

int api_disclose_record(sj_node_t *n, const caller_t *c, const sj_entry_header_t *h,
                        const uint8_t *body, size_t len, sj_buf_t *out) {
  uint64_t now = wall_ms(), changes = SJ_CREDIT_FOREVER;
  char *masked = NULL;
  int pub = public_view(n, h, body, len, now, &masked, &changes);
  if (c->changes_ms && changes < *c->changes_ms)
    *c->changes_ms = changes;
  if (full_access(c, h)) {
    /* The caller sees more than the public would: audited, unless it is the subject itself. */
    int own = c->role == SJ_ROLE_SUBJECT && names_subject(c, h);
    if ((!pub || masked) && !own)
      api_audit_read(n, c, h);
    free(masked);
    masked = NULL;
  } else if (!pub) {
    return 1;
  }
  sj_buf_append_str(out, ",\"record\":"); /* the body is JSON validated at submission */
  if (masked)
    sj_buf_append_str(out, masked);
  else
    sj_buf_append(out, body, len);
  free(masked);
  return 0;
}
