/* fuzz_note — C2SP signed notes, checkpoints, cosignatures and key texts (crypto/note.c,
 * checkpoint.c, keys.c): every checkpoint a node follows or cosigns arrives as a signed note from
 * another region, and keys are read from configuration.
 *
 * The verifiers are fixed: the origin key and a witness key of tests/vectors/signed-note, and
 * the cosignature/v1 key of cosignature-vectors.json. The first input byte picks the mode:
 *   0  sj_note_split + sj_note_verify (all keys, and each key alone). Property: a note that
 *      verifies carries exactly the text those keys signed (nobody can forge without the private
 *      keys, which the harness does not hold); split offsets are consistent.
 *   1  sj_checkpoint_parse. Property: an accepted text starts with exactly what
 *      sj_checkpoint_format writes for the parsed fields (one spelling per checkpoint).
 *   2  sj_cosig_verify. The input is "<checkpoint text>\0<line>", or a bare line checked against
 *      the vector's checkpoint. Property: only the genuine cosignature verifies.
 *   3  sj_verifier_parse and sj_signer_parse. Property: an accepted key formats back to the same
 *      text (key ids compared without case) and parses again to the same key; a parsed private
 *      key signs a note its own verifier accepts. */
#include "crypto/crypto.h"
#include "tests/fuzz/fuzz.h"

#include <string.h>
#include <strings.h>

static const char k_text[] = "example.test/log/310000\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/"
                             "RgQyg=\n";
static const char *const k_vkeys[] = {
    "example.test/log/310000+f1b216d9+Af/EAH8OixIxT5wVflpjJQ48xymrjE03oMfYRmDvR6UB",
    "example.test/witness/320000+2ccb3146+Aag3hcsF//RlV8mKTU2RAb2Zu77z9b/9vk2O/HHONO6S",
    "example.test/witness/320000+010b7f6f+BKEsDIA1IuWAQpLK32JonRK19gcvkKMn+XZgIlFF6SvG",
};
#define NKEYS 3
#define COSIG_TS 1764201600u
static sj_verifier_t *ver[NKEYS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  FUZZ_CHECK(sj_crypto_init() == 0);
  for (int i = 0; i < NKEYS; i++)
    FUZZ_CHECK(sj_verifier_parse(k_vkeys[i], strlen(k_vkeys[i]), &ver[i]) == 0);
  FUZZ_CHECK(sj_verifier_type(ver[2]) == SJ_KEY_COSIGNATURE_V1);
  return 0;
}

static int is_known_text(const char *p, size_t n) {
  return n == sizeof k_text - 1 && memcmp(p, k_text, n) == 0;
}

static void note_mode(const char *p, size_t n) {
  size_t tl = 0, so = 0;
  int split = sj_note_split(p, n, &tl, &so);
  if (split == 0)
    FUZZ_CHECK(tl > 0 && so == tl + 1 && so < n && p[tl - 1] == '\n' && p[tl] == '\n');
  const sj_verifier_t *const *vs = (const sj_verifier_t *const *)ver;
  for (size_t first = 0; first <= NKEYS; first++) {
    size_t nv = first == NKEYS ? NKEYS : 1; /* each key alone, then all together */
    size_t tl2 = 0;
    uint64_t bits = 0;
    int rv = sj_note_verify(p, n, first == NKEYS ? vs : vs + first, nv, &tl2, &bits);
    FUZZ_CHECK(rv == 0 || rv == SJ_EFORMAT || rv == SJ_EVERIFY);
    if (rv != 0)
      continue;
    FUZZ_CHECK(split == 0 && tl2 == tl && bits != 0 && bits < (1u << nv));
    FUZZ_CHECK(is_known_text(p, tl));
    sj_checkpoint_t c;
    FUZZ_CHECK(sj_checkpoint_parse(p, tl, &c) == 0 && c.size == 8);
  }
}

/* Length of the first three lines (through the third "\n"), or 0. */
static size_t three_lines(const char *p, size_t n) {
  int lines = 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] == '\n' && ++lines == 3)
      return i + 1;
  return 0;
}

static void checkpoint_mode(const char *p, size_t n) {
  sj_checkpoint_t c;
  int rv = sj_checkpoint_parse(p, n, &c);
  if (rv != 0) {
    FUZZ_CHECK(rv == SJ_EFORMAT);
    return;
  }
  sj_buf_t out = {0};
  FUZZ_CHECK(sj_checkpoint_format(&c, &out) == 0);
  size_t head = three_lines(p, n);
  FUZZ_CHECK(head == out.n && memcmp(out.p, p, head) == 0);
  sj_buf_deinit(&out);
}

static void cosig_mode(const char *p, size_t n) {
  const char *nul = memchr(p, 0, n);
  const char *text = nul ? p : k_text, *line = nul ? nul + 1 : p;
  size_t tn = nul ? (size_t)(nul - p) : sizeof k_text - 1;
  size_t ln = nul ? n - tn - 1 : n;
  for (int i = 0; i < NKEYS; i++) {
    uint64_t ts = 0;
    int rv = sj_cosig_verify(ver[i], text, tn, line, ln, &ts);
    if (i < 2) { /* note keys are not cosignature keys */
      FUZZ_CHECK(rv == SJ_EINVAL);
      continue;
    }
    FUZZ_CHECK(rv == 0 || rv == SJ_EFORMAT || rv == SJ_EVERIFY || rv == SJ_ENOTFOUND);
    if (rv == 0)
      FUZZ_CHECK(is_known_text(text, tn) && ts == COSIG_TS);
  }
}

/* The text without surrounding blanks, as the key parsers see it. */
static void trimmed(const char **p, size_t *n) {
  while (*n && strchr(" \t\r\n", (*p)[0]) && (*p)[0])
    (*p)++, (*n)--;
  while (*n && strchr(" \t\r\n", (*p)[*n - 1]) && (*p)[*n - 1])
    (*n)--;
}

static void check_verifier(const char *p, size_t n) {
  sj_verifier_t *v, *v2;
  int rv = sj_verifier_parse(p, n, &v);
  if (rv != 0) {
    FUZZ_CHECK(rv == SJ_EFORMAT || rv == SJ_EVERIFY);
    return;
  }
  sj_buf_t out = {0};
  FUZZ_CHECK(sj_verifier_format(v, &out) == 0);
  const char *t = p;
  size_t tn = n;
  trimmed(&t, &tn);
  FUZZ_CHECK(out.n == tn && strncasecmp((const char *)out.p, t, tn) == 0);
  FUZZ_CHECK(sj_verifier_parse((const char *)out.p, out.n, &v2) == 0);
  FUZZ_CHECK(sj_verifier_key_id(v2) == sj_verifier_key_id(v) &&
             sj_verifier_type(v2) == sj_verifier_type(v) &&
             strcmp(sj_verifier_name(v2), sj_verifier_name(v)) == 0);
  sj_verifier_free(v2);
  sj_verifier_free(v);
  sj_buf_deinit(&out);
}

static void check_signer(const char *p, size_t n) {
  sj_signer_t *s, *s2;
  int rv = sj_signer_parse(p, n, &s);
  if (rv != 0) {
    FUZZ_CHECK(rv == SJ_EFORMAT || rv == SJ_EVERIFY);
    return;
  }
  sj_buf_t out = {0}, note = {0};
  FUZZ_CHECK(sj_signer_format(s, &out) == 0);
  FUZZ_CHECK(sj_signer_parse((const char *)out.p, out.n, &s2) == 0);
  FUZZ_CHECK(strcmp(sj_signer_name(s2), sj_signer_name(s)) == 0);
  sj_verifier_t *v;
  FUZZ_CHECK(sj_signer_verifier(s2, SJ_KEY_ED25519, &v) == 0);
  const sj_signer_t *signers[1] = {s};
  const sj_verifier_t *vs[1] = {v};
  FUZZ_CHECK(sj_note_sign(k_text, sizeof k_text - 1, signers, 1, &note) == 0);
  FUZZ_CHECK(sj_note_verify((const char *)note.p, note.n, vs, 1, NULL, NULL) == 0);
  sj_verifier_free(v);
  sj_signer_free(s2);
  sj_signer_free(s);
  sj_buf_deinit(&out);
  sj_buf_deinit(&note);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const char *p = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 4) {
  case 0:
    note_mode(p, n);
    break;
  case 1:
    checkpoint_mode(p, n);
    break;
  case 2:
    cosig_mode(p, n);
    break;
  default:
    check_verifier(p, n);
    check_signer(p, n);
    break;
  }
  return 0;
}
