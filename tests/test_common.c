/* tests/test_common.c — the common module: identifier checks (against the shared vectors in
 * $SJ_TESTDATA/identifiers/vectors.json and hand-computed cases), code names, buffers and hex. */
#include "common/common.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load_vectors(void) {
  const char *dir = getenv("SJ_TESTDATA");
  ck_assert_msg(dir != NULL, "SJ_TESTDATA not set");
  char path[1024];
  snprintf(path, sizeof path, "%s/identifiers/vectors.json", dir);
  json_error_t err;
  json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
  ck_assert_msg(v != NULL, "%s: %s", path, err.text);
  return v;
}

typedef sj_id_code_t (*check_fn)(const char *, size_t);

static sj_id_code_t run(check_fn f, const char *s) {
  return f(s, strlen(s));
}

/* Every value of a "valid" list passes; every key of an "invalid" map fails with its code. */
static size_t check_group(json_t *root, const char *valid, const char *invalid, check_fn f) {
  size_t count = 0, i;
  json_t *v;
  json_array_foreach(json_object_get(root, valid), i, v) {
    const char *s = json_string_value(v);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(run(f, s) == SJ_ID_OK, "%s: %s gave %s", valid, s, sj_id_code_name(run(f, s)));
    count++;
  }
  const char *key;
  json_object_foreach(json_object_get(root, invalid), key, v) {
    const char *want = json_string_value(v);
    ck_assert_ptr_nonnull(want);
    ck_assert_str_eq(sj_id_code_name(run(f, key)), want);
    count++;
  }
  return count;
}

START_TEST(test_vectors_give_expected_codes) {
  json_t *root = load_vectors();
  size_t n = check_group(root, "uscc_valid", "uscc_invalid", sj_uscc_check);
  n += check_group(root, "resident_id_valid", "resident_id_invalid", sj_resident_id_check);
  n += check_group(root, "gtin14_valid", "gtin14_invalid", sj_gtin_check);
  ck_assert_uint_ge(n, 14); /* the file was read, not silently empty */
  json_decref(root);
}
END_TEST

/* Cases computed by hand (check characters worked out independently of the implementation). */
START_TEST(test_uscc_rules) {
  ck_assert_int_eq(run(sj_uscc_check, "91310115MA1K00007Q"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_uscc_check, "91310115ma1k00007q"), SJ_ID_USCC_CHARSET);
  ck_assert_int_eq(run(sj_uscc_check, "91310115MA1K00007q"), SJ_ID_USCC_CHARSET);
  ck_assert_int_eq(run(sj_uscc_check, "91310115MA1I00007Q"), SJ_ID_USCC_CHARSET); /* I excluded */
  ck_assert_int_eq(run(sj_uscc_check, "91310115MA1S00007Q"), SJ_ID_USCC_CHARSET); /* S excluded */
  ck_assert_int_eq(run(sj_uscc_check, "91310115MA1K0000 Q"), SJ_ID_USCC_CHARSET);
  ck_assert_int_eq(run(sj_uscc_check, "91310115MA1K00007"), SJ_ID_USCC_LENGTH);
  ck_assert_int_eq(run(sj_uscc_check, "91310115MA1K00007QQ"), SJ_ID_USCC_LENGTH);
  ck_assert_int_eq(run(sj_uscc_check, ""), SJ_ID_USCC_LENGTH);
  /* Correct check characters, undefined authority / category / non-numeric division code. */
  ck_assert_int_eq(run(sj_uscc_check, "0131011500000000A1"), SJ_ID_USCC_STRUCTURE);
  ck_assert_int_eq(run(sj_uscc_check, "9431011500000000AE"), SJ_ID_USCC_STRUCTURE);
  ck_assert_int_eq(run(sj_uscc_check, "B131011500000000AM"), SJ_ID_USCC_STRUCTURE);
  ck_assert_int_eq(run(sj_uscc_check, "913101A5MA1K000074"), SJ_ID_USCC_STRUCTURE);
  /* Defined combinations: individual business, social organisation, other, agricultural. */
  ck_assert_int_eq(run(sj_uscc_check, "92310115MA1K00007M"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_uscc_check, "5231011500000000AQ"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_uscc_check, "Y131011500000000A2"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_uscc_check, "N331011500000000A4"), SJ_ID_OK);
  /* Check character 0 (weighted sum already a multiple of 31) vs its neighbours. */
  ck_assert_int_eq(run(sj_uscc_check, "91330100MA2B000019"), SJ_ID_USCC_CHECKSUM);
  /* The length is judged on n, not on a NUL. */
  ck_assert_int_eq(sj_uscc_check("91310115MA1K00007QXYZ", 18), SJ_ID_OK);
}
END_TEST

START_TEST(test_resident_id_rules) {
  ck_assert_int_eq(run(sj_resident_id_check, "11010519491231002X"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_resident_id_check, "11010519491231002x"), SJ_ID_ID_CHARSET);
  ck_assert_int_eq(run(sj_resident_id_check, "1101051949123100X2"), SJ_ID_ID_CHARSET);
  ck_assert_int_eq(run(sj_resident_id_check, "11010519491231002"), SJ_ID_ID_LENGTH);
  ck_assert_int_eq(run(sj_resident_id_check, "110105194912310021X"), SJ_ID_ID_LENGTH);
  /* Feb 29: 1996 and 2000 are leap years, 1999 and 1900 are not. */
  ck_assert_int_eq(run(sj_resident_id_check, "310115199602291233"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_resident_id_check, "310115200002291235"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_resident_id_check, "310115199902291235"), SJ_ID_ID_BIRTHDATE_INVALID);
  ck_assert_int_eq(run(sj_resident_id_check, "310115190002291239"), SJ_ID_ID_BIRTHDATE_INVALID);
  /* Range 1850..today; month 13, day 0, April 31. */
  ck_assert_int_eq(run(sj_resident_id_check, "310115185001011235"), SJ_ID_OK);
  ck_assert_int_eq(run(sj_resident_id_check, "310115184912311234"), SJ_ID_ID_BIRTHDATE_INVALID);
  ck_assert_int_eq(run(sj_resident_id_check, "310115299901011236"), SJ_ID_ID_BIRTHDATE_INVALID);
  ck_assert_int_eq(run(sj_resident_id_check, "310115198013011235"), SJ_ID_ID_BIRTHDATE_INVALID);
  ck_assert_int_eq(run(sj_resident_id_check, "310115198001001232"), SJ_ID_ID_BIRTHDATE_INVALID);
  ck_assert_int_eq(run(sj_resident_id_check, "310115198004311236"), SJ_ID_ID_BIRTHDATE_INVALID);
  /* The date is judged before the check character. */
  ck_assert_int_eq(run(sj_resident_id_check, "310115199902291230"), SJ_ID_ID_BIRTHDATE_INVALID);
  ck_assert_int_eq(run(sj_resident_id_check, "310115199602291234"), SJ_ID_ID_CHECKSUM);
}
END_TEST

START_TEST(test_gtin_rules) {
  ck_assert_int_eq(run(sj_gtin_check, "96385074"), SJ_ID_OK);       /* GTIN-8 */
  ck_assert_int_eq(run(sj_gtin_check, "036000291452"), SJ_ID_OK);   /* GTIN-12 (UPC-A) */
  ck_assert_int_eq(run(sj_gtin_check, "4006381333931"), SJ_ID_OK);  /* GTIN-13 */
  ck_assert_int_eq(run(sj_gtin_check, "09506000134352"), SJ_ID_OK); /* GTIN-14 */
  ck_assert_int_eq(run(sj_gtin_check, "96385075"), SJ_ID_GTIN_CHECKSUM);
  ck_assert_int_eq(run(sj_gtin_check, "036000291453"), SJ_ID_GTIN_CHECKSUM);
  ck_assert_int_eq(run(sj_gtin_check, "4006381333932"), SJ_ID_GTIN_CHECKSUM);
  ck_assert_int_eq(run(sj_gtin_check, "9638507"), SJ_ID_GTIN_LENGTH);
  ck_assert_int_eq(run(sj_gtin_check, "03600029145"), SJ_ID_GTIN_LENGTH);
  ck_assert_int_eq(run(sj_gtin_check, "095060001343520"), SJ_ID_GTIN_LENGTH);
  ck_assert_int_eq(run(sj_gtin_check, "0950600013435A"), SJ_ID_GTIN_CHARSET);
  ck_assert_int_eq(run(sj_gtin_check, "+9506000134352"), SJ_ID_GTIN_CHARSET);
  /* The same digit function serves SSCCs (17 data digits) and GLNs (12). */
  ck_assert_int_eq(sj_gs1_check_digit("10614141123456789", 17), '7');
  ck_assert_int_eq(sj_gs1_check_digit("400638133393", 12), '1');
  ck_assert_int_eq(sj_gs1_check_digit("40063813339x", 12), -1);
  ck_assert_int_eq(sj_gs1_check_digit("", 0), '0');
}
END_TEST

START_TEST(test_code_names_are_stable) {
  ck_assert_str_eq(sj_id_code_name(SJ_ID_OK), "OK");
  ck_assert_str_eq(sj_id_code_name(SJ_ID_USCC_STRUCTURE), "USCC_STRUCTURE");
  ck_assert_str_eq(sj_id_code_name(SJ_ID_ID_LENGTH), "ID_LENGTH");
  ck_assert_str_eq(sj_id_code_name(SJ_ID_ID_CHARSET), "ID_CHARSET");
  ck_assert_str_eq(sj_id_code_name(SJ_ID_GTIN_LENGTH), "GTIN_LENGTH");
  ck_assert_str_eq(sj_id_code_name(SJ_ID_GTIN_CHARSET), "GTIN_CHARSET");
  ck_assert_str_eq(sj_id_code_name((sj_id_code_t)999), "UNKNOWN");
}
END_TEST

START_TEST(test_zalloc_zeroes_and_refuses_overflow) {
  for (size_t n = 0; n < 40; n += 7) {
    uint8_t *p = malloc(n * 24 + 1); /* leave nonzero bytes behind for zalloc to reuse */
    memset(p, 0xA5, n * 24 + 1);
    free(p);
    p = sj_zalloc(n, 24);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n * 24; i++)
      ck_assert_uint_eq(p[i], 0);
    free(p);
  }
  ck_assert_ptr_null(sj_zalloc(SIZE_MAX / 8 + 1, 8));
  ck_assert_ptr_null(sj_zalloc(2, SIZE_MAX));
}
END_TEST

START_TEST(test_buf_grows_and_stays_terminated) {
  sj_buf_t b;
  sj_buf_init(&b);
  for (int i = 0; i < 1000; i++)
    ck_assert_int_eq(sj_buf_printf(&b, "%d,", i), 0);
  ck_assert_uint_eq(b.n, 3890);
  ck_assert_uint_eq(b.p[b.n], 0);
  ck_assert_int_eq(memcmp(b.p, "0,1,2,", 6), 0);
  sj_buf_reset(&b);
  ck_assert_int_eq(sj_buf_append_be32(&b, 0x01020304u), 0);
  ck_assert_int_eq(sj_buf_append_be64(&b, 0x05060708090a0b0cull), 0);
  ck_assert_uint_eq(sj_get_be32(b.p), 0x01020304u);
  ck_assert_uint_eq(sj_get_be64(b.p + 4), 0x05060708090a0b0cull);
  sj_buf_deinit(&b);
  ck_assert_ptr_null(b.p);
}
END_TEST

START_TEST(test_hex_round_trip_and_rejects) {
  const uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff};
  char hex[9];
  uint8_t out[4];
  sj_hex_encode(in, 4, hex);
  ck_assert_str_eq(hex, "00ab7fff");
  ck_assert_int_eq(sj_hex_decode("00AB7fff", 8, out, 4), 0);
  ck_assert_int_eq(memcmp(in, out, 4), 0);
  ck_assert_int_eq(sj_hex_decode("00ab7ff", 7, out, 4), SJ_EFORMAT);
  ck_assert_int_eq(sj_hex_decode("00ab7fgf", 8, out, 4), SJ_EFORMAT);
  ck_assert_str_eq(sj_strerror(SJ_EFORMAT), "malformed input");
}
END_TEST

static Suite *common_suite(void) {
  Suite *s = suite_create("common");
  TCase *tc = tcase_create("identifier_vectors");
  tcase_add_test(tc, test_vectors_give_expected_codes);
  suite_add_tcase(s, tc);
  tc = tcase_create("uscc");
  tcase_add_test(tc, test_uscc_rules);
  suite_add_tcase(s, tc);
  tc = tcase_create("resident_id");
  tcase_add_test(tc, test_resident_id_rules);
  suite_add_tcase(s, tc);
  tc = tcase_create("gs1");
  tcase_add_test(tc, test_gtin_rules);
  suite_add_tcase(s, tc);
  tc = tcase_create("code_names");
  tcase_add_test(tc, test_code_names_are_stable);
  suite_add_tcase(s, tc);
  tc = tcase_create("buffers");
  tcase_add_test(tc, test_buf_grows_and_stays_terminated);
  tcase_add_test(tc, test_zalloc_zeroes_and_refuses_overflow);
  tcase_add_test(tc, test_hex_round_trip_and_rejects);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(common_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
