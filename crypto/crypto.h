/* crypto — pure functions, no I/O: RFC 9162 Merkle hashing and proofs, Ed25519 keys in the C2SP
 * signed-note formats, C2SP signed notes, tlog-checkpoints and tlog-cosignatures (cosignature/v1),
 * and the log entry codec (docs/FORMAT.md), so that the CLI verifies entries offline.
 *
 * Call sj_crypto_init() once at start (it calls sodium_init()). Everything else is thread-safe.
 * Errors are the codes of common/common.h. Out-parameters are written only on success. */
#ifndef SJ_CRYPTO_H
#define SJ_CRYPTO_H

#include "common/common.h"

#include <stddef.h>
#include <stdint.h>

#define SJ_HASH_LEN 32
#define SJ_MERKLE_MAX_PATH 64 /* a proof never has more than 64 hashes (tree sizes < 2^64) */

/* Returns 0, or SJ_EINVAL if libsodium cannot initialise. Idempotent. */
int sj_crypto_init(void);

/* ---- Hashing -----------------------------------------------------------------------------------
 * These cannot fail and may be called from any thread. out may alias the inputs. SHA-256 is
 * OpenSSL's (one context per thread, freed at thread exit), HMAC libsodium's; see
 * docs/BENCHMARKS.md for why. */
void sj_sha256(const void *p, size_t n, uint8_t out[SJ_HASH_LEN]);
/* HMAC-SHA256(key, msg) — used for personal identifiers in index keys (ARCHITECTURE §2). */
void sj_hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t n,
                    uint8_t out[SJ_HASH_LEN]);
/* RFC 9162 §2.1.1: SHA-256(0x00 || leaf). */
void sj_merkle_leaf_hash(const void *leaf, size_t n, uint8_t out[SJ_HASH_LEN]);
/* RFC 9162 §2.1.1: SHA-256(0x01 || l || r). */
void sj_merkle_node_hash(const uint8_t l[SJ_HASH_LEN], const uint8_t r[SJ_HASH_LEN],
                         uint8_t out[SJ_HASH_LEN]);

/* ---- Merkle trees (RFC 9162 §2.1) ---------------------------------------------------------------
 * The tree is addressed by perfect subtrees: (level, index) covers leaves
 * [index << level, (index + 1) << level); level 0 is the leaf hashes. A store keeps every perfect
 * subtree's hash; proof generation reads them through this callback, computing the roots of the
 * imperfect right-hand subtrees itself. The callback returns 0 and fills out, or a negative code
 * which the caller returns unchanged. */
typedef int (*sj_merkle_read_fn)(void *ctx, unsigned level, uint64_t index,
                                 uint8_t out[SJ_HASH_LEN]);

/* MTH of the first size leaves. size 0 gives SHA-256(""). Reads at most 64 hashes. */
int sj_merkle_root(sj_merkle_read_fn rd, void *ctx, uint64_t size, uint8_t out[SJ_HASH_LEN]);

/* Inclusion proof (RFC 9162 §2.1.3.1) of leaf index in a tree of size leaves, leaf side first.
 * path must hold SJ_MERKLE_MAX_PATH hashes; *path_len receives the count.
 * Errors: SJ_ERANGE (index >= size), the callback's errors. */
int sj_merkle_prove_inclusion(sj_merkle_read_fn rd, void *ctx, uint64_t index, uint64_t size,
                              uint8_t path[][SJ_HASH_LEN], size_t *path_len);

/* Consistency proof (RFC 9162 §2.1.4.1) between sizes first and second, 0 < first <= second.
 * first == second gives an empty proof. Errors: SJ_ERANGE, the callback's errors. */
int sj_merkle_prove_consistency(sj_merkle_read_fn rd, void *ctx, uint64_t first, uint64_t second,
                                uint8_t path[][SJ_HASH_LEN], size_t *path_len);

/* RFC 9162 §2.1.3.2. Returns 0 if leaf_hash is at index in the tree of size with root; SJ_EVERIFY
 * otherwise (including a path of the wrong length, index >= size). */
int sj_merkle_verify_inclusion(const uint8_t leaf_hash[SJ_HASH_LEN], uint64_t index, uint64_t size,
                               const uint8_t path[][SJ_HASH_LEN], size_t path_len,
                               const uint8_t root[SJ_HASH_LEN]);

/* RFC 9162 §2.1.4.2. Returns 0 if the tree of size second with root2 extends the tree of size
 * first with root1; SJ_EVERIFY otherwise. first == second requires an empty path and equal roots;
 * first == 0 is refused (SJ_EVERIFY): nothing to prove. */
int sj_merkle_verify_consistency(uint64_t first, uint64_t second,
                                 const uint8_t root1[SJ_HASH_LEN], const uint8_t root2[SJ_HASH_LEN],
                                 const uint8_t path[][SJ_HASH_LEN], size_t path_len);

/* The right frontier of a growing tree ("compact range"): for every set bit b of size, the root
 * of the perfect subtree of 2^b leaves that bit covers. Appending a leaf costs O(1) amortised
 * hashes and reports every perfect subtree it completes, which is what a store must persist. */
typedef struct {
  uint64_t size;
  uint8_t h[64][SJ_HASH_LEN]; /* h[b] valid iff bit b of size is set */
} sj_merkle_frontier_t;

/* Called for the leaf itself (level 0) and each perfect subtree the append completes, in order of
 * increasing level. A non-zero return aborts sj_merkle_frontier_append, which returns it; the
 * frontier is then unchanged. emit may be NULL. Appending to a frontier of size 2^64 - 1 is
 * SJ_ERANGE. */
typedef int (*sj_merkle_emit_fn)(void *ctx, unsigned level, uint64_t index,
                                 const uint8_t hash[SJ_HASH_LEN]);

void sj_merkle_frontier_init(sj_merkle_frontier_t *f);
/* Rebuilds the frontier of a tree of size leaves from stored perfect subtrees (<= 64 reads). */
int sj_merkle_frontier_load(sj_merkle_frontier_t *f, sj_merkle_read_fn rd, void *ctx,
                            uint64_t size);
int sj_merkle_frontier_append(sj_merkle_frontier_t *f, const uint8_t leaf_hash[SJ_HASH_LEN],
                              sj_merkle_emit_fn emit, void *ctx);
/* MTH of the frontier's tree; SHA-256("") when empty. */
void sj_merkle_frontier_root(const sj_merkle_frontier_t *f, uint8_t out[SJ_HASH_LEN]);

/* ---- Base64 (standard alphabet, padded) -------------------------------------------------------- */
/* Encoded length for n bytes, including the NUL. */
size_t sj_base64_len(size_t n);
/* Writes NUL-terminated base64 into out (sj_base64_len(n) bytes). Returns the length without NUL. */
size_t sj_base64_encode(const uint8_t *p, size_t n, char *out);
/* Strict decoding (padding required, no whitespace). Returns 0 and *outlen, SJ_EFORMAT, or
 * SJ_ETOOBIG if more than cap bytes would result. */
int sj_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* ---- Keys (C2SP signed-note) -------------------------------------------------------------------
 * Private key text: PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>
 * Verifier key text: <name>+<hex key id>+<base64(type || 32-byte public key)>, type 0x01 (Ed25519
 * note signature) or 0x04 (cosignature/v1); key id = SHA-256(name || "\n" || type || pub)[:4]
 * big-endian. Names are non-empty, without '+', whitespace or control characters. */
typedef struct sj_signer sj_signer_t;     /* owns its secret in sodium_malloc'd memory */
typedef struct sj_verifier sj_verifier_t; /* a public key, its name, type and key id */

#define SJ_KEY_ED25519 0x01
#define SJ_KEY_COSIGNATURE_V1 0x04

/* Generates a fresh key named name (NUL-terminated). Errors: SJ_EINVAL (bad name), -ENOMEM. */
int sj_signer_generate(const char *name, sj_signer_t **out);
/* The key with the given 32-byte Ed25519 seed (e.g. a test vector, or a seed kept elsewhere).
 * The seed is copied into protected memory; the caller wipes its own copy.
 * Errors: SJ_EINVAL (bad name), -ENOMEM. */
int sj_signer_from_seed(const char *name, const uint8_t seed[32], sj_signer_t **out);
/* Parses a private key text (surrounding whitespace/newline allowed). Errors: SJ_EFORMAT,
 * SJ_EVERIFY (key id does not match), -ENOMEM. */
int sj_signer_parse(const char *text, size_t n, sj_signer_t **out);
void sj_signer_free(sj_signer_t *s); /* wipes the secret; NULL is fine */
const char *sj_signer_name(const sj_signer_t *s); /* valid while s lives */
/* Writes the private key text (no newline) into out. The caller wipes out after use. */
int sj_signer_format(const sj_signer_t *s, sj_buf_t *out);
/* Writes the verifier key text of the given type (SJ_KEY_ED25519 or SJ_KEY_COSIGNATURE_V1). */
int sj_signer_vkey(const sj_signer_t *s, int type, sj_buf_t *out);
/* A verifier of the given type for s's public key; free with sj_verifier_free. The verifier does
 * not refer to s. Errors: SJ_EINVAL (type), -ENOMEM. */
int sj_signer_verifier(const sj_signer_t *s, int type, sj_verifier_t **out);

/* Parses a verifier key text of type 0x01 or 0x04. Errors: SJ_EFORMAT, SJ_EVERIFY (key id). */
int sj_verifier_parse(const char *text, size_t n, sj_verifier_t **out);
/* The same public key and name, as a verifier of the other type (0x01 <-> 0x04). */
int sj_verifier_derive(const sj_verifier_t *v, int type, sj_verifier_t **out);
void sj_verifier_free(sj_verifier_t *v);
const char *sj_verifier_name(const sj_verifier_t *v);
int sj_verifier_type(const sj_verifier_t *v);
uint32_t sj_verifier_key_id(const sj_verifier_t *v);
/* The verifier key text. */
int sj_verifier_format(const sj_verifier_t *v, sj_buf_t *out);

/* ---- Signed notes (C2SP signed-note) -----------------------------------------------------------
 * A note is text followed by "\n" (a blank line) and one or more signature lines
 * "— <name> <base64(key id || signature)>\n" (the dash is U+2014, bytes E2 80 94). The text is
 * non-empty and ends with "\n"; the whole note is well-formed UTF-8 whose only control character
 * is "\n". The text ends at the note's last blank line (as the reference Go implementation
 * splits it). Limits: at most SJ_NOTE_MAX_SIGS signature lines of at most 1024 bytes each, and
 * SJ_NOTE_MAX_LEN bytes in all; anything else is SJ_EFORMAT. */
#define SJ_NOTE_MAX_SIGS 100
#define SJ_NOTE_MAX_LEN (256u * 1024)

/* Appends text, the blank line and one signature line per signer (in the order given) to out.
 * Errors: SJ_EFORMAT (text not a valid note text), SJ_EINVAL (no signer, or more than
 * SJ_NOTE_MAX_SIGS), -ENOMEM. out is unchanged on failure. */
int sj_note_sign(const char *text, size_t n, const sj_signer_t *const *signers, size_t nsigners,
                 sj_buf_t *out);

/* Verifies a note against known verifiers (type 0x01 verify note signatures; type 0x04 verify
 * cosignature/v1 lines, whose message is built from the text as that spec says). Signature lines
 * whose (name, key id) match no verifier are ignored. Returns 0 when at least one known verifier
 * signed and every signature by a known verifier verifies; then *text_len (if not NULL) is the
 * length of the text part and *verified (if not NULL) has bit i set for verifiers[i] that signed
 * (nv <= 64, else SJ_EINVAL). Errors: SJ_EFORMAT (malformed note, even in a line by an unknown
 * key), SJ_EVERIFY (a known key's signature is bad or of the wrong length, or no known key signed),
 * -ENOMEM. */
int sj_note_verify(const char *note, size_t n, const sj_verifier_t *const *verifiers, size_t nv,
                   size_t *text_len, uint64_t *verified);

/* Splits a note without verifying: *text_len = length of the text (up to and including its last
 * "\n"), *sigs_off = offset of the first signature line. Errors: SJ_EFORMAT. */
int sj_note_split(const char *note, size_t n, size_t *text_len, size_t *sigs_off);

/* ---- Checkpoints (C2SP tlog-checkpoint) --------------------------------------------------------- */
#define SJ_ORIGIN_MAX 255
typedef struct {
  char origin[SJ_ORIGIN_MAX + 1];
  uint64_t size;
  uint8_t root[SJ_HASH_LEN];
} sj_checkpoint_t;

/* Appends "<origin>\n<size>\n<base64 root>\n" to out. Errors: SJ_EINVAL (origin empty, not
 * NUL-terminated within SJ_ORIGIN_MAX + 1 bytes, or holding a newline or control character),
 * -ENOMEM. */
int sj_checkpoint_format(const sj_checkpoint_t *c, sj_buf_t *out);
/* Parses a checkpoint text (the note's text part; extension lines after the third are allowed and
 * ignored). Errors: SJ_EFORMAT (e.g. leading zeros in size, bad base64, root not 32 bytes). */
int sj_checkpoint_parse(const char *text, size_t n, sj_checkpoint_t *out);

/* ---- Cosignatures (C2SP tlog-cosignature, cosignature/v1) ---------------------------------------
 * Signed message: "cosignature/v1\ntime <timestamp>\n" || checkpoint text. Line:
 * "— <name> <base64(key id || 8-byte big-endian timestamp || 64-byte signature)>\n", key id of
 * the signer's 0x04 verifier key. */
/* Appends s's cosignature line for checkpoint_text (a note text) at timestamp (seconds since the
 * epoch) to line_out. Errors: SJ_EFORMAT (not a note text), -ENOMEM. */
int sj_cosign(const sj_signer_t *s, const char *checkpoint_text, size_t n, uint64_t timestamp,
              sj_buf_t *line_out);
/* Verifies one cosignature line (with or without its trailing "\n") against a 0x04 verifier.
 * Returns 0 and *timestamp (if not NULL), SJ_ENOTFOUND (line is by another key), SJ_EFORMAT,
 * SJ_EVERIFY, SJ_EINVAL (v is not a 0x04 verifier), -ENOMEM. */
int sj_cosig_verify(const sj_verifier_t *v, const char *checkpoint_text, size_t n,
                    const char *line, size_t line_len, uint64_t *timestamp);

/* ---- Log entries (docs/FORMAT.md) --------------------------------------------------------------
 * An entry is a header and a body. The header is what the Merkle leaf hashes; it commits to the
 * body by SHA-256, so a body may be absent where it is not shared. */
#define SJ_ENTRY_VERSION 1
#define SJ_ENTRY_MAX_KEYS 1024    /* index keys per entry */
#define SJ_ENTRY_MAX_KEY_LEN 1024 /* bytes per index key */
#define SJ_ENTRY_MAX_TYPE_LEN 64
#define SJ_ENTRY_MAX_HEADER (1u << 20)

typedef enum { SJ_KIND_CREDIT = 1, SJ_KIND_TRACE = 2 } sj_kind_t;
typedef enum {
  SJ_DISCLOSE_PUBLIC = 0,
  SJ_DISCLOSE_AUTHORITIES = 1,
  SJ_DISCLOSE_SUBJECT = 2
} sj_disclosure_t;
typedef enum {
  SJ_KEY_USCC = 1,    /* 18-character unified social credit code, in clear */
  SJ_KEY_PERSON = 2,  /* HMAC-SHA256(region-shared key, resident identity number): 32 bytes */
  SJ_KEY_EPC = 3,     /* a GS1 identifier as canonical EPC URN (urn:epc:id:... / urn:epc:class:...) */
  SJ_KEY_OTHER_ID = 4 /* another subject identifier, in clear (e.g. an organisation code) */
} sj_key_type_t;

typedef struct {
  uint8_t type;    /* sj_key_type_t */
  uint16_t len;    /* 1..SJ_ENTRY_MAX_KEY_LEN */
  const uint8_t *p; /* borrowed */
} sj_index_key_t;

typedef struct {
  uint8_t version;           /* SJ_ENTRY_VERSION */
  uint32_t region;           /* GB/T 2260 code, e.g. 310000 */
  uint64_t seq;              /* leaf index, from 0 */
  uint64_t time_ms;          /* origin's clock, ms since the epoch */
  uint8_t prev[SJ_HASH_LEN]; /* previous entry's leaf hash; all zero for seq 0 */
  uint8_t kind;              /* sj_kind_t */
  uint8_t disclosure;        /* sj_disclosure_t */
  uint8_t type_len;          /* record type, e.g. "penalty", "ObjectEvent" */
  const char *type;          /* borrowed, not NUL-terminated */
  uint8_t body_hash[SJ_HASH_LEN];
  uint32_t body_len;
  uint16_t nkeys;
  const sj_index_key_t *keys; /* borrowed array of nkeys */
} sj_entry_header_t;

/* Appends the encoded header to out (docs/FORMAT.md §1); out is unchanged on failure.
 * Errors: SJ_EINVAL (a field outside its range: version, region not 100000..999999, kind,
 * disclosure, type_len not 1..64, seq 0 with a non-zero prev, more than SJ_ENTRY_MAX_KEYS keys, a
 * key of unknown type or of length 0 / over SJ_ENTRY_MAX_KEY_LEN / other than 32 for
 * SJ_KEY_PERSON, or a header over SJ_ENTRY_MAX_HEADER), -ENOMEM. */
int sj_entry_encode(const sj_entry_header_t *h, sj_buf_t *out);
/* Strict decoding of exactly n bytes: every length checked against the bytes present, unknown
 * versions, kinds, disclosures and key types refused, trailing bytes refused; whatever the
 * encoder refuses, the decoder refuses too, so an accepted header re-encodes to the same bytes.
 * Pointers in *out and keys borrow from p. keys must hold keys_cap entries; more keys than that is
 * SJ_ETOOBIG. *out is written only on success; keys[] may be overwritten on failure.
 * Errors: SJ_ETRUNC (input ends early), SJ_EFORMAT, SJ_EVERSION (first byte not
 * SJ_ENTRY_VERSION), SJ_ETOOBIG (n over SJ_ENTRY_MAX_HEADER, or keys_cap too small). */
int sj_entry_decode(const uint8_t *p, size_t n, sj_entry_header_t *out, sj_index_key_t *keys,
                    size_t keys_cap);

/* Checks that body (n bytes) is the body the header commits to: length and SHA-256.
 * Returns 0 or SJ_EVERIFY. */
int sj_entry_check_body(const sj_entry_header_t *h, const uint8_t *body, size_t n);

/* The entries stream (GET /v1/logs/{region}/entries): a sequence of frames
 *   u32 header length || header || u32 body length or 0xFFFFFFFF when the body is withheld || body
 * all big-endian. */
#define SJ_FRAME_NO_BODY 0xFFFFFFFFu
/* Appends one frame to out (unchanged on failure). Errors: SJ_EINVAL (hn 0 or over
 * SJ_ENTRY_MAX_HEADER, bn >= SJ_FRAME_NO_BODY), -ENOMEM. */
int sj_frame_append(sj_buf_t *out, const uint8_t *hdr, size_t hn, const uint8_t *body, size_t bn,
                    int has_body);
/* Reads one frame from p[0..n). Returns the bytes consumed (> 0), 0 if more bytes are needed, or
 * SJ_EFORMAT (header length 0) / SJ_ETOOBIG (header over SJ_ENTRY_MAX_HEADER or body over
 * max_body). hdr and body borrow from p (body->p is NULL when withheld); the out-parameters are
 * written only when a whole frame is returned. */
long sj_frame_next(const uint8_t *p, size_t n, size_t max_body, sj_bytes_t *hdr, sj_bytes_t *body,
                   int *has_body);

#endif
