/* common — what every Sanjiao module shares and nothing more: error codes and sj_strerror(),
 * the logging macros, growable byte buffers, and the checks of the identifiers the records carry
 * (unified social credit code, resident identity number, GS1 check digits).
 *
 * Depends on nothing of ours. Never prints except through the logger; never exits. */
#ifndef SJ_COMMON_H
#define SJ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* ---- Errors ------------------------------------------------------------------------------------
 * A function that can fail returns int: 0 on success, negative on failure. System errors are
 * -errno; Sanjiao's own codes live in -1999..-1000. */
enum {
  SJ_EINVAL = -1001,    /* an argument or an input is invalid */
  SJ_ETRUNC = -1002,    /* input ends before the length it declares */
  SJ_EFORMAT = -1003,   /* input is malformed */
  SJ_EVERSION = -1004,  /* unknown format version */
  SJ_EVERIFY = -1005,   /* a signature, hash or proof does not verify */
  SJ_ENOTFOUND = -1006, /* no such entry, key or route */
  SJ_ESEQ = -1007,      /* sequence number does not follow the log */
  SJ_ECHAIN = -1008,    /* chain link (previous leaf hash) does not follow the log */
  SJ_ESTORE = -1009,    /* the storage engine failed (details logged where handled) */
  SJ_ETOOBIG = -1010,   /* input exceeds a configured limit */
  SJ_EBUSY = -1011,     /* a resource is in use (e.g. a batch already open for a region) */
  SJ_ERANGE = -1012,    /* index or size out of range for the log */
  SJ_EPROTO = -1013,    /* peer violated a protocol */
  SJ_ECLOSED = -1014,   /* the stream or connection is closed */
  SJ_ETIMEDOUT = -1015, /* an operation timed out */
  SJ_EEXIST = -1016,    /* already exists */
  SJ_EPERM = -1017,     /* not permitted (e.g. a key file readable by others) */
  SJ_ENOSPACE = -1018,  /* no space left on the storage device */
};

/* Returns a static, human-readable description of rv (ours or -errno). Never NULL. */
const char *sj_strerror(int rv);

/* ---- Logging -----------------------------------------------------------------------------------
 * One line per event on stderr: time, level, subsystem, message. Libraries crypto, storage and
 * common never log; net and node log where an error is handled, once. Thread-safe. */
typedef enum { SJ_LOG_LEVEL_ERR = 0, SJ_LOG_LEVEL_WARN, SJ_LOG_LEVEL_INFO, SJ_LOG_LEVEL_DEBUG } sj_log_level_t;

/* Sets the most verbose level printed (default INFO). */
void sj_log_set_level(sj_log_level_t level);
/* Enables DEBUG output for a comma-separated list of subsystems ("net,writer"; "all"). The string
 * is copied. */
void sj_log_set_debug(const char *subsystems);
int sj_log_enabled(sj_log_level_t level, const char *subsys);
void sj_log_write(sj_log_level_t level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SJ_LOG_(lvl, subsys, ...)                                                                  \
  do {                                                                                             \
    if (sj_log_enabled((lvl), (subsys)))                                                           \
      sj_log_write((lvl), (subsys), __VA_ARGS__);                                                  \
  } while (0)
#define SJ_LOG_ERR(subsys, ...) SJ_LOG_(SJ_LOG_LEVEL_ERR, subsys, __VA_ARGS__)
#define SJ_LOG_WARN(subsys, ...) SJ_LOG_(SJ_LOG_LEVEL_WARN, subsys, __VA_ARGS__)
#define SJ_LOG_INFO(subsys, ...) SJ_LOG_(SJ_LOG_LEVEL_INFO, subsys, __VA_ARGS__)
#define SJ_LOG_DEBUG(subsys, ...) SJ_LOG_(SJ_LOG_LEVEL_DEBUG, subsys, __VA_ARGS__)

/* ---- Byte buffers ------------------------------------------------------------------------------ */

/* A borrowed byte range. Lengths travel with pointers. */
typedef struct {
  const uint8_t *p;
  size_t n;
} sj_bytes_t;

/* A zeroed array of n elements of size bytes (free() it), or NULL, also when n * size overflows.
 * Unlike calloc, a small request is served from glibc's per-thread cache: calloc always takes the
 * arena's own path, which in a node holding gigabytes of block cache costs far more (a lookup's
 * folds: 3 us of 66 at 10^7 entries; bench/results/lookup-notes.md, session 5). */
void *sj_zalloc(size_t n, size_t size);

/* A growable, owned byte buffer. Zero-initialise or sj_buf_init() before use; sj_buf_deinit()
 * frees. p is NULL while cap is 0. The buffer is always kept NUL-terminated past n (not counted)
 * so text can be handed to printf-like APIs, but nothing relies on it for length. */
typedef struct {
  uint8_t *p;
  size_t n;
  size_t cap;
} sj_buf_t;

void sj_buf_init(sj_buf_t *b);
void sj_buf_deinit(sj_buf_t *b);
/* Ensures room for extra more bytes. Returns 0 or -ENOMEM (b unchanged). */
int sj_buf_reserve(sj_buf_t *b, size_t extra);
int sj_buf_append(sj_buf_t *b, const void *p, size_t n);
int sj_buf_append_str(sj_buf_t *b, const char *s);
int sj_buf_append_u8(sj_buf_t *b, uint8_t v);
int sj_buf_append_be16(sj_buf_t *b, uint16_t v);
int sj_buf_append_be32(sj_buf_t *b, uint32_t v);
int sj_buf_append_be64(sj_buf_t *b, uint64_t v);
int sj_buf_printf(sj_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sj_buf_reset(sj_buf_t *b); /* n = 0, keeps memory */

/* Big-endian helpers for fixed-width fields. */
void sj_put_be16(uint8_t *p, uint16_t v);
void sj_put_be32(uint8_t *p, uint32_t v);
void sj_put_be64(uint8_t *p, uint64_t v);
uint16_t sj_get_be16(const uint8_t *p);
uint32_t sj_get_be32(const uint8_t *p);
uint64_t sj_get_be64(const uint8_t *p);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void sj_hex_encode(const uint8_t *p, size_t n, char *out);
/* Decodes exactly 2*n hex digits into out[n]. Returns 0 or SJ_EFORMAT. */
int sj_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n);

/* ---- Identifier checks -------------------------------------------------------------------------
 * Each check returns SJ_ID_OK or the first rule the value breaks, in the order length,
 * characters, structure (dates, codes), check character. The names sj_id_code_name() returns
 * ("USCC_CHECKSUM", ...) are the error codes of the API and of tests/vectors/identifiers. */
typedef enum {
  SJ_ID_OK = 0,
  SJ_ID_USCC_LENGTH,       /* not 18 characters */
  SJ_ID_USCC_CHARSET,      /* a character outside 0-9 and A-Z without I, O, Z, S, V */
  SJ_ID_USCC_STRUCTURE,    /* registration authority / organisation category not defined */
  SJ_ID_USCC_CHECKSUM,     /* GB 32100-2015 check character wrong */
  SJ_ID_ID_LENGTH,         /* resident identity number not 18 characters */
  SJ_ID_ID_CHARSET,        /* not 17 digits followed by a digit or X */
  SJ_ID_ID_BIRTHDATE_INVALID, /* characters 7-14 are not a real date between 1850 and today */
  SJ_ID_ID_CHECKSUM,       /* GB 11643-1999 (ISO 7064 MOD 11-2) check character wrong */
  SJ_ID_GTIN_LENGTH,       /* not 8, 12, 13 or 14 digits */
  SJ_ID_GTIN_CHARSET,      /* not all digits */
  SJ_ID_GTIN_CHECKSUM,     /* GS1 mod-10 check digit wrong */
} sj_id_code_t;

const char *sj_id_code_name(sj_id_code_t c); /* static string; "OK" for SJ_ID_OK */

sj_id_code_t sj_uscc_check(const char *s, size_t n);
sj_id_code_t sj_resident_id_check(const char *s, size_t n);
/* GTIN-8/12/13/14 (the check digit is the last digit). */
sj_id_code_t sj_gtin_check(const char *s, size_t n);
/* The GS1 mod-10 check digit ('0'..'9') for the n digits in s (without the check digit); -1 if a
 * character is not a digit. Serves GTINs, GLNs and SSCCs alike. */
int sj_gs1_check_digit(const char *s, size_t n);

#endif
