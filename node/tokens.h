/* node/tokens — the tokens file and who a bearer token says the caller is.
 *
 * File format, one token a line ('#' starts a comment; blank lines ignored):
 *   submit    <sha256-hex of the exact ASCII token> [label]
 *   authority <sha256-hex> [label]
 *   subject   <sha256-hex> <USCC or resident identity number> [label]
 *   peer      <sha256-hex> <region code> [label]
 * Only hashes are stored; a presented token is hashed and compared in constant time against every
 * line. Loop thread only (reloaded on SIGHUP by swapping the table). */
#ifndef SJ_NODE_TOKENS_H
#define SJ_NODE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  SJ_ROLE_PUBLIC = 0, /* no token */
  SJ_ROLE_SUBMIT,
  SJ_ROLE_AUTHORITY,
  SJ_ROLE_SUBJECT,
  SJ_ROLE_PEER,
} sj_role_t;

typedef struct {
  sj_role_t role;
  uint8_t hash[32];
  char arg[40];   /* subject id or peer region; "" otherwise */
  char label[64]; /* for logs and the audit trail */
  double bucket;  /* rate limit: requests left (node/api_util.c); starts full */
  uint64_t bucket_us; /* when bucket was last refilled; 0 = never used */
} sj_token_t;

typedef struct sj_tokens sj_tokens_t;

/* Loads path. On a malformed line returns SJ_EFORMAT and, if errline is not NULL, its number.
 * Errors: -errno (cannot read), SJ_EFORMAT, -ENOMEM. */
int sj_tokens_load(const char *path, sj_tokens_t **out, int *errline);
/* An empty table (every caller is the public). */
int sj_tokens_empty(sj_tokens_t **out);
void sj_tokens_free(sj_tokens_t *t);
size_t sj_tokens_count(const sj_tokens_t *t);

/* Finds the token (n bytes, as presented after "Bearer "). Returns the matching entry (borrowed,
 * valid while t lives; its rate-limit fields are the caller's to update) or NULL. Takes the same time whether or not, and wherever, it matches. */
sj_token_t *sj_tokens_find(sj_tokens_t *t, const char *token, size_t n);

/* ---- The public's rate limit: a token bucket per source address ------------------------------
 * A bounded table (SJ_ADDR_SLOTS buckets, 4-way set-associative, keyed by a keyed hash of the
 * address): memory is fixed whatever the number of addresses. An address not in its set takes a
 * slot whose bucket would be full again by now (as good as new), else the least recently used one
 * (which then starts afresh when it returns). Loop thread only. */
#define SJ_ADDR_SLOTS 8192
typedef struct sj_addr_limiter sj_addr_limiter_t;
/* rate requests per second per address, bursts of twice that (rate > 0). Errors: -ENOMEM. */
int sj_addr_limiter_new(double rate, sj_addr_limiter_t **out);
void sj_addr_limiter_free(sj_addr_limiter_t *l);
/* Takes one request from the bucket of addr (n bytes, up to 47; longer is cut) at now_us.
 * Returns 0 when allowed; otherwise the seconds until the next request is (>= 1), with *first set
 * to 1 on the first refusal since the bucket last had room (log once per episode), else 0. */
unsigned sj_addr_limiter_take(sj_addr_limiter_t *l, const char *addr, size_t n, uint64_t now_us,
                              int *first);

const char *sj_role_name(sj_role_t r);
/* Parses "submit", "authority", "subject", "peer". Returns 0 or SJ_EINVAL. */
int sj_role_parse(const char *s, sj_role_t *out);

#endif
