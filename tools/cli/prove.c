/* tools/cli/prove.c — `sanjiao prove REGION SEQ --vkey VKEY`: fetches a record, the region's
 * checkpoint and an inclusion proof, and verifies all three offline against the pinned verifier
 * key — the node is not trusted for any of it. */
#include "tools/cli/cli.h"

#include "crypto/crypto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes a base64 JSON string member into out (cap bytes). */
static int b64_member(const json_t *o, const char *k, uint8_t *out, size_t cap, size_t *n) {
  const char *s = json_string_value(json_object_get(o, k));
  if (!s)
    return SJ_EFORMAT;
  return sj_base64_decode(s, strlen(s), out, cap, n);
}

#define MAX_WITNESSES 32

typedef struct {
  uint32_t region;
  uint64_t seq;
  sj_verifier_t *v;
  sj_verifier_t *witness[MAX_WITNESSES]; /* cosignature/v1 keys of the regions that witness */
  size_t nwitness;
  size_t min_cosigners;                  /* K of --witness keys must have cosigned */
  json_t *rec;         /* GET /v1/records/{region}/{seq} */
  sj_buf_t note;       /* the checkpoint note */
  sj_checkpoint_t cp;  /* its parsed text */
  uint8_t leaf_hash[SJ_HASH_LEN];
} prove_t;

static int fail(const char *what) {
  fprintf(stderr, "FAILED: %s\n", what);
  return 1;
}

/* A witness is given by its region key (type 0x01) or its cosignature key (type 0x04). */
static int parse_witness(const char *text, sj_verifier_t **out) {
  sj_verifier_t *v = NULL;
  if (sj_verifier_parse(text, strlen(text), &v))
    return SJ_EFORMAT;
  if (sj_verifier_type(v) == SJ_KEY_COSIGNATURE_V1) {
    *out = v;
    return 0;
  }
  int rv = sj_verifier_derive(v, SJ_KEY_COSIGNATURE_V1, out);
  sj_verifier_free(v);
  return rv;
}

/* Step 1b: at least min_cosigners of the witness keys cosigned this checkpoint. */
static int check_witnesses(prove_t *p) {
  if (!p->min_cosigners)
    return 0;
  size_t ok = 0;
  for (size_t w = 0; w < p->nwitness; w++) {
    const sj_verifier_t *vs[1] = {p->witness[w]};
    if (sj_note_verify((const char *)p->note.p, p->note.n, vs, 1, NULL, NULL) == 0) {
      printf("ok cosigned by %s\n", sj_verifier_name(p->witness[w]));
      ok++;
    }
  }
  if (ok < p->min_cosigners) {
    fprintf(stderr, "FAILED: %zu of the %zu witness keys cosigned; %zu required\n", ok,
            p->nwitness, p->min_cosigners);
    return 1;
  }
  printf("ok witnesses: %zu of %zu cosigned (%zu required)\n", ok, p->nwitness, p->min_cosigners);
  return 0;
}

/* Step 1: the checkpoint note is signed by the pinned key. */
static int check_checkpoint(const cli_opts_t *o, prove_t *p) {
  char path[64];
  int status = 0;
  size_t text_len = 0;
  if (p->min_cosigners)
    snprintf(path, sizeof path, "/v1/logs/%06u/checkpoint?cosigned=%zu", p->region,
             p->min_cosigners);
  else
    snprintf(path, sizeof path, "/v1/logs/%06u/checkpoint", p->region);
  if (cli_request(o, "GET", path, NULL, NULL, 0, NULL, &status, &p->note))
    return 1;
  if (status != 200) {
    cli_print_problem(status, &p->note);
    return 1;
  }
  const sj_verifier_t *vs[1] = {p->v};
  if (sj_note_verify((const char *)p->note.p, p->note.n, vs, 1, &text_len, NULL))
    return fail("the checkpoint is not signed by the given verifier key");
  if (sj_checkpoint_parse((const char *)p->note.p, text_len, &p->cp))
    return fail("the checkpoint text is malformed");
  if (strcmp(p->cp.origin, sj_verifier_name(p->v)))
    return fail("the checkpoint's origin is not the key's name");
  printf("ok checkpoint: signed by %s, tree size %" PRIu64 "\n", p->cp.origin, p->cp.size);
  return check_witnesses(p);
}

/* Step 2: the header hashes to leaf_hash, says what it should, and commits to the body. */
static int check_entry(prove_t *p) {
  uint8_t hdr[SJ_ENTRY_MAX_HEADER / 16], claimed[SJ_HASH_LEN];
  size_t hn = 0, cn = 0;
  static sj_index_key_t keys[SJ_ENTRY_MAX_KEYS];
  sj_entry_header_t h;
  if (b64_member(p->rec, "leaf", hdr, sizeof hdr, &hn))
    return fail("the record has no valid 'leaf' (header bytes)");
  if (b64_member(p->rec, "leaf_hash", claimed, sizeof claimed, &cn) || cn != SJ_HASH_LEN)
    return fail("the record has no valid 'leaf_hash'");
  sj_merkle_leaf_hash(hdr, hn, p->leaf_hash);
  if (memcmp(p->leaf_hash, claimed, SJ_HASH_LEN))
    return fail("the header does not hash to the leaf hash the node claims");
  if (sj_entry_decode(hdr, hn, &h, keys, SJ_ENTRY_MAX_KEYS))
    return fail("the header does not decode");
  if (h.region != p->region || h.seq != p->seq)
    return fail("the header names another region or sequence number");
  printf("ok entry: header of %06u/%" PRIu64 " hashes to the leaf hash (%.*s)\n", h.region, h.seq,
         (int)h.type_len, h.type);
  const char *b64 = json_string_value(json_object_get(p->rec, "body"));
  if (!b64) {
    printf("-- body: not visible to this caller; the header commits to its SHA-256\n");
    return 0;
  }
  size_t cap = strlen(b64), bn = 0;
  uint8_t *body = malloc(cap + 1);
  int rv = body ? sj_base64_decode(b64, cap, body, cap, &bn) : -1;
  rv = rv ? rv : sj_entry_check_body(&h, body, bn);
  free(body);
  if (rv)
    return fail("the body does not match the hash in the header");
  printf("ok body: %zu bytes match the header's SHA-256\n", bn);
  return 0;
}

/* Step 3: the leaf is in the checkpoint's tree. */
static int check_inclusion(const cli_opts_t *o, prove_t *p) {
  char path[128];
  json_t *proof = NULL;
  uint8_t path_h[SJ_MERKLE_MAX_PATH][SJ_HASH_LEN];
  snprintf(path, sizeof path, "/v1/logs/%06u/proof/inclusion?index=%" PRIu64 "&size=%" PRIu64,
           p->region, p->seq, p->cp.size);
  if (p->seq >= p->cp.size)
    return fail("the checkpoint does not cover this entry yet");
  if (cli_get_json(o, path, &proof))
    return 1;
  json_t *arr = json_object_get(proof, "audit_path");
  size_t n = json_array_size(arr), i, len;
  int rv = !json_is_array(arr) || n > SJ_MERKLE_MAX_PATH;
  for (i = 0; !rv && i < n; i++) {
    const char *s = json_string_value(json_array_get(arr, i));
    rv = !s || sj_base64_decode(s, strlen(s), path_h[i], SJ_HASH_LEN, &len) || len != SJ_HASH_LEN;
  }
  json_decref(proof);
  if (rv)
    return fail("the inclusion proof is malformed");
  if (sj_merkle_verify_inclusion(p->leaf_hash, p->seq, p->cp.size, (const uint8_t(*)[32])path_h, n,
                                 p->cp.root))
    return fail("the inclusion proof does not lead to the checkpoint's root");
  printf("ok inclusion: leaf %" PRIu64 " is in the tree of size %" PRIu64 " (%zu hashes)\n", p->seq,
         p->cp.size, n);
  return 0;
}

int cmd_prove(int argc, char **argv, const cli_opts_t *o) {
  const char *vkey = NULL, *args[2] = {NULL, NULL};
  const char *witness[MAX_WITNESSES];
  size_t nw = 0, min_cos = 0;
  int na = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--vkey") && i + 1 < argc)
      vkey = argv[++i];
    else if (!strcmp(argv[i], "--witness") && i + 1 < argc && nw < MAX_WITNESSES)
      witness[nw++] = argv[++i];
    else if (!strcmp(argv[i], "--min-cosigners") && i + 1 < argc)
      min_cos = (size_t)strtoul(argv[++i], NULL, 10);
    else if (na < 2)
      args[na++] = argv[i];
    else
      na = 3;
  }
  prove_t p;
  memset(&p, 0, sizeof p);
  char *end = NULL;
  if (na != 2 || !vkey || sj_region_parse_cli(args[0], &p.region) ||
      (p.seq = strtoull(args[1], &end, 10), !end || *end || args[1][0] == '-')) {
    fprintf(stderr, "usage: sanjiao prove REGION SEQ --vkey VKEY [--witness VKEY ... "
                    "--min-cosigners K]\n");
    return 2;
  }
  p.min_cosigners = min_cos;
  for (size_t w = 0; w < nw; w++, p.nwitness++)
    if (parse_witness(witness[w], &p.witness[w])) {
      fprintf(stderr, "prove: --witness %s is not a C2SP verifier key\n", witness[w]);
      return 2;
    }
  if (min_cos > p.nwitness) {
    fprintf(stderr, "prove: --min-cosigners %zu but only %zu --witness keys\n", min_cos,
            p.nwitness);
    return 2;
  }
  if (sj_verifier_parse(vkey, strlen(vkey), &p.v)) {
    fprintf(stderr, "prove: --vkey is not a C2SP verifier key (name+hash+base64)\n");
    return 2;
  }
  char path[64];
  snprintf(path, sizeof path, "/v1/records/%06u/%" PRIu64, p.region, p.seq);
  int rv = cli_get_json(o, path, &p.rec);
  rv = rv ? rv : check_checkpoint(o, &p);
  rv = rv ? rv : check_entry(&p);
  rv = rv ? rv : check_inclusion(o, &p);
  if (rv == 0)
    printf("verified: record %06u/%" PRIu64 " is in %s's log, checkpoint size %" PRIu64 "\n",
           p.region, p.seq, p.cp.origin, p.cp.size);
  json_decref(p.rec);
  sj_buf_deinit(&p.note);
  sj_verifier_free(p.v);
  for (size_t w = 0; w < p.nwitness; w++)
    sj_verifier_free(p.witness[w]);
  return rv;
}
