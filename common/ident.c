/* common/ident.c — checks of the identifiers records carry: the unified social credit code
 * (GB 32100-2015), the resident identity number (GB 11643-1999) and GS1 keys (GTIN, GLN, SSCC:
 * the GS1 General Specifications' mod-10 check digit).
 *
 * Every check is pure, reentrant and reads exactly n bytes (no NUL termination needed). Each
 * reports the first rule broken in the order length, characters, structure, check character, so a
 * value always gets the one code a reader would expect first. */
#include "common/common.h"

#include <string.h>
#include <time.h>

const char *sj_id_code_name(sj_id_code_t c) {
  switch (c) {
  case SJ_ID_OK:
    return "OK";
  case SJ_ID_USCC_LENGTH:
    return "USCC_LENGTH";
  case SJ_ID_USCC_CHARSET:
    return "USCC_CHARSET";
  case SJ_ID_USCC_STRUCTURE:
    return "USCC_STRUCTURE";
  case SJ_ID_USCC_CHECKSUM:
    return "USCC_CHECKSUM";
  case SJ_ID_ID_LENGTH:
    return "ID_LENGTH";
  case SJ_ID_ID_CHARSET:
    return "ID_CHARSET";
  case SJ_ID_ID_BIRTHDATE_INVALID:
    return "ID_BIRTHDATE_INVALID";
  case SJ_ID_ID_CHECKSUM:
    return "ID_CHECKSUM";
  case SJ_ID_GTIN_LENGTH:
    return "GTIN_LENGTH";
  case SJ_ID_GTIN_CHARSET:
    return "GTIN_CHARSET";
  case SJ_ID_GTIN_CHECKSUM:
    return "GTIN_CHECKSUM";
  }
  return "UNKNOWN";
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* ---- Unified social credit code (GB 32100-2015) ------------------------------------------------
 * 18 characters: registration authority (1), organisation category (1), administrative division
 * (6 digits), organisation code (9, GB 11714), check character (1). The alphabet is the digits and
 * the capitals without I, O, Z, S, V (31 symbols); a symbol's value is its position in it. */
static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

static int uscc_value(char c) {
  const char *p = c ? strchr(uscc_alphabet, c) : NULL;
  return p ? (int)(p - uscc_alphabet) : -1;
}

/* Organisation categories each registration authority defines (GB 32100-2015 table 1 and its
 * later additions A and N). Category 9 ("other") exists for every authority but the market
 * regulator (9), whose categories are 1 enterprise, 2 individual business, 3 farmers' cooperative.
 */
static int uscc_structure_ok(char authority, char category) {
  static const struct {
    char authority;
    const char *categories;
  } table[] = {
      {'1', "1239"}, {'2', "19"}, {'3', "123459"}, {'4', "19"}, {'5', "1239"}, {'6', "129"},
      {'7', "129"},  {'8', "19"}, {'9', "123"},    {'A', "19"}, {'N', "1239"}, {'Y', "1"},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].authority == authority)
      return category != 0 && strchr(table[i].categories, category) != NULL;
  return 0;
}

sj_id_code_t sj_uscc_check(const char *s, size_t n) {
  if (n != 18)
    return SJ_ID_USCC_LENGTH;
  for (size_t i = 0; i < n; i++)
    if (uscc_value(s[i]) < 0)
      return SJ_ID_USCC_CHARSET;
  if (!uscc_structure_ok(s[0], s[1]))
    return SJ_ID_USCC_STRUCTURE;
  for (size_t i = 2; i < 8; i++) /* the division code is numeric (GB/T 2260) */
    if (!is_digit(s[i]))
      return SJ_ID_USCC_STRUCTURE;
  /* Weights are 3^i mod 31; the check value makes the weighted sum a multiple of 31. */
  unsigned sum = 0, w = 1;
  for (size_t i = 0; i < 17; i++) {
    sum += (unsigned)uscc_value(s[i]) * w;
    w = w * 3 % 31;
  }
  unsigned check = (31 - sum % 31) % 31;
  return uscc_alphabet[check] == s[17] ? SJ_ID_OK : SJ_ID_USCC_CHECKSUM;
}

/* ---- Resident identity number (GB 11643-1999) ---------------------------------------------------
 * 18 characters: address code (6 digits), birth date YYYYMMDD (8), sequence (3), check (digit or
 * capital X). The check is ISO 7064 MOD 11-2. A lower-case x is refused (ID_CHARSET): the standard
 * writes X, and the HMAC index key of a person must come from one spelling only. */
static unsigned digits_value(const char *s, size_t n) {
  unsigned v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (unsigned)(s[i] - '0');
  return v;
}

static int is_leap(unsigned y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m) {
  static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Today's date as YYYYMMDD in China Standard Time (UTC+8): a child born this morning in Shanghai
 * must not be refused because UTC still says yesterday. */
static unsigned today_cst(void) {
  time_t t = time(NULL) + 8 * 3600;
  struct tm tm;
  if (!gmtime_r(&t, &tm))
    return 99991231; /* cannot tell: do not refuse on the upper bound */
  return (unsigned)(tm.tm_year + 1900) * 10000 + (unsigned)(tm.tm_mon + 1) * 100 +
         (unsigned)tm.tm_mday;
}

static int birthdate_ok(const char *s) {
  unsigned y = digits_value(s, 4), m = digits_value(s + 4, 2), d = digits_value(s + 6, 2);
  if (y < 1850 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
    return 0;
  return y * 10000 + m * 100 + d <= today_cst();
}

sj_id_code_t sj_resident_id_check(const char *s, size_t n) {
  if (n != 18)
    return SJ_ID_ID_LENGTH;
  for (size_t i = 0; i < 17; i++)
    if (!is_digit(s[i]))
      return SJ_ID_ID_CHARSET;
  if (!is_digit(s[17]) && s[17] != 'X')
    return SJ_ID_ID_CHARSET;
  if (!birthdate_ok(s + 6))
    return SJ_ID_ID_BIRTHDATE_INVALID;
  /* Weight of position i (from the left, 0-based) is 2^(17-i) mod 11. */
  unsigned sum = 0, w = 1;
  for (size_t i = 17; i-- > 0;) {
    w = w * 2 % 11;
    sum += (unsigned)(s[i] - '0') * w;
  }
  static const char checks[] = "10X98765432";
  return checks[sum % 11] == s[17] ? SJ_ID_OK : SJ_ID_ID_CHECKSUM;
}

/* ---- GS1 keys
 * ------------------------------------------------------------------------------------ The check
 * digit makes the sum of all digits, weighted 3 and 1 alternately from the right (the check digit
 * itself weighing 1), a multiple of 10. */
int sj_gs1_check_digit(const char *s, size_t n) {
  unsigned sum = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[n - 1 - i];
    if (!is_digit(c))
      return -1;
    sum += (unsigned)(c - '0') * (i % 2 == 0 ? 3u : 1u);
  }
  return '0' + (int)((10 - sum % 10) % 10);
}

sj_id_code_t sj_gtin_check(const char *s, size_t n) {
  if (n != 8 && n != 12 && n != 13 && n != 14)
    return SJ_ID_GTIN_LENGTH;
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i]))
      return SJ_ID_GTIN_CHARSET;
  return sj_gs1_check_digit(s, n - 1) == s[n - 1] ? SJ_ID_OK : SJ_ID_GTIN_CHECKSUM;
}
