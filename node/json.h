/* node/json — json_loadb, faster: the JSON parse of the ingest path (record submissions, EPCIS
 * capture documents) and of the bodies the node reads back (credit facts of replicated entries,
 * computed reports and journeys, public masking). It owns nothing but the parse: the tree it
 * returns is an ordinary jansson tree, and jansson stays the JSON API everywhere else.
 *
 * Contract: sj_json_loadb(buf, len, flags, error) answers exactly what
 * json_loadb(buf, len, flags, error) answers — the same verdict, the same tree (values, key
 * order), and on a refusal the same json_error_t (text, line, column, position, code), because
 * every refusal is jansson's own. yajl 2.1 only lexes (its SAX callbacks build the jansson tree
 * with jansson's checked constructors, so jansson's UTF-8 rules apply to every string and key
 * that is not plain ASCII, which is valid UTF-8 under any rule);
 * whenever yajl refuses the input, or the input holds anything on which the two libraries might
 * differ (any backslash-u escape, a duplicate key, a number that is not finite or whose text is
 * not JSON's number grammar, a vertical tab or form feed, nesting deeper than SJ_JSON_FAST_DEPTH,
 * an unsupported flag, an allocation failure), what was built is freed and plain json_loadb
 * answers. The fast path implements the flags JSON_REJECT_DUPLICATES, JSON_DECODE_INT_AS_REAL and
 * JSON_DECODE_ANY; any other flag always goes to json_loadb.
 *
 * Thread-safe (no shared state); buf is only read, need not be NUL-terminated, and is not
 * referenced after the call. The caller owns the returned tree (json_decref). */
#ifndef SJ_NODE_JSON_H
#define SJ_NODE_JSON_H

#include <jansson.h>
#include <stddef.h>

/* Deeper documents are left to jansson (its own limit is JSON_PARSER_MAX_DEPTH, 2048). */
#define SJ_JSON_FAST_DEPTH 32

/* As json_loadb (see above): a new tree, or NULL with *error filled in (error may be NULL). */
json_t *sj_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);

/* The fast path alone, for tests and the fuzz harness: the tree json_loadb would return, or NULL
 * when the fast path cannot vouch for the answer (sj_json_loadb then asks json_loadb). Never
 * touches an error struct. */
json_t *sj_json_loadb_fast(const char *buf, size_t len, size_t flags);

#endif
