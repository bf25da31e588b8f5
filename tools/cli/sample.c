/* tools/cli/sample.c — `sanjiao sample --records N --seed S --out DIR`: a deterministic, realistic
 * Yangtze River Delta test dataset, written as NDJSON per region (DIR/310000.ndjson ...
 * DIR/340000.ndjson), every record marked "test_data":true and every name marked 测试 / (TEST).
 *
 * What it holds (docs/TRACE.md, "Sample data"):
 *   - enterprises of all four regions with valid synthetic unified social credit codes (GB 32100
 *     check character; organisation code with its GB 11714 check character) and GS1 company
 *     prefixes in China's 690-699 range;
 *   - credit records of every type, decided by authorities of the region whose file holds them:
 *     penalties with decision fields, lists with periods, ratings of the rules' schemes, bans,
 *     commitments, commendations, and repairs / removals / corrections that reference an earlier
 *     entry as "ref":{"region","seq"} — seq being the entry's line number (from 0) in its region's
 *     file, which is its seq when each file is loaded in order into an empty log;
 *   - supply chains that cross regions: pork (Anhui farm -> Jiangsu slaughterhouse -> Zhejiang
 *     wholesaler -> Shanghai market, with aggregation and transformation), dairy and grain, as
 *     EPCIS 2.0 events in the file of the region where each happened.
 *
 * Memory stays constant whatever N (enterprises are computed from their index, never stored);
 * output is streamed; the same seed gives the same bytes. Progress goes to stderr for big N. */
#include "tools/cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NREG 4
#define RING 64 /* recent list/penalty entries per region that later records may reference */

/* ---- Deterministic randomness (splitmix64) ------------------------------------------------- */

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint32_t below(rng_t *r, uint32_t n) {
  return (uint32_t)(rnd(r) % n);
}

/* ---- Regions, places, names ------------------------------------------------------------------ */

typedef struct {
  const char *code;      /* GB/T 2260 */
  const char *name;      /* 上海市 */
  const char *abbr;      /* 沪 */
  const char *cities[4]; /* prefecture-level cities */
  const char *divs[4];   /* their division codes */
  char gs1;              /* third digit of the region's GS1 company prefixes (69x) */
} region_t;

static const region_t regions[NREG] = {
    {"310000",
     "上海市",
     "沪",
     {"浦东", "闵行", "嘉定", "松江"},
     {"310115", "310112", "310114", "310117"},
     '1'},
    {"320000",
     "江苏省",
     "苏",
     {"南京", "苏州", "无锡", "徐州"},
     {"320100", "320500", "320200", "320300"},
     '2'},
    {"330000",
     "浙江省",
     "浙",
     {"杭州", "宁波", "嘉兴", "温州"},
     {"330100", "330200", "330400", "330300"},
     '3'},
    {"340000",
     "安徽省",
     "皖",
     {"合肥", "阜阳", "宿州", "蚌埠"},
     {"340100", "341200", "341300", "340300"},
     '4'},
};
enum { SH = 0, JS = 1, ZJ = 2, AH = 3 };

static const char *const syl[] = {"鑫", "华", "瑞", "丰", "盛", "源", "泰", "康",
                                  "禾", "和", "宏", "达", "顺", "润", "嘉", "恒"};
static const char *const trades[] = {"食品",       "肉类加工", "乳业",     "粮油",
                                     "农产品批发", "超市",     "冷链物流", "生猪养殖",
                                     "奶牛养殖",   "面粉",     "餐饮管理", "商贸"};

/* GB 32100 / GB 11714 character sets. */
static const char uscc_chars[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/* The USCC of enterprise i of region r: "91" (enterprise, company), the division code of one of
 * the region's cities, a 9-character organisation code, the check character. A bijection on i
 * (times an odd constant modulo 31^8) keeps codes distinct and scattered. */
static void enterprise_uscc(int r, uint64_t i, uint64_t salt, char out[19]) {
  static const int w[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
  static const int ow[8] = {3, 7, 9, 10, 5, 8, 4, 2};
  const uint64_t mod = 852891037441ull; /* 31^8 */
  uint64_t x = ((i + salt) % mod) * 7919 % mod;
  memcpy(out, "91", 2);
  memcpy(out + 2, regions[r].divs[i % 4], 6);
  int osum = 0;
  for (int k = 7; k >= 0; k--, x /= 31) {
    char ch = uscc_chars[x % 31];
    out[8 + k] = ch;
    osum += (ch <= '9' ? ch - '0' : ch - 'A' + 10) * ow[k];
  }
  int oc = 11 - osum % 11;
  out[16] = oc == 10 ? 'X' : oc == 11 ? '0' : (char)('0' + oc);
  int sum = 0;
  for (int k = 0; k < 17; k++)
    sum += (int)(strchr(uscc_chars, out[k]) - uscc_chars) * w[k];
  int c = 31 - sum % 31;
  out[17] = uscc_chars[c == 31 ? 0 : c];
  out[18] = 0;
}

/* A deciding authority's code: registration authority 1, category 1 (机关). */
static void authority_uscc(int r, int k, char out[19]) {
  enterprise_uscc(r, (uint64_t)k + 1000003u, 0, out);
  out[0] = '1';
  out[1] = '1';
  static const int w[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
  int sum = 0;
  for (int i = 0; i < 17; i++)
    sum += (int)(strchr(uscc_chars, out[i]) - uscc_chars) * w[i];
  int c = 31 - sum % 31;
  out[17] = uscc_chars[c == 31 ? 0 : c];
}

static void enterprise_name(int r, uint64_t i, char *out, size_t cap) {
  snprintf(out, cap, "测试%s%s%s%s有限公司(TEST)", regions[r].cities[i % 4], syl[(i / 4) % 16],
           syl[(i / 64) % 16], trades[(i / 7) % 12]);
}

/* The region's GS1 company prefix for enterprise i: 69, the region digit, 4 digits of i. */
static void company_prefix(int r, uint64_t i, char out[8]) {
  snprintf(out, 8, "69%c%04u", regions[r].gs1, (unsigned)(i % 10000));
}

static char gs1_check(const char *digits, size_t n) {
  int sum = 0;
  for (size_t k = 0; k < n; k++)
    sum += (digits[n - 1 - k] - '0') * (k % 2 == 0 ? 3 : 1);
  return (char)('0' + (10 - sum % 10) % 10);
}

/* ---- Output ------------------------------------------------------------------------------------
 */

typedef struct {
  uint32_t seq;
  uint16_t kind;       /* 0 penalty, 1 abnormal_list, 2 blacklist */
  uint16_t min_months; /* the rules' earliest repair or removal (docs/CREDIT.md) */
  uint64_t ent;        /* subject: region * 2^40 + index */
  int month;           /* months since 2023-01 of the decision */
} ref_t;

typedef struct {
  FILE *f[NREG];
  uint64_t seq[NREG]; /* lines written per region = seq of the next record */
  uint64_t written, target;
  rng_t r;
  uint64_t salt;
  uint64_t pool;  /* enterprises per region */
  uint64_t chain; /* supply chains started */
  ref_t ring[NREG][RING];
  unsigned nring[NREG];
  sj_buf_t line;
  char trace_code[128];
  char enterprise[19];
  int progress;
} gen_t;

static int emit(gen_t *g, int region) {
  if (g->written >= g->target)
    return 1;
  sj_buf_append_u8(&g->line, '\n');
  if (fwrite(g->line.p, 1, g->line.n, g->f[region]) != g->line.n)
    return -EIO;
  sj_buf_reset(&g->line);
  g->seq[region]++;
  g->written++;
  if (g->progress && g->written % 100000 == 0)
    fprintf(stderr, "\rsample: %llu / %llu records", (unsigned long long)g->written,
            (unsigned long long)g->target);
  return g->written >= g->target;
}

/* ---- Credit records ----------------------------------------------------------------------------
 */

static void subject_json(gen_t *g, int r, uint64_t i) {
  char uscc[19], name[160];
  enterprise_uscc(r, i, g->salt, uscc);
  enterprise_name(r, i, name, sizeof name);
  sj_buf_printf(&g->line, "\"subject\":{\"type\":\"enterprise\",\"id\":\"%s\",\"name\":\"%s\"}",
                uscc, name);
}

/* "YYYY-MM-DD" of day (1..28) of the month counted from 2023-01 (0..99). */
static void date_of(int month, int day, char out[11]) {
  char tmp[48]; /* room for any int, so the compiler sees no truncation */
  snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", (2023 + month / 12) % 10000, month % 12 + 1,
           day % 100);
  memcpy(out, tmp, 10);
  out[10] = 0;
}

static void authority_json(gen_t *g, int r, int k) {
  static const char *const who[] = {"市场监督管理局", "生态环境局", "税务局", "应急管理局"};
  char uscc[19];
  authority_uscc(r, k, uscc);
  sj_buf_printf(&g->line, "\"authority\":{\"name\":\"%s%s（测试数据）\",\"uscc\":\"%s\"}",
                regions[r].name, who[k % 4], uscc);
}

static void head(gen_t *g, const char *type) {
  sj_buf_printf(&g->line, "{\"kind\":\"credit\",\"type\":\"%s\",", type);
}

static void remember(gen_t *g, int r, uint16_t kind, uint16_t min_months, int sr, uint64_t si,
                     int month) {
  ref_t *x = &g->ring[r][g->nring[r]++ % RING];
  *x = (ref_t){(uint32_t)g->seq[r], kind, min_months, ((uint64_t)sr << 40) | si, month};
}

static int penalty(gen_t *g, int r, int sr, uint64_t si, int month) {
  static const char *const viol[] = {"销售不符合食品安全标准的食品", "未按规定进行进货查验",
                                     "超范围经营", "虚假宣传"};
  static const char *const dom[] = {"food", "market", "environment", "work_safety"};
  char d[11];
  int k = (int)below(&g->r, 4), fine = 1000 * (int)(1 + below(&g->r, 50));
  date_of(month, 1 + (int)below(&g->r, 28), d);
  head(g, "penalty");
  subject_json(g, sr, si);
  sj_buf_printf(&g->line,
                ",\"disclosure\":\"public\",\"severity\":\"%s\",\"domain\":\"%s\",\"decision\":{"
                "\"number\":\"%s市监罚〔%d〕%u号\",\"date\":\"%s\",\"violation\":\"%s\","
                "\"legal_basis\":\"《中华人民共和国食品安全法》第一百二十四条\","
                "\"measures\":[\"warning\",\"fine\"],\"fine_cny\":%d,",
                k == 0 ? "serious" : "general", dom[k], regions[r].abbr, 2023 + month / 12,
                (unsigned)(g->seq[r] % 100000), d, viol[k], fine);
  authority_json(g, r, k);
  sj_buf_append_str(&g->line, "},\"test_data\":true}");
  remember(g, r, 0, k == 0 ? 12 : 3, sr, si, month); /* serious: 12 months, general: 3 */
  return emit(g, r);
}

static int listing(gen_t *g, int r, int sr, uint64_t si, int month, int black) {
  char from[11], until[11];
  date_of(month, 1 + (int)below(&g->r, 28), from);
  date_of(month + (black ? 36 : 24), 1, until);
  head(g, black ? "blacklist" : "abnormal_list");
  subject_json(g, sr, si);
  sj_buf_printf(&g->line,
                ",\"disclosure\":\"public\",\"list\":{\"name\":\"%s\"},\"period\":{\"from\":\"%s\","
                "\"until\":\"%s\"},\"decision\":{\"date\":\"%s\",\"violation\":\"%s\",",
                black ? "严重违法失信名单" : "经营异常名录", from, until, from,
                black ? "提供虚假材料取得登记" : "通过登记的住所无法联系");
  authority_json(g, r, 0);
  sj_buf_append_str(&g->line, "},\"test_data\":true}");
  remember(g, r, black ? 2 : 1, black ? 12 : 0, sr, si, month);
  return emit(g, r);
}

static int rating(gen_t *g, int r, int sr, uint64_t si, int month) {
  static const char *const grades[] = {"A", "B", "M", "C", "D"};
  char from[11], until[11];
  date_of(month, 1, from);
  date_of(month + 12, 1, until);
  head(g, "rating");
  subject_json(g, sr, si);
  sj_buf_printf(
      &g->line,
      ",\"disclosure\":\"public\",\"rating\":{\"scheme\":\"tax_credit\",\"grade\":\"%s\"},"
      "\"period\":{\"from\":\"%s\",\"until\":\"%s\"},\"decision\":{\"date\":\"%s\",",
      grades[below(&g->r, 5)], from, until, from);
  authority_json(g, r, 2);
  sj_buf_append_str(&g->line, "},\"test_data\":true}");
  return emit(g, r);
}

static int simple(gen_t *g, int r, int sr, uint64_t si, int month, const char *type,
                  const char *content) {
  char from[11], until[11];
  date_of(month, 1, from);
  date_of(month + 12, 1, until);
  head(g, type);
  subject_json(g, sr, si);
  sj_buf_printf(&g->line,
                ",\"disclosure\":\"public\",\"period\":{\"from\":\"%s\",\"until\":\"%s\"},"
                "\"decision\":{\"date\":\"%s\",\"content\":\"%s\",",
                from, until, from, content);
  authority_json(g, r, 0);
  sj_buf_append_str(&g->line, "},\"test_data\":true}");
  return emit(g, r);
}

static int ban(gen_t *g, int r, int sr, uint64_t si, int month) {
  char from[11], until[11];
  date_of(month, 1, from);
  date_of(month + 24, 1, until);
  head(g, "procurement_ban");
  subject_json(g, sr, si);
  sj_buf_printf(&g->line,
                ",\"disclosure\":\"public\",\"period\":{\"from\":\"%s\",\"until\":\"%s\"},"
                "\"decision\":{\"date\":\"%s\",\"violation\":\"政府采购中提供虚假材料\",",
                from, until, from);
  authority_json(g, r, 3);
  sj_buf_append_str(&g->line, "},\"test_data\":true}");
  return emit(g, r);
}

/* A correction of penalty x: the whole decision again, with its number corrected, a month after
 * the original (before any repair could be accepted, so repairs act on the corrected version). */
static int correction(gen_t *g, int r, const ref_t *x, int sr, uint64_t si) {
  char d[11];
  date_of(x->month + 1, 5, d);
  head(g, "penalty");
  subject_json(g, sr, si);
  sj_buf_printf(
      &g->line,
      ",\"disclosure\":\"public\",\"action\":\"correction\",\"ref\":{\"region\":\"%s\","
      "\"seq\":%u},\"severity\":\"%s\",\"domain\":\"food\",\"decision\":{\"number\":"
      "\"%s市监罚〔%d〕%u号（更正）\",\"date\":\"%s\",\"violation\":\"未按规定进行进货查验\","
      "\"measures\":[\"fine\"],\"fine_cny\":5000,\"content\":\"更正决定文书号（测试）\",",
      regions[r].code, (unsigned)x->seq, x->min_months >= 12 ? "serious" : "general",
      regions[r].abbr, 2023 + x->month / 12, (unsigned)x->seq, d);
  authority_json(g, r, 0);
  sj_buf_append_str(&g->line, "},\"test_data\":true}");
  return emit(g, r);
}

/* A later act on a remembered entry of region r: a repair of a penalty, a removal from a list,
 * or a correction; written in r's file (the same authority acts), naming the same subject, dated
 * after the rules allow it (min_months after the decision, and after any correction). */
static int follow_up(gen_t *g, int r) {
  if (g->nring[r] == 0)
    return penalty(g, r, r, below(&g->r, (uint32_t)g->pool), (int)below(&g->r, 14));
  unsigned n = g->nring[r] < RING ? g->nring[r] : RING;
  ref_t x = g->ring[r][below(&g->r, n)];
  int sr = (int)(x.ent >> 40);
  uint64_t si = x.ent & ((1ull << 40) - 1);
  if (x.kind == 0 && below(&g->r, 4) == 0)
    return correction(g, r, &x, sr, si);
  char d[11];
  date_of(x.month + x.min_months + 2 + (int)below(&g->r, 3), 15, d);
  int repair = x.kind == 0;
  head(g, repair ? "repair" : x.kind == 1 ? "abnormal_list" : "blacklist");
  subject_json(g, sr, si);
  sj_buf_printf(&g->line,
                ",\"disclosure\":\"public\",\"action\":\"%s\",\"ref\":{\"region\":\"%s\","
                "\"seq\":%u},\"decision\":{\"date\":\"%s\",\"content\":\"%s\",",
                repair ? "repair" : "removal", regions[r].code, (unsigned)x.seq, d,
                repair ? "已完成整改并提交信用修复申请（测试）" : "已依法移出（测试）");
  authority_json(g, r, 0);
  sj_buf_append_str(&g->line, "},\"test_data\":true}");
  return emit(g, r);
}

static int credit_record(gen_t *g) {
  int r = (int)below(&g->r, NREG), sr = below(&g->r, 3) ? r : (int)below(&g->r, NREG);
  uint64_t si = below(&g->r, (uint32_t)g->pool);
  /* decisions in 2023-01 .. 2024-02, their follow-ups by 2025-05: every date lies in the past */
  int month = (int)below(&g->r, 14);
  switch (below(&g->r, 12)) {
  case 0:
  case 1:
  case 2:
    return penalty(g, r, sr, si, month);
  case 3:
    return listing(g, r, sr, si, month, 0);
  case 4:
    return listing(g, r, sr, si, month, 1);
  case 5:
  case 6:
    return rating(g, r, sr, si, month);
  case 7:
    return ban(g, r, sr, si, month);
  case 8:
    return simple(g, r, sr, si, month, "commitment", "书面信用承诺（测试）");
  case 9:
    return simple(g, r, sr, si, month, "commendation", "守合同重信用企业（测试）");
  default:
    return follow_up(g, r);
  }
}

/* The sample enterprise: an Anhui producer with records from all four regions' authorities. */
static int sample_enterprise(gen_t *g) {
  int rv;
  enterprise_uscc(AH, 7, g->salt, g->enterprise);
  if ((rv = penalty(g, SH, AH, 7, 10)) || (rv = listing(g, JS, AH, 7, 11, 0)) ||
      (rv = rating(g, ZJ, AH, 7, 12)) ||
      (rv = simple(g, AH, AH, 7, 13, "commendation", "守合同重信用企业（测试）")))
    return rv;
  return 0;
}

/* ---- Supply chains (EPCIS 2.0 events) ---------------------------------------------------------
 */

/* An operator's site: its region, enterprise index, GS1 company prefix, SGLN and USCC. */
typedef struct {
  int r;
  uint64_t i;
  char cp[8];
  char sgln[40];
  char uscc[19];
} site_t;

/* An enterprise of region r whose name says trade (an index in trades[]): enterprise i's trade
 * is trades[(i / 7) % 12], so i = 7 * (12 m + trade) + j. */
static void site(gen_t *g, int r, int trade, site_t *s) {
  s->r = r;
  s->i = 7 * (12 * (uint64_t)below(&g->r, (uint32_t)(g->pool / 84 + 1)) + (uint64_t)trade) +
         below(&g->r, 7);
  company_prefix(r, s->i, s->cp);
  snprintf(s->sgln, sizeof s->sgln, "urn:epc:id:sgln:%s.00001.0", s->cp);
  enterprise_uscc(r, s->i, g->salt, s->uscc);
}

/* ms since the epoch as China Standard Time: "2024-03-05T10:15:00.000+08:00". */
static void cst_time(int64_t ms, char out[40]) {
  int64_t z = (ms + 8 * 3600000LL) / 86400000LL, rem = (ms + 8 * 3600000LL) % 86400000LL;
  z += 719468;
  int64_t era = z / 146097, doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
  int y = (int)(yoe + era * 400 + (m <= 2));
  snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.000+08:00", y % 10000, m, d,
           (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60));
}

static void ev_begin(gen_t *g, const char *type, const char *action, const char *step, int64_t t) {
  char ts[40];
  cst_time(t, ts);
  sj_buf_printf(&g->line,
                "{\"kind\":\"trace\",\"@context\":{\"cn\":\"urn:sanjiao:epcis:cn:\"},\"event\":{"
                "\"type\":\"%s\",\"eventTime\":\"%s\",\"eventTimeZoneOffset\":\"+08:00\"",
                type, ts);
  if (action)
    sj_buf_printf(&g->line, ",\"action\":\"%s\"", action);
  sj_buf_printf(&g->line, ",\"bizStep\":\"%s\"", step);
}

static int ev_end(gen_t *g, const site_t *s, const char *disp) {
  if (disp)
    sj_buf_printf(&g->line, ",\"disposition\":\"%s\"", disp);
  sj_buf_printf(&g->line,
                ",\"readPoint\":{\"id\":\"%s\"},\"bizLocation\":{\"id\":\"%s\"},"
                "\"cn:operatorUSCC\":\"%s\"},\"test_data\":true}",
                s->sgln, s->sgln, s->uscc);
  return emit(g, s->r);
}

/* An ObjectEvent naming one instance (epcList) or a quantity of a class (quantityList). */
static int ev_obj(gen_t *g, const site_t *s, const char *action, const char *step, int64_t t,
                  const char *code, int qty, const char *uom, const char *disp) {
  ev_begin(g, "ObjectEvent", action, step, t);
  if (qty)
    sj_buf_printf(&g->line,
                  ",\"quantityList\":[{\"epcClass\":\"%s\",\"quantity\":%d,\"uom\":\"%s\"}]", code,
                  qty, uom);
  else
    sj_buf_printf(&g->line, ",\"epcList\":[\"%s\"]", code);
  return ev_end(g, s, disp);
}

/* An AggregationEvent: parent with children given as a JSON array text, or a class quantity. */
static int ev_agg(gen_t *g, const site_t *s, const char *action, const char *step, int64_t t,
                  const char *parent, const char *children, const char *cls, int qty) {
  ev_begin(g, "AggregationEvent", action, step, t);
  sj_buf_printf(&g->line, ",\"parentID\":\"%s\"", parent);
  if (cls)
    sj_buf_printf(&g->line, ",\"childQuantityList\":[{\"epcClass\":\"%s\",\"quantity\":%d}]", cls,
                  qty);
  else
    sj_buf_printf(&g->line, ",\"childEPCs\":%s", children);
  return ev_end(g, s, NULL);
}

/* A TransformationEvent from a quantity of one class into a class quantity or instances. */
static int ev_tf(gen_t *g, const site_t *s, const char *step, int64_t t, const char *in, int inq,
                 const char *inuom, const char *out_cls, int outq, const char *outuom,
                 const char *out_list, const char *ext) {
  ev_begin(g, "TransformationEvent", NULL, step, t);
  sj_buf_printf(&g->line,
                ",\"inputQuantityList\":[{\"epcClass\":\"%s\",\"quantity\":%d,\"uom\":\"%s\"}]", in,
                inq, inuom);
  if (out_cls)
    sj_buf_printf(&g->line,
                  ",\"outputQuantityList\":[{\"epcClass\":\"%s\",\"quantity\":%d,\"uom\":\"%s\"}]",
                  out_cls, outq, outuom);
  if (out_list)
    sj_buf_printf(&g->line, ",\"outputEPCList\":%s", out_list);
  if (ext)
    sj_buf_append_str(&g->line, ext);
  return ev_end(g, s, NULL);
}

static void sscc(const site_t *s, uint64_t serial, char out[48]) {
  snprintf(out, 48, "urn:epc:id:sscc:%s.0%09llu", s->cp, (unsigned long long)(serial % 1000000000));
}

static void lot(const site_t *s, unsigned item, const char *prefix, uint64_t k, char out[64]) {
  snprintf(out, 64, "urn:epc:class:lgtin:%s.0%05u.%s%llu", s->cp, item, prefix,
           (unsigned long long)k);
}

/* When chain k starts: spread over 2024, on the hour. */
static int64_t chain_start(uint64_t k) {
  return 1704038400000LL + (int64_t)((k * 7919) % (300 * 24)) * 3600000LL; /* 2024-01-01 +08 */
}

#define H 3600000LL
#define STEP(x)                                                                                    \
  do {                                                                                             \
    int rv_ = (x);                                                                                 \
    if (rv_)                                                                                       \
      return rv_;                                                                                  \
  } while (0)

/* Pork: Anhui farm -> Jiangsu slaughterhouse -> Zhejiang wholesaler -> Shanghai market. */
static int pork_chain(gen_t *g, uint64_t k) {
  site_t farm, sl, wh, mk;
  site(g, AH, 7, &farm), site(g, JS, 1, &sl), site(g, ZJ, 4, &wh), site(g, SH, 5, &mk);
  char pigs[64], carc[64], truck[48], box[48], packs[512], gtin[15], first[128];
  int npacks = 2 + (int)below(&g->r, 4), heads = 10 + (int)below(&g->r, 30);
  lot(&farm, 1, "PIG", k, pigs);
  lot(&sl, 2, "CAR", k, carc);
  sscc(&farm, k * 2, truck);
  sscc(&sl, k * 2 + 1, box);
  snprintf(gtin, sizeof gtin, "0%s00003", sl.cp);
  gtin[13] = gs1_check(gtin, 13), gtin[14] = 0;
  sj_buf_t pl = {0};
  for (int j = 0; j < npacks; j++)
    sj_buf_printf(&pl, "%s\"urn:epc:id:sgtin:%s.000003.%llu-%d\"", j ? "," : "[", sl.cp,
                  (unsigned long long)k, j + 1);
  snprintf(packs, sizeof packs, "%s]", (char *)pl.p);
  sj_buf_deinit(&pl);
  snprintf(first, sizeof first, "urn:epc:id:sgtin:%s.000003.%llu-1", sl.cp, (unsigned long long)k);
  if (!g->trace_code[0])
    snprintf(g->trace_code, sizeof g->trace_code, "%s", first);
  char ilmd[160], cert[96], dl[128];
  snprintf(ilmd, sizeof ilmd,
           ",\"ilmd\":{\"cn:originAreaCode\":\"%s\",\"cn:quarantineCertNo\":"
           "\"34%08llu\"}",
           regions[AH].divs[farm.i % 4], (unsigned long long)(k % 100000000));
  snprintf(cert, sizeof cert, ",\"cn:meatInspectionCertNo\":\"SJ-%llu\"", (unsigned long long)k);
  snprintf(dl, sizeof dl, "https://id.gs1.org/01/%s/21/%llu-1", gtin, (unsigned long long)k);
  int64_t t = chain_start(k);
  ev_begin(g, "ObjectEvent", "ADD", "commissioning", t);
  sj_buf_printf(&g->line,
                ",\"quantityList\":[{\"epcClass\":\"%s\",\"quantity\":%d,\"uom\":\"H87\"}]%s", pigs,
                heads, ilmd);
  STEP(ev_end(g, &farm, "active"));
  STEP(ev_agg(g, &farm, "ADD", "loading", t + 24 * H, truck, NULL, pigs, heads));
  STEP(ev_obj(g, &farm, "OBSERVE", "shipping", t + 25 * H, truck, 0, NULL, "in_transit"));
  STEP(ev_obj(g, &sl, "OBSERVE", "receiving", t + 30 * H, truck, 0, NULL, "in_progress"));
  STEP(ev_agg(g, &sl, "DELETE", "unloading", t + 31 * H, truck, NULL, pigs, heads));
  STEP(ev_tf(g, &sl, "killing", t + 32 * H, pigs, heads, "H87", carc, heads * 80, "KGM", NULL,
             cert));
  STEP(ev_tf(g, &sl, "repackaging", t + 40 * H, carc, npacks, "KGM", NULL, 0, NULL, packs, NULL));
  STEP(ev_agg(g, &sl, "ADD", "packing", t + 41 * H, box, packs, NULL, 0));
  STEP(ev_obj(g, &sl, "OBSERVE", "shipping", t + 42 * H, box, 0, NULL, "in_transit"));
  STEP(ev_obj(g, &wh, "OBSERVE", "receiving", t + 46 * H, box, 0, NULL, "in_progress"));
  STEP(ev_obj(g, &wh, "OBSERVE", "shipping", t + 50 * H, box, 0, NULL, "in_transit"));
  STEP(ev_obj(g, &mk, "OBSERVE", "receiving", t + 53 * H, box, 0, NULL, "in_progress"));
  STEP(ev_agg(g, &mk, "DELETE", "unpacking", t + 54 * H, box, packs, NULL, 0));
  return ev_obj(g, &mk, "OBSERVE", "retail_selling", t + 60 * H, dl, 0, NULL, "retail_sold");
}

/* Dairy: Anhui dairy farm -> Jiangsu dairy plant -> Zhejiang distributor -> Shanghai supermarket.
 */
static int dairy_chain(gen_t *g, uint64_t k) {
  site_t farm, plant, dist, shop;
  site(g, AH, 8, &farm), site(g, JS, 2, &plant), site(g, ZJ, 6, &dist), site(g, SH, 5, &shop);
  char milk[64], batch[64], tanker[48], pallet[48];
  int litres = 4000 + 100 * (int)below(&g->r, 60), units = litres;
  lot(&farm, 11, "MILK", k, milk);
  lot(&plant, 12, "B", k, batch);
  sscc(&farm, k * 2, tanker);
  sscc(&plant, k * 2 + 1, pallet);
  int64_t t = chain_start(k);
  STEP(ev_obj(g, &farm, "ADD", "commissioning", t, milk, litres, "LTR", "active"));
  STEP(ev_agg(g, &farm, "ADD", "loading", t + 2 * H, tanker, NULL, milk, litres));
  STEP(ev_obj(g, &farm, "OBSERVE", "shipping", t + 3 * H, tanker, 0, NULL, "in_transit"));
  STEP(ev_obj(g, &plant, "OBSERVE", "receiving", t + 7 * H, tanker, 0, NULL, "in_progress"));
  STEP(ev_agg(g, &plant, "DELETE", "unloading", t + 8 * H, tanker, NULL, milk, litres));
  STEP(ev_tf(g, &plant, "creating_class_instance", t + 12 * H, milk, litres, "LTR", batch, units,
             "H87", NULL, NULL));
  STEP(ev_agg(g, &plant, "ADD", "packing", t + 14 * H, pallet, NULL, batch, units));
  STEP(ev_obj(g, &plant, "OBSERVE", "shipping", t + 15 * H, pallet, 0, NULL, "in_transit"));
  STEP(ev_obj(g, &dist, "OBSERVE", "receiving", t + 19 * H, pallet, 0, NULL, "in_progress"));
  STEP(ev_obj(g, &dist, "OBSERVE", "shipping", t + 22 * H, pallet, 0, NULL, "in_transit"));
  STEP(ev_obj(g, &shop, "OBSERVE", "receiving", t + 26 * H, pallet, 0, NULL, "in_progress"));
  STEP(ev_agg(g, &shop, "DELETE", "unpacking", t + 27 * H, pallet, NULL, batch, units));
  return ev_obj(g, &shop, "OBSERVE", "retail_selling", t + 30 * H, batch, units / 10, "H87",
                "retail_sold");
}

/* Grain: Anhui wheat farm -> Jiangsu flour mill -> Zhejiang wholesaler -> Shanghai market. */
static int grain_chain(gen_t *g, uint64_t k) {
  site_t farm, mill, wh, mk;
  site(g, AH, 3, &farm), site(g, JS, 9, &mill), site(g, ZJ, 4, &wh), site(g, SH, 5, &mk);
  char wheat[64], flour[64];
  int tonnes = 20 + (int)below(&g->r, 80);
  lot(&farm, 21, "W", k, wheat);
  lot(&mill, 22, "F", k, flour);
  int64_t t = chain_start(k);
  STEP(ev_obj(g, &farm, "ADD", "commissioning", t, wheat, tonnes, "TNE", "active"));
  STEP(ev_obj(g, &farm, "OBSERVE", "shipping", t + 10 * H, wheat, tonnes, "TNE", "in_transit"));
  STEP(ev_obj(g, &mill, "OBSERVE", "receiving", t + 20 * H, wheat, tonnes, "TNE", "in_progress"));
  STEP(ev_tf(g, &mill, "creating_class_instance", t + 30 * H, wheat, tonnes, "TNE", flour,
             tonnes * 750, "KGM", NULL, NULL));
  STEP(ev_obj(g, &mill, "OBSERVE", "shipping", t + 40 * H, flour, tonnes * 750, "KGM",
              "in_transit"));
  STEP(ev_obj(g, &wh, "OBSERVE", "receiving", t + 46 * H, flour, tonnes * 750, "KGM",
              "in_progress"));
  STEP(ev_obj(g, &wh, "OBSERVE", "shipping", t + 60 * H, flour, tonnes * 100, "KGM", "in_transit"));
  return ev_obj(g, &mk, "OBSERVE", "receiving", t + 66 * H, flour, tonnes * 100, "KGM",
                "in_progress");
}

/* ---- The command -------------------------------------------------------------------------------
 */

static int generate(gen_t *g) {
  int rv = sample_enterprise(g);
  g->chain = 1;
  if (rv == 0)
    rv = pork_chain(g, g->chain++); /* the sample trace code's chain comes first */
  while (rv == 0) {
    uint32_t x = below(&g->r, 100);
    if (x < 40)
      rv = credit_record(g);
    else if (x < 60)
      rv = pork_chain(g, g->chain++);
    else if (x < 80)
      rv = dairy_chain(g, g->chain++);
    else
      rv = grain_chain(g, g->chain++);
  }
  return rv < 0 ? rv : 0;
}

static int open_outputs(gen_t *g, const char *dir) {
  if (mkdir(dir, 0755) && errno != EEXIST)
    return -errno;
  for (int r = 0; r < NREG; r++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.ndjson", dir, regions[r].code);
    if (!(g->f[r] = fopen(path, "wb")))
      return -errno;
    setvbuf(g->f[r], NULL, _IOFBF, 1 << 20);
  }
  return 0;
}

static int close_outputs(gen_t *g) {
  int rv = 0;
  for (int r = 0; r < NREG; r++)
    if (g->f[r] && fclose(g->f[r]) && rv == 0)
      rv = -errno;
  return rv;
}

static int parse_args(int argc, char **argv, uint64_t *n, uint64_t *seed, const char **out) {
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    if (!strcmp(argv[i], "--records") && i + 1 < argc)
      *n = strtoull(argv[++i], &end, 10);
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      *seed = strtoull(argv[++i], &end, 10);
    else if (!strcmp(argv[i], "--out") && i + 1 < argc)
      *out = argv[++i];
    else
      return 2;
    if (end && *end)
      return 2;
  }
  return *n && *out ? 0 : 2;
}

int cmd_sample(int argc, char **argv) {
  uint64_t n = 0, seed = 1;
  const char *dir = NULL;
  if (parse_args(argc, argv, &n, &seed, &dir)) {
    fprintf(stderr,
            "usage: sanjiao sample --records N [--seed S] --out DIR\n"
            "  writes DIR/310000.ndjson .. DIR/340000.ndjson (N records in all, test data)\n");
    return 2;
  }
  gen_t *g = calloc(1, sizeof *g);
  if (!g)
    return 1;
  g->target = n;
  g->r.s = seed * 0x2545F4914F6CDD1Dull + 1;
  g->salt = rnd(&g->r) % 1000000007ull;
  g->pool = n / 20 < 50 ? 50 : n / 20 > 200000 ? 200000 : n / 20;
  g->progress = n >= 1000000 || isatty(2);
  int rv = open_outputs(g, dir);
  if (rv == 0)
    rv = generate(g);
  int crv = close_outputs(g);
  rv = rv ? rv : crv;
  if (g->progress)
    fprintf(stderr, "\n");
  if (rv) {
    fprintf(stderr, "sample: cannot write %s: %s\n", dir, sj_strerror(rv));
  } else {
    for (int r = 0; r < NREG; r++)
      printf("%s %llu %s/%s.ndjson\n", regions[r].code, (unsigned long long)g->seq[r], dir,
             regions[r].code);
    if (g->enterprise[0])
      printf("sample-enterprise %s\n", g->enterprise);
    if (g->trace_code[0])
      printf("sample-trace-code %s\n", g->trace_code);
  }
  sj_buf_deinit(&g->line);
  free(g);
  return rv ? 1 : 0;
}
