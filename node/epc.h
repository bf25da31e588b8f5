/* node/epc — GS1 identifiers as trace index keys: parses an EPC pure-identity URN (GS1 Tag Data
 * Standard) or a GS1 Digital Link URI, checks digit counts, check digits and serial characters,
 * and writes the one canonical EPC URN every spelling of the same identifier maps to.
 *
 * Accepted forms (docs/API.md, "Trace codes"):
 *   urn:epc:id:sgtin:CP.IR.Serial      https://host/01/{GTIN}/21/{serial}   (optionally /10/{lot})
 *   urn:epc:class:lgtin:CP.IR.Lot      https://host/01/{GTIN}/10/{lot}
 *   urn:epc:idpat:sgtin:CP.IR.*        https://host/01/{GTIN}
 *   urn:epc:id:sscc:CP.SerialRef       https://host/00/{SSCC}
 *   urn:epc:id:sgln:CP.LocRef.Ext      https://host/414/{GLN}[/254/{ext}]
 *   urn:epc:id:grai:CP.AssetType.Ser   https://host/8003/{0 + GRAI-13 + serial}
 * A Digital Link URI does not say how long the GS1 company prefix is, so the canonical form does
 * not depend on it: the company prefix field is always the first 7 digits of the GS1 key (GTIN-14
 * without indicator digit, SSCC without extension digit, GLN, GRAI). An EPC URN written with any
 * other split is re-split the same way. Lot, serial and extension are percent-decoded, checked
 * against the GS1 AI 82 character set and written with the Tag Data Standard escapes
 * (%22 %25 %26 %2F %3C %3E %3F, upper-case hex, nothing else escaped).
 *
 * Pure functions; thread-safe; never allocate. */
#ifndef SJ_NODE_EPC_H
#define SJ_NODE_EPC_H

#include <stddef.h>

/* Longest canonical URN: "urn:epc:class:lgtin:" + 7 + "." + 6 + "." + 20 characters each escaped
 * to 3 = 94 bytes. */
#define SJ_EPC_MAX 128

/* Why a value is not an accepted GS1 identifier. sj_epc_code_name() gives the API error code. */
typedef enum {
  SJ_EPC_OK = 0,
  SJ_EPC_FORMAT, /* EPC_FORMAT: neither an EPC URN nor a GS1 Digital Link URI, or malformed */
  SJ_EPC_SCHEME, /* EPC_SCHEME_UNSUPPORTED: another urn:epc scheme (giai, gdti, ...) */
  SJ_EPC_DIGITS, /* EPC_DIGITS: a numeric field has a non-digit or the wrong digit count */
  SJ_EPC_PREFIX_LENGTH, /* EPC_COMPANY_PREFIX_LENGTH: company prefix not 6..12 digits */
  SJ_EPC_SERIAL,        /* EPC_SERIAL_INVALID: serial/lot/extension empty, too long, bad char */
  SJ_EPC_DL_PATH,       /* DL_PATH_INVALID: unknown, repeated or misordered Digital Link AIs */
  SJ_EPC_GTIN_LENGTH,   /* GTIN_LENGTH: a Digital Link GTIN not 8, 12, 13 or 14 digits */
  SJ_EPC_GTIN_CHARSET,  /* GTIN_CHARSET */
  SJ_EPC_GTIN_CHECKSUM, /* GTIN_CHECKSUM */
  SJ_EPC_CHECK_DIGIT,   /* GS1_CHECK_DIGIT: SSCC, GLN or GRAI check digit wrong */
} sj_epc_code_t;

typedef enum {
  SJ_EPC_SGTIN = 1,  /* one trade item: GTIN + serial */
  SJ_EPC_LGTIN,      /* a lot (batch) of a trade item: GTIN + lot */
  SJ_EPC_GTIN_CLASS, /* every instance of a GTIN (urn:epc:idpat:sgtin:CP.IR.*) */
  SJ_EPC_SSCC,       /* a logistic unit (pallet, container) */
  SJ_EPC_SGLN,       /* a location */
  SJ_EPC_GRAI,       /* a returnable asset (crate, bin) */
} sj_epc_scheme_t;

typedef struct {
  sj_epc_scheme_t scheme;
  size_t len;               /* strlen(urn) */
  char urn[SJ_EPC_MAX + 1]; /* canonical EPC URN, NUL-terminated */
} sj_epc_t;

/* Canonicalises the n bytes at s (no NUL needed). Returns SJ_EPC_OK and fills *out, or the first
 * rule broken (*out untouched). */
sj_epc_code_t sj_epc_canonical(const char *s, size_t n, sj_epc_t *out);

/* The stable API error code ("EPC_DIGITS", "GTIN_CHECKSUM", ...); "OK" for SJ_EPC_OK. Static. */
const char *sj_epc_code_name(sj_epc_code_t c);
/* A one-line English explanation of the rule broken. Static. */
const char *sj_epc_code_message(sj_epc_code_t c);

#endif
