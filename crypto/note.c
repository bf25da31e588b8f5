/* crypto/note.c — C2SP signed notes and tlog-cosignature (cosignature/v1) lines.
 *
 * A note is its text, a blank line, and one or more signature lines "— <name> <base64>\n". The
 * text is everything up to and including the first newline of the note's last "\n\n" (signature
 * lines are never empty, so the last blank line is the separator, as in the reference Go code).
 * The whole note must be well-formed UTF-8 with no control character but '\n'.
 *
 * Signature bytes begin with the signer's 4-byte key id. For an Ed25519 note key (type 0x01) the
 * rest is the 64-byte signature of the text; for a cosignature/v1 key (type 0x04) it is an 8-byte
 * big-endian timestamp and the 64-byte signature of "cosignature/v1\ntime <timestamp>\n" || text.
 */
#include "crypto/crypto_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define SIG_LINE_MAX 1024 /* longest signature line accepted, without its "\n" */
#define SIG_BYTES_MAX 512 /* longest decoded signature accepted (ours are 68 and 76 bytes) */
#define NOTE_SIG_LEN (4 + crypto_sign_BYTES)
#define COSIG_LEN (4 + 8 + crypto_sign_BYTES)

typedef struct {
  const char *name; /* borrowed from the note, not NUL-terminated */
  size_t name_len;
  uint32_t id;                /* first four bytes of sig */
  uint8_t sig[SIG_BYTES_MAX]; /* decoded: key id || algorithm-specific bytes */
  size_t len;
} sigline_t;

/* Parses one signature line p[0..n), without its newline. */
static int parse_sig_line(const char *p, size_t n, sigline_t *out) {
  if (n > SIG_LINE_MAX || n < SJ_SIG_PREFIX_LEN || memcmp(p, SJ_SIG_PREFIX, SJ_SIG_PREFIX_LEN) != 0)
    return SJ_EFORMAT;
  p += SJ_SIG_PREFIX_LEN;
  n -= SJ_SIG_PREFIX_LEN;
  const char *sp = memchr(p, ' ', n);
  if (!sp || !sj_key_name_ok(p, (size_t)(sp - p)))
    return SJ_EFORMAT;
  size_t nl = (size_t)(sp - p);
  if (n - nl - 1 == 0 ||
      sj_base64_decode(sp + 1, n - nl - 1, out->sig, sizeof out->sig, &out->len) != 0 ||
      out->len < 5)
    return SJ_EFORMAT;
  out->name = p;
  out->name_len = nl;
  out->id = sj_get_be32(out->sig);
  return 0;
}

/* A note text: non-empty, ends with a newline, UTF-8 without other control characters. */
static int text_ok(const char *text, size_t n) {
  return n > 0 && n <= SJ_NOTE_MAX_LEN && text[n - 1] == '\n' && sj_text_ok(text, n);
}

/* Calls fn on each signature line of p[0..n) (lines end in "\n"); stops at the first error. */
typedef int (*line_fn)(void *ctx, const sigline_t *line);
static int each_sig_line(const char *p, size_t n, line_fn fn, void *ctx) {
  sigline_t line;
  int count = 0, rv;
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    if (!nl || ++count > SJ_NOTE_MAX_SIGS)
      return SJ_EFORMAT;
    size_t len = (size_t)(nl - p);
    if ((rv = parse_sig_line(p, len, &line)) != 0 || (fn && (rv = fn(ctx, &line)) != 0))
      return rv;
    p += len + 1;
    n -= len + 1;
  }
  return 0;
}

int sj_note_split(const char *note, size_t n, size_t *text_len, size_t *sigs_off) {
  if (n < 3 || n > SJ_NOTE_MAX_LEN || note[n - 1] != '\n' || !sj_text_ok(note, n))
    return SJ_EFORMAT;
  size_t i = n - 2; /* find the last "\n\n": note[i] == note[i + 1] == '\n' */
  while (i > 0 && !(note[i] == '\n' && note[i + 1] == '\n'))
    i--;
  if (!(note[i] == '\n' && note[i + 1] == '\n') || i + 2 >= n)
    return SJ_EFORMAT; /* no blank line, or no signature after it */
  int rv = each_sig_line(note + i + 2, n - i - 2, NULL, NULL);
  if (rv)
    return rv;
  *text_len = i + 1;
  *sigs_off = i + 2;
  return 0;
}

/* ---- Signing --------------------------------------------------------------------------------- */

/* Appends "— <name> <base64(sig[0..len))>\n". */
static int append_sig_line(sj_buf_t *out, const char *name, const uint8_t *sig, size_t len) {
  char b64[SIG_BYTES_MAX * 4 / 3 + 4];
  sj_base64_encode(sig, len, b64);
  return sj_buf_printf(out, SJ_SIG_PREFIX "%s %s\n", name, b64);
}

int sj_note_sign(const char *text, size_t n, const sj_signer_t *const *signers, size_t nsigners,
                 sj_buf_t *out) {
  if (!text_ok(text, n))
    return SJ_EFORMAT;
  if (nsigners == 0 || nsigners > SJ_NOTE_MAX_SIGS)
    return SJ_EINVAL;
  sj_buf_t note = {0}; /* built aside so out is untouched on failure */
  int rv = sj_buf_append(&note, text, n);
  if (rv == 0)
    rv = sj_buf_append_u8(&note, '\n');
  for (size_t i = 0; rv == 0 && i < nsigners; i++) {
    uint8_t sig[NOTE_SIG_LEN];
    sj_put_be32(sig, signers[i]->id_note);
    crypto_sign_detached(sig + 4, NULL, (const uint8_t *)text, n, signers[i]->sk);
    rv = append_sig_line(&note, signers[i]->name, sig, sizeof sig);
  }
  if (rv == 0)
    rv = sj_buf_append(out, note.p, note.n);
  sj_buf_deinit(&note);
  return rv;
}

/* "cosignature/v1\ntime <timestamp>\n" || text: what a cosignature signs. */
static int cosig_message(const char *text, size_t n, uint64_t ts, sj_buf_t *msg) {
  int rv = sj_buf_printf(msg, "cosignature/v1\ntime %" PRIu64 "\n", ts);
  return rv ? rv : sj_buf_append(msg, text, n);
}

int sj_cosign(const sj_signer_t *s, const char *checkpoint_text, size_t n, uint64_t timestamp,
              sj_buf_t *line_out) {
  if (!text_ok(checkpoint_text, n))
    return SJ_EFORMAT;
  sj_buf_t msg = {0}, line = {0};
  uint8_t sig[COSIG_LEN];
  int rv = cosig_message(checkpoint_text, n, timestamp, &msg);
  if (rv == 0) {
    sj_put_be32(sig, s->id_cosig);
    sj_put_be64(sig + 4, timestamp);
    crypto_sign_detached(sig + 12, NULL, msg.p, msg.n, s->sk);
    rv = append_sig_line(&line, s->name, sig, sizeof sig);
  }
  if (rv == 0)
    rv = sj_buf_append(line_out, line.p, line.n);
  sj_buf_deinit(&msg);
  sj_buf_deinit(&line);
  return rv;
}

/* ---- Verifying ------------------------------------------------------------------------------- */

static int line_is_by(const sigline_t *l, const sj_verifier_t *v) {
  return l->id == v->id && l->name_len == strlen(v->name) &&
         memcmp(l->name, v->name, l->name_len) == 0;
}

/* Checks a line already matched to v against text. Returns 0, SJ_EVERIFY or -ENOMEM; the
 * timestamp of a cosignature goes to *ts. */
static int check_sig(const sj_verifier_t *v, const char *text, size_t n, const sigline_t *l,
                     uint64_t *ts) {
  if (v->type == SJ_KEY_ED25519) {
    if (l->len != NOTE_SIG_LEN)
      return SJ_EVERIFY;
    return crypto_sign_verify_detached(l->sig + 4, (const uint8_t *)text, n, v->pub) == 0
               ? 0
               : SJ_EVERIFY;
  }
  if (l->len != COSIG_LEN)
    return SJ_EVERIFY;
  sj_buf_t msg = {0};
  uint64_t t = sj_get_be64(l->sig + 4);
  int rv = cosig_message(text, n, t, &msg);
  if (rv == 0 && crypto_sign_verify_detached(l->sig + 12, msg.p, msg.n, v->pub) != 0)
    rv = SJ_EVERIFY;
  sj_buf_deinit(&msg);
  if (rv == 0 && ts)
    *ts = t;
  return rv;
}

typedef struct {
  const char *text;
  size_t text_len;
  const sj_verifier_t *const *v;
  size_t nv;
  uint64_t signed_by; /* bit i: verifiers[i] signed and verified */
  int bad;            /* a known key's signature failed */
} verify_ctx_t;

static int verify_line(void *ctx, const sigline_t *l) {
  verify_ctx_t *c = ctx;
  for (size_t i = 0; i < c->nv; i++) {
    if (!line_is_by(l, c->v[i]))
      continue;
    int rv = check_sig(c->v[i], c->text, c->text_len, l, NULL);
    if (rv == SJ_EVERIFY)
      c->bad = 1;
    else if (rv)
      return rv;
    else
      c->signed_by |= (uint64_t)1 << i;
  }
  return 0;
}

int sj_note_verify(const char *note, size_t n, const sj_verifier_t *const *verifiers, size_t nv,
                   size_t *text_len, uint64_t *verified) {
  if (nv > 64)
    return SJ_EINVAL;
  size_t tl, so;
  int rv = sj_note_split(note, n, &tl, &so);
  if (rv)
    return rv;
  verify_ctx_t c = {note, tl, verifiers, nv, 0, 0};
  if ((rv = each_sig_line(note + so, n - so, verify_line, &c)) != 0)
    return rv;
  if (c.bad || c.signed_by == 0)
    return SJ_EVERIFY;
  if (text_len)
    *text_len = tl;
  if (verified)
    *verified = c.signed_by;
  return 0;
}

int sj_cosig_verify(const sj_verifier_t *v, const char *checkpoint_text, size_t n, const char *line,
                    size_t line_len, uint64_t *timestamp) {
  if (v->type != SJ_KEY_COSIGNATURE_V1)
    return SJ_EINVAL;
  if (!text_ok(checkpoint_text, n))
    return SJ_EFORMAT;
  if (line_len && line[line_len - 1] == '\n')
    line_len--;
  sigline_t l;
  if (!sj_text_ok(line, line_len) || parse_sig_line(line, line_len, &l) != 0)
    return SJ_EFORMAT;
  if (!line_is_by(&l, v))
    return SJ_ENOTFOUND;
  if (l.len != COSIG_LEN)
    return SJ_EFORMAT;
  return check_sig(v, checkpoint_text, n, &l, timestamp);
}
