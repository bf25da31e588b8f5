/* node/replicate.c — followers: this node's verified copies of the other regions' logs.
 *
 * For each configured peer region a follower, driven by the loop:
 *   1. fetches the region's latest checkpoint (from the region's own node or any relay) and checks
 *      its signature with the pinned verifier key;
 *   2. catches up in chunks: the entries are added to a store batch (which checks sequence numbers,
 *      chain links and body hashes), then a consistency proof from the batch's tree to the signed
 *      tree is verified before the chunk is committed — the last chunk's root must equal the
 *      checkpoint's, and the checkpoint is stored in that batch;
 *   3. then follows: one long-lived stream (node/follow.c) pushes entries and the checkpoints that
 *      cover them; a batch commits only when a signed checkpoint's root matches it;
 *   4. cosigns what it verified (C2SP cosignature/v1, at most once a second per region) and sends
 *      the cosignature to the origin.
 * Nothing unverified is stored or served. A relay that lies gets a failure report and the follower
 * moves to the next URL; two validly signed checkpoints that cannot both be honest are proof of
 * equivocation: stored durably, listed by GET /v1/alerts, and the region is no longer followed.
 *
 * Replicated batches are committed without fsync on the loop: an unsynced tail lost in a crash is
 * fetched again (the origin holds the durable copy). Loop thread only. */
#include "node/node_int.h"

#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK 10000                 /* entries per catch-up request, at most */
/* Entries a follow stream may push without a checkpoint that covers them: they wait in a store
 * batch, in memory. An honest origin sends its checkpoint after each group commit (max-group,
 * 20,000 by default); a stream beyond these bounds is left for catch-up, which commits chunk by
 * chunk — so a relay that streams entries and never a checkpoint cannot fill our memory. */
#define FOLLOW_MAX_PENDING 40000
#define FOLLOW_MAX_PENDING_BYTES (256u << 20)
#define MAX_BODY (16u << 20)        /* largest body accepted from a peer */
#define MAX_NOTE 65536              /* largest checkpoint note accepted from a peer */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define COSIGN_EVERY_MS 1000
#define RECENT_FAILURES 32

typedef enum { ST_IDLE, ST_CHECKPOINT, ST_CATCHUP, ST_FOLLOW, ST_EQUIVOCATED } fstate_t;
static const char *state_names[] = {"idle", "checking", "catching_up", "following", "equivocated"};

typedef struct {
  char url[256];
  sj_client_t *client;
} peer_conn_t;

typedef struct {
  struct repl *r;
  const sj_peer_conf_t *conf;
  sj_verifier_t *v;      /* the region's pinned checkpoint key (type 0x01) */
  sj_verifier_t *v_cos;  /* the same key as a cosignature/v1 verifier (its cosignatures to us) */
  sj_verifier_t *v_next; /* the region's next key, learned from a rotation signed by the pinned one */
  sj_verifier_t *v_next_cos;
  sj_call_t *rot_call;   /* a key-rotation fetch in flight */
  char auth[320];        /* "Bearer <peer token>", or "" */
  size_t url_idx;
  fstate_t st;
  sj_call_t *call;       /* the request in flight, if any */
  uv_timer_t timer;
  uint64_t backoff_ms;
  sj_buf_t note;         /* the checkpoint being caught up to */
  size_t note_text_len;
  sj_checkpoint_t cp;
  sj_store_batch_t *batch;
  uint64_t batch_entries;      /* entries in the batch */
  uint64_t batch_bytes;        /* their headers' and bodies' bytes */
  uint64_t batch_last_time_ms; /* origin time of the newest entry in the batch */
  uint64_t chunk;        /* entries asked per catch-up request: CHUNK, halved while an answer
                            exceeds what the client collects (64 MiB), back to CHUNK on follow */
  sj_buf_t rx;           /* follow stream bytes not yet parsed */
  uint64_t *deps;        /* cache dependencies of the open batch's entries (node/cache.h) */
  size_t ndeps, capdeps;
  int deps_lost;         /* a dependency could not be recorded: drop the whole cache on commit */
  size_t rx_off;
  /* status */
  uint64_t origin_size, last_checkpoint_ms, lag_ms, last_cosign_ms, cosigned_size, failures;
  sj_call_t *side_call;  /* a checkpoint poll while the follow stream is open */
  uint64_t size_at_poll; /* local size at the previous poll: no progress means a stuck stream */
  char last_error[200];
} follower_t;

typedef struct {
  uint64_t when_ms;
  uint32_t region;
  char url[256];
  char what[200];
} failure_t;

struct repl {
  sj_node_t *n;
  follower_t f[SJ_MAX_PEERS];
  size_t nf;
  peer_conn_t conns[SJ_MAX_PEERS * SJ_MAX_PEER_URLS];
  size_t nconns;
  failure_t recent[RECENT_FAILURES];
  size_t nrecent;
  uint64_t equivocations;
  sj_verifier_t *own_cos; /* this node's own cosignature key, to keep its own lines too */
  int stopping;
  int closing_handles;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static sj_node_t *node_of(follower_t *f) {
  return f->r->n;
}

static const char *cur_url(follower_t *f) {
  return f->conf->urls[f->url_idx];
}

static sj_client_t *client_for(struct repl *r, const char *url) {
  for (size_t i = 0; i < r->nconns; i++)
    if (!strcmp(r->conns[i].url, url))
      return r->conns[i].client;
  return NULL;
}

/* ---- failures, evidence ------------------------------------------------------------------------- */

static void poll_later(follower_t *f, uint64_t ms);

static void abort_batch(follower_t *f) {
  sj_store_batch_abort(f->batch);
  f->batch = NULL;
  f->batch_entries = f->batch_bytes = 0;
  f->ndeps = 0;
  f->deps_lost = 0;
}

/* Remembers the index keys of an entry added to the batch; they invalidate cached lookups once
 * the batch is committed (not before: a lookup in between would cache the old answer anew). */
static void note_deps(follower_t *f, const sj_entry_header_t *h) {
  uint8_t key[1 + SJ_ENTRY_MAX_KEY_LEN];
  for (uint16_t i = 0; i < h->nkeys; i++) {
    if (f->ndeps == f->capdeps) {
      size_t cap = f->capdeps ? 2 * f->capdeps : 256;
      uint64_t *d = realloc(f->deps, cap * sizeof *d);
      if (!d) {
        f->deps_lost = 1;
        return;
      }
      f->deps = d;
      f->capdeps = cap;
    }
    size_t len = sj_store_index_key(h->keys[i].type, h->keys[i].p, h->keys[i].len, key);
    f->deps[f->ndeps++] = sj_cache_dep_hash(key, len);
  }
}

static void committed(follower_t *f) {
  sj_node_t *n = node_of(f);
  for (size_t i = 0; i < f->ndeps; i++)
    sj_cache_invalidate_hash(n->cache, f->deps[i]);
  if (f->deps_lost)
    sj_cache_invalidate_all(n->cache);
  f->ndeps = 0;
  f->deps_lost = 0;
  api_follow_notify(n, f->conf->region);
}

/* Something did not verify or could not be fetched: report it, try the next URL with backoff.
 * Never taken as proof of anything. */
__attribute__((format(printf, 2, 3))) static void fail(follower_t *f, const char *fmt, ...) {
  struct repl *r = f->r;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->last_error, sizeof f->last_error, fmt, ap);
  va_end(ap);
  SJ_LOG_WARN("repl", "%06u via %s: %s", f->conf->region, cur_url(f), f->last_error);
  failure_t *x = &r->recent[r->nrecent++ % RECENT_FAILURES];
  x->when_ms = now_ms();
  x->region = f->conf->region;
  snprintf(x->url, sizeof x->url, "%s", cur_url(f));
  snprintf(x->what, sizeof x->what, "%s", f->last_error);
  f->failures++;
  abort_batch(f);
  if (f->call) {
    sj_call_t *c = f->call;
    f->call = NULL;
    sj_call_cancel(c);
  }
  f->url_idx = (f->url_idx + 1) % f->conf->nurls;
  f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : BACKOFF_MIN_MS;
  if (f->backoff_ms > BACKOFF_MAX_MS)
    f->backoff_ms = BACKOFF_MAX_MS;
  /* Every URL was tried once: wait the backoff; otherwise move on at once. */
  poll_later(f, f->url_idx == 0 ? f->backoff_ms : 0);
}

static void evidence_key(uint32_t region, char out[32]) {
  snprintf(out, 32, "alert/%06u", region);
}

/* Two checkpoints, both validly signed by the origin, that cannot both be honest. */
static void equivocation(follower_t *f, const sj_buf_t *a, const char *b, size_t bn,
                         const char *why) {
  sj_node_t *n = node_of(f);
  sj_buf_t ev = {0};
  char key[32];
  sj_buf_printf(&ev, "{\"region\":\"%06u\",\"kind\":\"equivocation\",\"detected_ms\":%llu,\"why\":",
                f->conf->region, (unsigned long long)now_ms());
  json_str(&ev, why, strlen(why));
  sj_buf_append_str(&ev, ",\"url\":");
  json_str(&ev, cur_url(f), strlen(cur_url(f)));
  sj_buf_append_str(&ev, ",\"checkpoint_a\":");
  json_str(&ev, (const char *)a->p, a->n);
  sj_buf_append_str(&ev, ",\"checkpoint_b\":");
  json_str(&ev, b, bn);
  sj_buf_append_str(&ev, "}");
  evidence_key(f->conf->region, key);
  int rv = sj_store_meta_put(n->store, key, ev.p, ev.n);
  SJ_LOG_ERR("repl", "%06u EQUIVOCATION (%s): evidence %s; no longer following this region",
             f->conf->region, why, rv ? "NOT STORED" : "stored");
  sj_buf_deinit(&ev);
  f->r->equivocations++;
  f->st = ST_EQUIVOCATED;
  abort_batch(f);
  uv_timer_stop(&f->timer);
}

/* ---- requests ----------------------------------------------------------------------------------- */

static int request(follower_t *f, const char *url, const char *method, const char *path,
                   const void *body, size_t len, uint64_t timeout_ms, const sj_call_cbs_t *cbs,
                   sj_call_t **call) {
  sj_header_t h[2];
  size_t nh = 0;
  if (f->auth[0])
    h[nh++] = (sj_header_t){"authorization", f->auth};
  if (body)
    h[nh++] = (sj_header_t){"content-type", "text/plain"};
  sj_call_req_t rq = {method, path, h, nh, body, len, timeout_ms};
  return sj_client_request(client_for(f->r, url), &rq, cbs, call);
}

static void start_follow(follower_t *f);
static void fetch_chunk(follower_t *f);
static void on_timer(uv_timer_t *t);

/* ---- cosigning ---------------------------------------------------------------------------------- */

static void on_cosign_done(int err, const sj_resp_t *resp, void *arg) {
  follower_t *f = arg;
  if (err || resp->status != 200)
    SJ_LOG_WARN("repl", "%06u: cosignature not taken by %s: %s (status %d)", f->conf->region,
                f->conf->urls[0], err ? sj_strerror(err) : "refused", resp->status);
}

/* Cosigns the checkpoint we hold for the region (if new and not too soon) and sends it to the
 * origin, the first URL. */
static void cosign(follower_t *f, int force) {
  sj_node_t *n = node_of(f);
  sj_buf_t note = {0}, line = {0};
  uint64_t size = 0, now = now_ms();
  size_t text_len, sigs;
  if (!force && now - f->last_cosign_ms < COSIGN_EVERY_MS)
    return;
  if (sj_store_checkpoint_latest(n->store, f->conf->region, &size, &note) ||
      size == f->cosigned_size || sj_note_split((char *)note.p, note.n, &text_len, &sigs) ||
      sj_cosign(n->signer, (char *)note.p, text_len, now / 1000, &line)) {
    sj_buf_deinit(&note);
    return;
  }
  char path[96];
  snprintf(path, sizeof path, "/v1/logs/%06u/cosignatures?size=%llu", f->conf->region,
           (unsigned long long)size);
  sj_call_cbs_t cbs = {NULL, NULL, on_cosign_done, f};
  if (request(f, f->conf->urls[0], "POST", path, line.p, line.n, 10000, &cbs, NULL) == 0) {
    f->last_cosign_ms = now;
    f->cosigned_size = size;
  }
  sj_buf_deinit(&note);
  sj_buf_deinit(&line);
}

/* ---- committing --------------------------------------------------------------------------------- */

/* The batch reached the signed checkpoint f->cp: store it with the entries, commit, tell the
 * relays' followers, cosign. Returns 0, or nonzero after fail(). */
static int commit_at_checkpoint(follower_t *f, const char *note, size_t note_len) {
  uint64_t size;
  uint8_t root[SJ_HASH_LEN], last[SJ_HASH_LEN];
  sj_store_batch_head(f->batch, &size, root, last);
  if (size != f->cp.size || memcmp(root, f->cp.root, SJ_HASH_LEN)) {
    fail(f, "entries up to %llu do not give the signed root", (unsigned long long)f->cp.size);
    return -1;
  }
  int rv = sj_store_batch_set_checkpoint(f->batch, note, note_len);
  if (rv == 0)
    rv = sj_store_batch_commit(f->batch, 0);
  else
    sj_store_batch_abort(f->batch);
  f->batch = NULL;
  f->batch_entries = f->batch_bytes = 0;
  if (rv) {
    fail(f, "cannot store: %s (%s)", sj_strerror(rv), sj_store_last_error());
    return -1;
  }
  uint64_t now = now_ms();
  f->lag_ms = now > f->batch_last_time_ms ? now - f->batch_last_time_ms : 0;
  f->last_checkpoint_ms = now;
  f->backoff_ms = 0;
  f->last_error[0] = 0;
  committed(f);
  cosign(f, 0);
  return 0;
}

/* Adds one frame's entry to the open batch (opening one if needed). */
static int add_entry(follower_t *f, sj_bytes_t hdr, sj_bytes_t body, int has_body) {
  static _Thread_local sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_entry_header_t h;
  int rv = f->batch ? 0 : sj_store_batch_begin(node_of(f)->store, f->conf->region, &f->batch);
  if (rv == 0)
    rv = sj_store_batch_add(f->batch, hdr.p, hdr.n, has_body ? body.p : NULL, body.n, NULL);
  if (rv == 0) {
    f->batch_entries++;
    f->batch_bytes += hdr.n + (has_body ? body.n : 0);
  }
  if (rv == 0 && sj_entry_decode(hdr.p, hdr.n, &h, keys, SJ_ENTRY_MAX_KEYS) == 0) {
    f->batch_last_time_ms = h.time_ms;
    note_deps(f, &h);
  }
  return rv;
}

/* ---- pinned keys and their rotation ------------------------------------------------------------- */

/* Verifies a checkpoint note with the region's pinned keys (the configured one and, after a
 * rotation it signed, the next). Returns 0 and the parsed checkpoint, or SJ_EVERIFY. */
static int verify_cp(follower_t *f, const char *note, size_t len, sj_checkpoint_t *cp) {
  const sj_verifier_t *vs[2] = {f->v, f->v_next};
  size_t tl = 0;
  if (len > MAX_NOTE || sj_note_verify(note, len, vs, f->v_next ? 2 : 1, &tl, NULL) ||
      sj_checkpoint_parse(note, tl, cp) || strcmp(cp->origin, sj_verifier_name(f->v)))
    return SJ_EVERIFY;
  return 0;
}

static void rotation_key(uint32_t region, char out[32]) {
  snprintf(out, 32, "rotation/%06u", region);
}

/* A rotation note: "sanjiao key-rotation/v1\n<origin>\n<next vkey>\n", signed by the pinned key
 * and by the next key. Adopts the next key when both signatures verify. */
static int adopt_rotation(follower_t *f, const char *note, size_t len) {
  const sj_verifier_t *old[1] = {f->v};
  size_t tl = 0;
  char text[1024];
  if (len > MAX_NOTE || sj_note_verify(note, len, old, 1, &tl, NULL) || tl >= sizeof text)
    return SJ_EVERIFY;
  memcpy(text, note, tl);
  text[tl] = 0;
  char *l1 = text, *l2 = strchr(l1, '\n'), *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
  if (!l2 || !l3 || strncmp(l1, "sanjiao key-rotation/v1\n", 24))
    return SJ_EFORMAT;
  *l2++ = 0;
  *l3++ = 0;
  char *end = strchr(l3, '\n');
  if (!end || strcmp(l2, sj_verifier_name(f->v)))
    return SJ_EFORMAT;
  sj_verifier_t *nv = NULL, *ncos = NULL;
  if (sj_verifier_parse(l3, (size_t)(end - l3), &nv) || strcmp(sj_verifier_name(nv), l2) ||
      sj_verifier_type(nv) != SJ_KEY_ED25519) {
    sj_verifier_free(nv);
    return SJ_EFORMAT;
  }
  const sj_verifier_t *both[1] = {nv};
  if (sj_note_verify(note, len, both, 1, NULL, NULL) ||
      sj_verifier_derive(nv, SJ_KEY_COSIGNATURE_V1, &ncos)) { /* the next key must sign too */
    sj_verifier_free(nv);
    return SJ_EVERIFY;
  }
  if (f->v_next && sj_verifier_key_id(f->v_next) == sj_verifier_key_id(nv)) {
    sj_verifier_free(nv);
    sj_verifier_free(ncos);
    return 0;
  }
  sj_verifier_free(f->v_next);
  sj_verifier_free(f->v_next_cos);
  f->v_next = nv;
  f->v_next_cos = ncos;
  char key[32];
  rotation_key(f->conf->region, key);
  sj_store_meta_put(node_of(f)->store, key, note, len);
  SJ_LOG_INFO("repl", "%06u: key rotation verified; now also trusting %s+%08x", f->conf->region,
              sj_verifier_name(nv), sj_verifier_key_id(nv));
  return 0;
}

static void on_rotation(int err, const sj_resp_t *resp, void *arg) {
  follower_t *f = arg;
  f->rot_call = NULL;
  if (f->r->stopping || err || resp->status != 200)
    return; /* 404: no rotation announced */
  int rv = adopt_rotation(f, (const char *)resp->body, resp->body_len);
  if (rv)
    SJ_LOG_WARN("repl", "%06u via %s: key rotation refused: %s", f->conf->region, cur_url(f),
                sj_strerror(rv));
}

static void check_rotation(follower_t *f) {
  char path[64];
  if (f->rot_call)
    return;
  snprintf(path, sizeof path, "/v1/logs/%06u/key-rotation", f->conf->region);
  sj_call_cbs_t cbs = {NULL, NULL, on_rotation, f};
  request(f, cur_url(f), "GET", path, NULL, 0, 10000, &cbs, &f->rot_call);
}

/* ---- cosignatures on replicas -------------------------------------------------------------------- */

/* Whether line is a cosignature over text by a witness this node knows (a peer region, or itself). */
static int known_cosig(struct repl *r, const char *text, size_t tl, const char *line, size_t len) {
  if (r->own_cos && sj_cosig_verify(r->own_cos, text, tl, line, len, NULL) == 0)
    return 1;
  for (size_t i = 0; i < r->nf; i++) {
    follower_t *w = &r->f[i];
    if (sj_cosig_verify(w->v_cos, text, tl, line, len, NULL) == 0 ||
        (w->v_next_cos && sj_cosig_verify(w->v_next_cos, text, tl, line, len, NULL) == 0))
      return 1;
  }
  return 0;
}

/* Whether the signature lines sigs[0..n) hold exactly line (l bytes, "\n" included). */
static int has_line(const uint8_t *sigs, size_t n, const char *line, size_t l) {
  for (size_t i = 0; i < n;) {
    const uint8_t *e = memchr(sigs + i, '\n', n - i);
    size_t k = e ? (size_t)(e - (sigs + i)) + 1 : n - i;
    if (k == l && !memcmp(sigs + i, line, l))
      return 1;
    i += k;
  }
  return 0;
}

/* The origin gathers cosignatures after a replica stored the checkpoint: adds to the stored note
 * of that size every line of the origin's newer copy that verifies as a known witness's
 * cosignature (never anything unverified), so replicas serve checkpoints as cosigned as the
 * origin's. */
static void merge_cosignatures(follower_t *f, const char *note, size_t len, uint64_t size) {
  sj_node_t *n = node_of(f);
  sj_buf_t old = {0}, out = {0};
  size_t ntl, nso, otl, oso;
  if (sj_store_checkpoint_get(n->store, f->conf->region, size, &old) ||
      sj_note_split(note, len, &ntl, &nso) || sj_note_split((char *)old.p, old.n, &otl, &oso) ||
      ntl != otl || memcmp(note, old.p, ntl)) {
    sj_buf_deinit(&old);
    return;
  }
  sj_buf_append(&out, old.p, old.n);
  int added = 0;
  for (size_t i = nso; i < len;) {
    const char *e = memchr(note + i, '\n', len - i);
    size_t l = e ? (size_t)(e - (note + i)) + 1 : len - i;
    if (!has_line(old.p + oso, old.n - oso, note + i, l) &&
        known_cosig(f->r, note, ntl, note + i, l)) {
      sj_buf_append(&out, note + i, l);
      added++;
    }
    i += l;
  }
  if (added && sj_store_checkpoint_put(n->store, f->conf->region, size, (char *)out.p, out.n) == 0)
    SJ_LOG_DEBUG("repl", "%06u: %d cosignature(s) added to the checkpoint of %llu", f->conf->region,
                 added, (unsigned long long)size);
  sj_buf_deinit(&old);
  sj_buf_deinit(&out);
}

/* ---- 1. the checkpoint -------------------------------------------------------------------------- */

/* A stored checkpoint of the same size with another root, both signed: equivocation. */
static int check_same_size(follower_t *f, const char *note, size_t len) {
  sj_node_t *n = node_of(f);
  sj_buf_t old = {0};
  sj_checkpoint_t oc;
  size_t tl, so;
  int rv = 0;
  if (sj_store_checkpoint_get(n->store, f->conf->region, f->cp.size, &old) == 0 &&
      sj_note_split((char *)old.p, old.n, &tl, &so) == 0 &&
      sj_checkpoint_parse((char *)old.p, tl, &oc) == 0 && memcmp(oc.root, f->cp.root, 32)) {
    equivocation(f, &old, note, len, "two signed checkpoints of the same size, different roots");
    rv = -1;
  }
  sj_buf_deinit(&old);
  return rv;
}

static void on_checkpoint(int err, const sj_resp_t *resp, void *arg) {
  follower_t *f = arg;
  sj_node_t *n = node_of(f);
  f->call = NULL;
  if (f->r->stopping)
    return;
  if (!err && resp->status == 404 && f->url_idx == 0) {
    /* The origin has no entries yet: follow from zero, the first commit will be pushed. */
    start_follow(f);
    return;
  }
  if (err || resp->status != 200) {
    fail(f, "checkpoint: %s", err ? sj_strerror(err) : resp->status == 404 ? "none yet" : "refused");
    return;
  }
  sj_checkpoint_t cp;
  size_t tl = 0, so = 0;
  if (verify_cp(f, (const char *)resp->body, resp->body_len, &cp) ||
      sj_note_split((const char *)resp->body, resp->body_len, &tl, &so)) {
    check_rotation(f); /* perhaps signed by a next key we have not learned yet */
    fail(f, "checkpoint not signed by the pinned key of %06u", f->conf->region);
    return;
  }
  f->cp = cp;
  f->origin_size = cp.size > f->origin_size ? cp.size : f->origin_size;
  sj_buf_reset(&f->note);
  sj_buf_append(&f->note, resp->body, resp->body_len);
  f->note_text_len = tl;
  if (check_same_size(f, (const char *)resp->body, resp->body_len))
    return;
  uint64_t local;
  uint8_t root[SJ_HASH_LEN];
  sj_store_head(n->store, f->conf->region, &local, root, NULL);
  if (cp.size < local) { /* a stale relay: nothing to do with it */
    start_follow(f);
    return;
  }
  if (cp.size == local) {
    if (memcmp(root, cp.root, SJ_HASH_LEN)) {
      fail(f, "signed checkpoint at %llu disagrees with the verified tree",
           (unsigned long long)local);
      return;
    }
    merge_cosignatures(f, (const char *)resp->body, resp->body_len, cp.size);
    cosign(f, 1);
    start_follow(f);
    return;
  }
  f->st = ST_CATCHUP;
  fetch_chunk(f);
}

/* A poll while following: watch for equivocation, cosign the newest checkpoint, and restart a
 * stream that made no progress for a whole poll period while the origin moved on. */
static void on_side_checkpoint(int err, const sj_resp_t *resp, void *arg) {
  follower_t *f = arg;
  f->side_call = NULL;
  if (f->r->stopping || f->st != ST_FOLLOW)
    return;
  if (err && f->url_idx == 0 && f->call) {
    /* The origin does not answer while its follow stream looks open: a half-open connection
     * (a cut link drops packets without a reset). Move on to the relays. */
    fail(f, "origin did not answer a checkpoint poll (%s): following through a relay",
         sj_strerror(err));
    return;
  }
  if (err || resp->status != 200)
    return;
  sj_checkpoint_t cp;
  check_rotation(f);
  if (verify_cp(f, (const char *)resp->body, resp->body_len, &cp))
    return; /* the stream path reports bad checkpoints; this is only a watch */
  if (f->url_idx != 0 && f->call) {
    /* Following a relay while the origin answers: go back to the origin, which is never behind
     * (relays may all be waiting for someone to follow the origin). */
    sj_call_t *c = f->call;
    f->call = NULL;
    f->st = ST_IDLE;
    f->url_idx = 0;
    sj_call_cancel(c);
    poll_later(f, 0);
    return;
  }
  sj_checkpoint_t saved = f->cp;
  f->cp = cp;
  int eq = check_same_size(f, (const char *)resp->body, resp->body_len);
  f->cp = saved;
  if (eq)
    return;
  uint64_t local;
  sj_store_head(node_of(f)->store, f->conf->region, &local, NULL, NULL);
  f->origin_size = cp.size > f->origin_size ? cp.size : f->origin_size;
  if (cp.size == local) {
    merge_cosignatures(f, (const char *)resp->body, resp->body_len, cp.size);
    cosign(f, 1);
  }
  if (cp.size > local && local == f->size_at_poll && f->call) {
    sj_call_t *c = f->call;
    f->call = NULL;
    f->st = ST_IDLE;
    sj_call_cancel(c);
    poll_later(f, 0);
    return;
  }
  f->size_at_poll = local;
}

static void poll_now(follower_t *f) {
  char path[64];
  if (f->st == ST_EQUIVOCATED || f->r->stopping)
    return;
  if (f->st == ST_FOLLOW && f->call) {
    uv_timer_start(&f->timer, on_timer, node_of(f)->cfg.poll_ms, 0);
    if (f->side_call)
      return;
    snprintf(path, sizeof path, "/v1/logs/%06u/checkpoint", f->conf->region);
    sj_call_cbs_t cbs = {NULL, NULL, on_side_checkpoint, f};
    uint64_t to = node_of(f)->cfg.poll_ms < 1000 ? 1000 : node_of(f)->cfg.poll_ms;
    request(f, f->conf->urls[0], "GET", path, NULL, 0, to, &cbs, &f->side_call);
    return;
  }
  f->st = ST_CHECKPOINT;
  snprintf(path, sizeof path, "/v1/logs/%06u/checkpoint", f->conf->region);
  sj_call_cbs_t cbs = {NULL, NULL, on_checkpoint, f};
  int rv = request(f, cur_url(f), "GET", path, NULL, 0, 10000, &cbs, &f->call);
  if (rv)
    fail(f, "cannot request the checkpoint: %s", sj_strerror(rv));
}

static void on_timer(uv_timer_t *t) {
  poll_now(t->data);
}

static void poll_later(follower_t *f, uint64_t ms) {
  if (f->st != ST_EQUIVOCATED && !f->r->stopping)
    uv_timer_start(&f->timer, on_timer, ms, 0);
}

/* ---- 2. catching up ----------------------------------------------------------------------------- */

static void on_consistency(int err, const sj_resp_t *resp, void *arg);

/* Parses every frame of a collected entries answer into the batch. */
static int add_frames(follower_t *f, const uint8_t *p, size_t n, uint64_t *count) {
  size_t off = 0;
  while (off < n) {
    sj_bytes_t hdr, body;
    int has_body = 0;
    long used = sj_frame_next(p + off, n - off, MAX_BODY, &hdr, &body, &has_body);
    if (used <= 0)
      return used ? (int)used : SJ_ETRUNC;
    int rv = add_entry(f, hdr, body, has_body);
    if (rv)
      return rv;
    off += (size_t)used;
    (*count)++;
  }
  return 0;
}

static void on_entries(int err, const sj_resp_t *resp, void *arg) {
  follower_t *f = arg;
  f->call = NULL;
  if (f->r->stopping)
    return;
  uint64_t count = 0, size;
  uint8_t root[SJ_HASH_LEN];
  int rv = err ? err : resp->status != 200 ? SJ_EPROTO : 0;
  if (rv == SJ_ETOOBIG && f->chunk > 1) /* more bytes than we collect: ask for fewer entries */
    f->chunk /= 2;
  if (rv == 0)
    rv = add_frames(f, resp->body, resp->body_len, &count);
  if (rv || count == 0) {
    fail(f, "entries: %s", rv ? sj_strerror(rv) : "empty answer");
    return;
  }
  sj_store_batch_head(f->batch, &size, root, NULL);
  if (size > f->cp.size) {
    fail(f, "entries beyond the checkpoint's size");
    return;
  }
  if (size == f->cp.size) {
    if (commit_at_checkpoint(f, (char *)f->note.p, f->note.n) == 0)
      start_follow(f);
    return;
  }
  char path[128];
  snprintf(path, sizeof path, "/v1/logs/%06u/proof/consistency?first=%llu&second=%llu",
           f->conf->region, (unsigned long long)size, (unsigned long long)f->cp.size);
  sj_call_cbs_t cbs = {NULL, NULL, on_consistency, f};
  rv = request(f, cur_url(f), "GET", path, NULL, 0, 30000, &cbs, &f->call);
  if (rv)
    fail(f, "cannot request a consistency proof: %s", sj_strerror(rv));
}

/* Decodes {"consistency":[b64...]} into path. */
static int parse_proof(const sj_resp_t *resp, uint8_t path[][SJ_HASH_LEN], size_t *len) {
  json_error_t e;
  json_t *j = json_loadb((const char *)resp->body, resp->body_len, 0, &e);
  json_t *arr = json_object_get(j, "consistency");
  size_t n = json_array_size(arr), got;
  int rv = json_is_array(arr) && n <= SJ_MERKLE_MAX_PATH ? 0 : SJ_EFORMAT;
  for (size_t i = 0; rv == 0 && i < n; i++) {
    const char *s = json_string_value(json_array_get(arr, i));
    rv = s && sj_base64_decode(s, strlen(s), path[i], SJ_HASH_LEN, &got) == 0 && got == SJ_HASH_LEN
             ? 0 : SJ_EFORMAT;
  }
  json_decref(j);
  if (rv == 0)
    *len = n;
  return rv;
}

/* A chunk is verified when its tree is a prefix of the signed tree: commit it, fetch the next. */
static void on_consistency(int err, const sj_resp_t *resp, void *arg) {
  follower_t *f = arg;
  f->call = NULL;
  if (f->r->stopping)
    return;
  uint8_t path[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN], root[SJ_HASH_LEN];
  size_t len = 0;
  uint64_t size;
  if (err || resp->status != 200 || parse_proof(resp, path, &len)) {
    fail(f, "consistency proof: %s", err ? sj_strerror(err) : "bad answer");
    return;
  }
  sj_store_batch_head(f->batch, &size, root, NULL);
  if (sj_merkle_verify_consistency(size, f->cp.size, root, f->cp.root,
                                   (const uint8_t(*)[SJ_HASH_LEN])path, len)) {
    fail(f, "entries up to %llu are not a prefix of the signed tree of %llu",
         (unsigned long long)size, (unsigned long long)f->cp.size);
    return;
  }
  int rv = sj_store_batch_commit(f->batch, 0);
  f->batch = NULL;
  f->batch_entries = f->batch_bytes = 0;
  if (rv) {
    fail(f, "cannot store: %s", sj_strerror(rv));
    return;
  }
  committed(f);
  fetch_chunk(f);
}

static void fetch_chunk(follower_t *f) {
  uint64_t local;
  sj_store_head(node_of(f)->store, f->conf->region, &local, NULL, NULL);
  uint64_t want = f->cp.size - local < f->chunk ? f->cp.size - local : f->chunk;
  char path[128];
  snprintf(path, sizeof path, "/v1/logs/%06u/entries?start=%llu&limit=%llu", f->conf->region,
           (unsigned long long)local, (unsigned long long)want);
  sj_call_cbs_t cbs = {NULL, NULL, on_entries, f};
  int rv = request(f, cur_url(f), "GET", path, NULL, 0, 60000, &cbs, &f->call);
  if (rv)
    fail(f, "cannot request entries: %s", sj_strerror(rv));
}

/* ---- 3. following ------------------------------------------------------------------------------- */

/* A checkpoint record of the follow stream. Returns 0 or nonzero after fail(). */
static int follow_checkpoint(follower_t *f, const uint8_t *p, size_t len) {
  sj_checkpoint_t cp;
  if (verify_cp(f, (const char *)p, len, &cp)) {
    check_rotation(f);
    fail(f, "follow: checkpoint not signed by the pinned key");
    return -1;
  }
  f->cp = cp;
  f->origin_size = cp.size > f->origin_size ? cp.size : f->origin_size;
  if (check_same_size(f, (const char *)p, len))
    return -1;
  if (!f->batch) /* nothing new: a checkpoint we already hold */
    return 0;
  return commit_at_checkpoint(f, (const char *)p, len);
}

/* Parses whole records out of f->rx. Returns 0, or nonzero after fail(). */
static int follow_parse(follower_t *f) {
  while (f->rx.n > f->rx_off) {
    const uint8_t *p = f->rx.p + f->rx_off;
    size_t n = f->rx.n - f->rx_off;
    long used = 0;
    int rv = 0;
    if (p[0] == 'E') {
      sj_bytes_t hdr, body;
      int has_body = 0;
      used = sj_frame_next(p + 1, n - 1, MAX_BODY, &hdr, &body, &has_body);
      if (used > 0 && (rv = add_entry(f, hdr, body, has_body)) != 0) {
        fail(f, "follow: entry refused: %s", sj_strerror(rv));
        return -1;
      }
      if (f->batch_entries > FOLLOW_MAX_PENDING || f->batch_bytes > FOLLOW_MAX_PENDING_BYTES) {
        fail(f, "follow: %llu entries (%llu bytes) without a checkpoint: catching up instead",
             (unsigned long long)f->batch_entries, (unsigned long long)f->batch_bytes);
        return -1;
      }
    } else if (p[0] == 'C') {
      uint32_t len = n >= 5 ? sj_get_be32(p + 1) : 0;
      if (len > MAX_NOTE)
        used = SJ_ETOOBIG;
      else if (n >= 5 && n - 5 >= len) {
        used = (long)len + 4;
        if (follow_checkpoint(f, p + 5, len))
          return -1;
      }
    } else {
      used = SJ_EPROTO;
    }
    if (used < 0) {
      fail(f, "follow: malformed stream: %s", sj_strerror((int)used));
      return -1;
    }
    if (used == 0)
      break;
    f->rx_off += (size_t)used + 1;
  }
  if (f->rx_off == f->rx.n) { /* all consumed: reuse the buffer */
    sj_buf_reset(&f->rx);
    f->rx_off = 0;
  } else if (f->rx_off > (1u << 20)) {
    memmove(f->rx.p, f->rx.p + f->rx_off, f->rx.n - f->rx_off);
    f->rx.n -= f->rx_off;
    f->rx_off = 0;
  }
  return 0;
}

static int on_follow_data(const uint8_t *p, size_t n, void *arg) {
  follower_t *f = arg;
  if (f->r->stopping || f->st != ST_FOLLOW)
    return 1;
  sj_call_t *call = f->call;
  f->call = NULL; /* inside this call's callback: fail() must not cancel it; returning 1 does */
  if (f->rx.n - f->rx_off + n > 2 * MAX_BODY + MAX_NOTE) {
    fail(f, "follow: a record larger than any allowed");
    return 1;
  }
  if (sj_buf_append(&f->rx, p, n) || follow_parse(f))
    return 1; /* fail() scheduled the next attempt */
  f->call = call;
  return 0;
}

static void on_follow_done(int err, const sj_resp_t *resp, void *arg) {
  follower_t *f = arg;
  (void)resp;
  if (f->call == NULL) /* cancelled by fail(), which scheduled what comes next */
    return;
  f->call = NULL;
  if (f->r->stopping || f->st != ST_FOLLOW)
    return;
  fail(f, "follow stream ended: %s", err ? sj_strerror(err) : "closed by the peer");
}

static void start_follow(follower_t *f) {
  uint64_t local;
  sj_store_head(node_of(f)->store, f->conf->region, &local, NULL, NULL);
  abort_batch(f);
  sj_buf_reset(&f->rx);
  f->rx_off = 0;
  f->st = ST_FOLLOW;
  f->backoff_ms = 0;
  f->chunk = CHUNK;
  char path[96];
  snprintf(path, sizeof path, "/v1/logs/%06u/entries?start=%llu&follow=1", f->conf->region,
           (unsigned long long)local);
  sj_call_cbs_t cbs = {NULL, on_follow_data, on_follow_done, f};
  int rv = request(f, cur_url(f), "GET", path, NULL, 0, 0, &cbs, &f->call);
  if (rv)
    fail(f, "cannot open the follow stream: %s", sj_strerror(rv));
  /* A poll now and then still checks the origin's newest checkpoint and cosigns it. */
  uv_timer_start(&f->timer, on_timer, node_of(f)->cfg.poll_ms, 0);
}

/* ---- lifecycle ---------------------------------------------------------------------------------- */

/* The peer token this node presents: a secret, so its file must not be readable by group or
 * others (like the region key); the copy on the stack is wiped. */
static int read_token(const char *path, char *auth, size_t cap) {
  char tok[256] = "";
  struct stat st;
  FILE *fp = fopen(path, "r");
  if (!fp)
    return SJ_EINVAL;
  if (fstat(fileno(fp), &st) || (st.st_mode & 077)) {
    fclose(fp);
    SJ_LOG_ERR("repl", "token file %s is readable by group or others: chmod 600 it", path);
    return SJ_EPERM;
  }
  int ok = fgets(tok, sizeof tok, fp) != NULL;
  fclose(fp);
  tok[strcspn(tok, " \r\n\t")] = 0;
  if (ok && tok[0])
    snprintf(auth, cap, "Bearer %s", tok);
  sodium_memzero(tok, sizeof tok);
  return ok && auth[0] ? 0 : SJ_EINVAL;
}

static int add_conn(struct repl *r, const char *url) {
  if (client_for(r, url))
    return 0;
  sj_client_opts_t o;
  sj_client_opts_default(&o);
  o.request_timeout_ms = 0; /* follow streams stay open; every other request sets its own */
  if (!strncmp(url, "https://", 8)) { /* mutual TLS: our certificate says which region we are */
    const sj_config_t *cfg = &r->n->cfg;
    o.tls_ca_file = cfg->tls_ca[0] ? cfg->tls_ca : NULL;
    o.tls_cert_file = cfg->tls_cert[0] ? cfg->tls_cert : NULL;
    o.tls_key_file = cfg->tls_key[0] ? cfg->tls_key : NULL;
  }
  peer_conn_t *c = &r->conns[r->nconns];
  snprintf(c->url, sizeof c->url, "%s", url);
  int rv = sj_client_new(r->n->loop, url, &o, &c->client);
  if (rv == 0)
    r->nconns++;
  return rv;
}

/* A follower that failed to initialise is not counted in r->nf (repl_stop never sees it): free
 * what follower_init had made. */
static int follower_init_failed(follower_t *f, int rv) {
  sj_verifier_free(f->v);
  sj_verifier_free(f->v_cos);
  f->v = f->v_cos = NULL;
  return rv;
}

static int follower_init(struct repl *r, follower_t *f, const sj_peer_conf_t *pc) {
  sj_node_t *n = r->n;
  f->r = r;
  f->conf = pc;
  int rv = sj_verifier_parse(pc->vkey, strlen(pc->vkey), &f->v);
  if (rv == 0)
    rv = sj_verifier_derive(f->v, SJ_KEY_COSIGNATURE_V1, &f->v_cos);
  if (rv) {
    SJ_LOG_ERR("repl", "[peer %06u] vkey is not a C2SP verifier key", pc->region);
    return follower_init_failed(f, SJ_EINVAL);
  }
  if (pc->token_file[0] && read_token(pc->token_file, f->auth, sizeof f->auth)) {
    SJ_LOG_ERR("repl", "[peer %06u] cannot read token file %s", pc->region, pc->token_file);
    return follower_init_failed(f, SJ_EINVAL);
  }
  for (size_t i = 0; rv == 0 && i < pc->nurls; i++)
    rv = add_conn(r, pc->urls[i]);
  if (rv) {
    SJ_LOG_ERR("repl", "[peer %06u] bad url: %s", pc->region, sj_strerror(rv));
    return follower_init_failed(f, rv);
  }
  f->chunk = CHUNK;
  uv_timer_init(n->loop, &f->timer);
  f->timer.data = f;
  char rkey[32];
  sj_buf_t rot = {0};
  rotation_key(pc->region, rkey);
  if (sj_store_meta_get(n->store, rkey, &rot) == 0 && adopt_rotation(f, (char *)rot.p, rot.n))
    SJ_LOG_WARN("repl", "%06u: stored key rotation no longer verifies; ignored", pc->region);
  sj_buf_deinit(&rot);
  char key[32];
  sj_buf_t ev = {0};
  evidence_key(pc->region, key);
  if (sj_store_meta_get(n->store, key, &ev) == 0) {
    f->st = ST_EQUIVOCATED;
    SJ_LOG_ERR("repl", "%06u: equivocation evidence on record; not following", pc->region);
  }
  sj_buf_deinit(&ev);
  return 0;
}

int repl_start(sj_node_t *n) {
  struct repl *r = calloc(1, sizeof *r);
  if (!r)
    return -12;
  r->n = n;
  n->repl = r;
  sj_signer_verifier(n->signer, SJ_KEY_COSIGNATURE_V1, &r->own_cos);
  for (size_t i = 0; i < n->cfg.npeers; i++) {
    int rv = follower_init(r, &r->f[i], &n->cfg.peers[i]);
    if (rv)
      return rv;
    r->nf++;
    poll_later(&r->f[i], 10 * i); /* spread the first polls a little */
  }
  return 0;
}

static void on_handle_closed(uv_handle_t *h) {
  struct repl *r = h->data;
  (void)r;
}

void repl_stop(sj_node_t *n) {
  struct repl *r = n->repl;
  if (!r)
    return;
  r->stopping = 1;
  for (size_t i = 0; i < r->nf; i++) {
    follower_t *f = &r->f[i];
    if (f->call) {
      sj_call_t *c = f->call;
      f->call = NULL;
      sj_call_cancel(c);
    }
    if (f->side_call) {
      sj_call_t *c = f->side_call;
      f->side_call = NULL;
      sj_call_cancel(c);
    }
    if (f->rot_call) {
      sj_call_t *c = f->rot_call;
      f->rot_call = NULL;
      sj_call_cancel(c);
    }
    abort_batch(f);
    uv_timer_stop(&f->timer);
    f->timer.data = r;
    uv_close((uv_handle_t *)&f->timer, on_handle_closed);
    sj_verifier_free(f->v);
    sj_verifier_free(f->v_cos);
    sj_verifier_free(f->v_next);
    sj_verifier_free(f->v_next_cos);
    sj_buf_deinit(&f->note);
    sj_buf_deinit(&f->rx);
    free(f->deps);
  }
  for (size_t i = 0; i < r->nconns; i++)
    sj_client_close(r->conns[i].client, NULL, NULL);
  /* The timers finish closing on the next loop turn; r lives until the node frees it. */
}

void repl_free(sj_node_t *n) {
  if (n->repl)
    sj_verifier_free(n->repl->own_cos);
  free(n->repl);
  n->repl = NULL;
}

int repl_cosig_verify(sj_node_t *n, uint32_t region, const char *text, size_t tl,
                      const char *line, size_t len) {
  struct repl *r = n->repl;
  for (size_t i = 0; r && i < r->nf; i++) {
    follower_t *f = &r->f[i];
    if (f->conf->region != region)
      continue;
    int rv = sj_cosig_verify(f->v_cos, text, tl, line, len, NULL);
    if (rv == SJ_ENOTFOUND && f->v_next_cos) /* signed by the region's next key */
      rv = sj_cosig_verify(f->v_next_cos, text, tl, line, len, NULL);
    return rv;
  }
  return SJ_ENOTFOUND;
}

int repl_rotation_note(sj_node_t *n, uint32_t region, sj_buf_t *out) {
  char key[32];
  rotation_key(region, key);
  return sj_store_meta_get(n->store, key, out);
}

/* ---- status, alerts, metrics -------------------------------------------------------------------- */

static void cosigners_json(sj_node_t *n, uint32_t region, sj_buf_t *out) {
  sj_buf_t note = {0};
  uint64_t size;
  size_t tl, so;
  sj_buf_append_u8(out, '[');
  if (sj_store_checkpoint_latest(n->store, region, &size, &note) == 0 &&
      sj_note_split((char *)note.p, note.n, &tl, &so) == 0) {
    int first = 1, line = 0;
    for (size_t i = so; i < note.n; line++) { /* signature lines: "— <name> <sig>\n" */
      size_t e = i;
      while (e < note.n && note.p[e] != '\n')
        e++;
      const char *s = (const char *)note.p + i + 4; /* after the em dash and space */
      const char *sp = memchr(s, ' ', (size_t)((const char *)note.p + e - s));
      if (line > 0 && sp) { /* the first line is the origin's own signature */
        sj_buf_append_str(out, first ? "" : ",");
        json_str(out, s, (size_t)(sp - s));
        first = 0;
      }
      i = e + 1;
    }
  }
  sj_buf_append_u8(out, ']');
  sj_buf_deinit(&note);
}

void repl_status_json(sj_node_t *n, sj_buf_t *out) {
  struct repl *r = n->repl;
  uint64_t size;
  sj_store_head(n->store, n->cfg.region, &size, NULL, NULL);
  sj_buf_printf(out, "{\"region\":\"%s\",\"regions\":[{\"region\":\"%s\",\"origin\":", n->region_str,
                n->region_str);
  json_str(out, sj_signer_name(n->signer), strlen(sj_signer_name(n->signer)));
  sj_buf_printf(out, ",\"state\":\"origin\",\"local_size\":%llu,\"origin_size\":%llu,\"cosigners\":",
                (unsigned long long)size, (unsigned long long)size);
  cosigners_json(n, n->cfg.region, out);
  sj_buf_append_u8(out, '}');
  for (size_t i = 0; r && i < r->nf; i++) {
    follower_t *f = &r->f[i];
    sj_store_head(n->store, f->conf->region, &size, NULL, NULL);
    sj_buf_printf(out, ",{\"region\":\"%06u\",\"origin\":", f->conf->region);
    json_str(out, sj_verifier_name(f->v), strlen(sj_verifier_name(f->v)));
    sj_buf_printf(out, ",\"state\":\"%s\",\"local_size\":%llu,\"origin_size\":%llu,"
                       "\"lag_entries\":%llu,\"lag_ms\":%llu,\"last_checkpoint_ms\":%llu,\"url\":",
                  state_names[f->st], (unsigned long long)size, (unsigned long long)f->origin_size,
                  (unsigned long long)(f->origin_size > size ? f->origin_size - size : 0),
                  (unsigned long long)f->lag_ms, (unsigned long long)f->last_checkpoint_ms);
    json_str(out, cur_url(f), strlen(cur_url(f)));
    sj_buf_append_str(out, ",\"last_error\":");
    json_str(out, f->last_error, strlen(f->last_error));
    if (f->v_next) {
      sj_buf_t vk = {0};
      sj_verifier_format(f->v_next, &vk);
      sj_buf_append_str(out, ",\"next_vkey\":");
      json_str(out, (char *)vk.p, vk.n);
      sj_buf_deinit(&vk);
    }
    sj_buf_append_str(out, ",\"cosigners\":");
    cosigners_json(n, f->conf->region, out);
    sj_buf_append_u8(out, '}');
  }
  sj_buf_append_str(out, "]}");
}

void repl_alerts_json(sj_node_t *n, sj_buf_t *out) {
  struct repl *r = n->repl;
  sj_buf_t ev = {0};
  char key[32];
  int first = 1;
  sj_buf_append_str(out, "{\"alerts\":[");
  for (size_t i = 0; r && i < r->nf; i++) {
    evidence_key(r->f[i].conf->region, key);
    if (sj_store_meta_get(n->store, key, &ev) == 0) {
      sj_buf_append_str(out, first ? "" : ",");
      sj_buf_append(out, ev.p, ev.n);
      first = 0;
    }
  }
  sj_buf_append_str(out, "],\"recent_failures\":[");
  size_t cnt = r ? (r->nrecent < RECENT_FAILURES ? r->nrecent : RECENT_FAILURES) : 0;
  for (size_t i = 0; i < cnt; i++) {
    const failure_t *x = &r->recent[(r->nrecent - 1 - i) % RECENT_FAILURES];
    sj_buf_printf(out, "%s{\"region\":\"%06u\",\"kind\":\"verification_failed\",\"when_ms\":%llu,"
                       "\"url\":", i ? "," : "", x->region, (unsigned long long)x->when_ms);
    json_str(out, x->url, strlen(x->url));
    sj_buf_append_str(out, ",\"what\":");
    json_str(out, x->what, strlen(x->what));
    sj_buf_append_u8(out, '}');
  }
  sj_buf_append_str(out, "]}");
  sj_buf_deinit(&ev);
}

void repl_metrics(sj_node_t *n, sj_buf_t *out) {
  struct repl *r = n->repl;
  sj_buf_printf(out, "# TYPE sanjiao_equivocations_total counter\nsanjiao_equivocations_total %llu\n"
                     "# TYPE sanjiao_replication_lag_entries gauge\n",
                (unsigned long long)(r ? r->equivocations : 0));
  for (size_t i = 0; r && i < r->nf; i++) {
    uint64_t size;
    follower_t *f = &r->f[i];
    sj_store_head(n->store, f->conf->region, &size, NULL, NULL);
    sj_buf_printf(out, "sanjiao_replication_lag_entries{region=\"%06u\"} %llu\n", f->conf->region,
                  (unsigned long long)(f->origin_size > size ? f->origin_size - size : 0));
  }
  sj_buf_append_str(out, "# TYPE sanjiao_replication_lag_ms gauge\n");
  for (size_t i = 0; r && i < r->nf; i++)
    sj_buf_printf(out, "sanjiao_replication_lag_ms{region=\"%06u\"} %llu\n", r->f[i].conf->region,
                  (unsigned long long)r->f[i].lag_ms);
  sj_buf_append_str(out, "# TYPE sanjiao_replication_failures_total counter\n");
  for (size_t i = 0; r && i < r->nf; i++)
    sj_buf_printf(out, "sanjiao_replication_failures_total{region=\"%06u\"} %llu\n",
                  r->f[i].conf->region, (unsigned long long)r->f[i].failures);
}

/* ---- bodies that stay home ------------------------------------------------------------------------ */

typedef struct {
  repl_body_cb cb;
  void *arg;
} body_fetch_t;

static void on_body(int err, const sj_resp_t *resp, void *arg) {
  body_fetch_t *bf = arg;
  uint8_t *body = NULL;
  size_t n = 0;
  if (!err && resp->status != 200)
    err = resp->status == 404 ? SJ_ENOTFOUND : SJ_EPERM;
  if (!err) {
    json_error_t e;
    json_t *j = json_loadb((const char *)resp->body, resp->body_len, 0, &e);
    const char *b64 = json_string_value(json_object_get(j, "body"));
    size_t cap = b64 ? strlen(b64) : 0;
    body = cap ? malloc(cap) : NULL;
    err = !b64 ? SJ_EPERM : !body ? -12 : sj_base64_decode(b64, cap, body, cap, &n);
    json_decref(j);
  }
  bf->cb(bf->arg, err, body, n);
  free(body);
  free(bf);
}

int repl_fetch_body(sj_node_t *n, uint32_t region, uint64_t seq, const char *on_behalf,
                    repl_body_cb cb, void *arg) {
  struct repl *r = n->repl;
  follower_t *f = NULL;
  for (size_t i = 0; r && i < r->nf; i++)
    if (r->f[i].conf->region == region)
      f = &r->f[i];
  if (!f)
    return SJ_ENOTFOUND;
  body_fetch_t *bf = malloc(sizeof *bf);
  if (!bf)
    return -12;
  *bf = (body_fetch_t){cb, arg};
  char path[80];
  snprintf(path, sizeof path, "/v1/records/%06u/%llu", region, (unsigned long long)seq);
  sj_header_t h[2] = {{"authorization", f->auth}, {"x-sanjiao-on-behalf-of", on_behalf}};
  sj_call_req_t rq = {"GET", path, h, f->auth[0] ? 2 : 0, NULL, 0, 10000};
  if (!f->auth[0]) {
    h[0] = h[1];
    rq.nhdrs = 1;
  }
  sj_call_cbs_t cbs = {NULL, NULL, on_body, bf};
  int rv = sj_client_request(client_for(r, f->conf->urls[0]), &rq, &cbs, NULL);
  if (rv)
    free(bf);
  return rv;
}
