/* tools/cli/report.c — `sanjiao report ID [--purpose TEXT]`: a subject's credit report
 * (GET /v1/subjects/{id}/report) printed readably, with Chinese and English labels; --json prints
 * the node's answer as it is. Every item names its region, sequence number and leaf hash, so that
 * `sanjiao prove REGION SEQ` can prove it. */
#include "tools/cli/cli.h"

#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *key, *zh, *en;
} label_t;

static const label_t statuses[] = {{"active", "有效", "active"},
                                   {"pending", "未生效", "pending"},
                                   {"expired", "已到期", "expired"},
                                   {"repaired", "已修复", "repaired"},
                                   {"removed", "已移出", "removed"},
                                   {"revoked", "已撤销", "revoked"},
                                   {"superseded", "已更正", "superseded"},
                                   {"replaced", "已被新评级取代", "replaced"},
                                   {"action", "操作", "action"},
                                   {"unknown", "正文未持有", "body not held"},
                                   {NULL, NULL, NULL}};

static const label_t severities[] = {{"minor", "轻微", "minor"},
                                     {"general", "一般", "general"},
                                     {"serious", "严重", "serious"},
                                     {NULL, NULL, NULL}};

static const label_t types[] = {{"penalty", "行政处罚", "penalty"},
                                {"blacklist", "严重失信主体名单", "blacklist"},
                                {"abnormal_list", "经营异常名录", "abnormal list"},
                                {"rating", "信用评级", "rating"},
                                {"procurement_ban", "政府采购禁入", "procurement ban"},
                                {"commitment", "信用承诺", "commitment"},
                                {"commendation", "表彰", "commendation"},
                                {"repair", "信用修复", "repair"},
                                {NULL, NULL, NULL}};

static const label_t schemes[] = {
    {"road_transport_driver", "道路运输驾驶员诚信考核", "road transport driver"},
    {"environmental_credit", "企业环境信用评价", "environmental credit"},
    {"tax_credit", "纳税信用级别", "tax credit"},
    {NULL, NULL, NULL}};

static const label_t regions[] = {{"310000", "上海", "Shanghai"},
                                  {"320000", "江苏", "Jiangsu"},
                                  {"330000", "浙江", "Zhejiang"},
                                  {"340000", "安徽", "Anhui"},
                                  {NULL, NULL, NULL}};

static const label_t sections[] = {{"lists", "名单", "List memberships"},
                                   {"ratings", "当前评级", "Current ratings"},
                                   {"penalties", "行政处罚", "Penalties"},
                                   {"bans", "禁入与限制", "Bans"},
                                   {"other", "承诺与表彰", "Commitments and commendations"},
                                   {"expired", "已到期或移出", "Expired or removed"},
                                   {"repaired", "已修复", "Repaired"},
                                   {"revoked", "已撤销", "Revoked"},
                                   {"actions", "更正、修复、撤销、移出记录", "Lifecycle actions"},
                                   {"withheld", "本节点未持有正文", "Bodies not held here"},
                                   {NULL, NULL, NULL}};

static const label_t *find(const label_t *t, const char *key) {
  for (; key && t->key; t++)
    if (!strcmp(t->key, key))
      return t;
  return NULL;
}

static const char *str(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

/* "中文 English" for a known key, else the key itself. */
static void print_label(const label_t *t, const char *key) {
  const label_t *l = find(t, key);
  if (l)
    printf("%s %s", l->zh, l->en);
  else
    printf("%s", key);
}

static void print_item(const json_t *it) {
  const char *sch = str(it, "scheme"), *sev = str(it, "severity");
  printf("  - ");
  if (*sch) {
    print_label(schemes, sch);
    printf(": %s", str(it, "grade"));
  } else {
    print_label(types, str(it, "type"));
    if (*sev) {
      printf(" · ");
      print_label(severities, sev);
    }
  }
  if (json_is_true(json_object_get(it, "specific_serious")))
    printf(" · 特定严重失信 specific serious");
  printf("  [");
  print_label(statuses, str(it, "status"));
  printf("]\n");
  if (*str(it, "list"))
    printf("      名单 list: %s\n", str(it, "list"));
  if (*str(it, "decision_number") || *str(it, "authority"))
    printf("      决定 decision: %s  %s\n", str(it, "decision_number"), str(it, "authority"));
  const json_t *ref = json_object_get(it, "ref");
  if (ref)
    printf("      针对 acts on: %s #%lld (%s)\n", str(ref, "region"),
           (long long)json_number_value(json_object_get(ref, "seq")), str(it, "action"));
  if (!strcmp(str(it, "status"), "action"))
    printf("      日期 date: %s\n", str(it, "from"));
  else
    printf("      期间 period: %s → %s\n", *str(it, "from") ? str(it, "from") : "?",
           *str(it, "until") ? str(it, "until") : "无期限 open-ended");
  size_t k;
  const json_t *c;
  json_array_foreach(json_object_get(it, "corrects"), k, c) {
    printf("      更正了 corrects: %s #%lld\n", str(c, "region"),
           (long long)json_integer_value(json_object_get(c, "seq")));
  }
  if (json_object_get(it, "public_until") && strcmp(str(it, "status"), "action"))
    printf("      公示至 public until: %s\n",
           *str(it, "public_until") ? str(it, "public_until") : "不公示 not published");
  if (json_object_get(it, "repairable_from") && !strcmp(str(it, "status"), "active"))
    printf("      可申请修复 repairable from: %s\n", *str(it, "repairable_from")
                                                         ? str(it, "repairable_from")
                                                         : "期满前不可修复 not before the end");
  const json_t *end = json_object_get(it, "ended_by");
  if (end)
    printf("      终止 ended by %s %s #%lld on %s\n", str(end, "action"), str(end, "region"),
           (long long)json_integer_value(json_object_get(end, "seq")), str(end, "date"));
  if (*str(it, "not_applied"))
    printf("      未生效 not applied: %s\n", str(it, "not_applied"));
  const label_t *rg = find(regions, str(it, "region"));
  printf("      来源 source: %s%s%s %s #%lld  leaf %s\n", str(it, "region"), rg ? " " : "",
         rg ? rg->zh : "", rg ? rg->en : "",
         (long long)json_integer_value(json_object_get(it, "seq")), str(it, "leaf_hash"));
}

static void print_report(const json_t *j) {
  printf("信用报告 Credit report: %s\n", str(j, "subject"));
  printf("视图 View: %s   截至 As of: %s   条目 Entries: %lld%s\n", str(j, "view"), str(j, "as_of"),
         (long long)json_integer_value(json_object_get(j, "entries")),
         json_is_true(json_object_get(j, "truncated")) ? " (截断 truncated)" : "");
  printf("地区 Regions:");
  size_t i;
  const json_t *v;
  json_array_foreach(json_object_get(j, "regions"), i, v) {
    const label_t *rg = find(regions, json_string_value(v));
    printf(" %s%s%s", json_string_value(v), rg ? " " : "", rg ? rg->zh : "");
  }
  printf("\n");
  for (const label_t *s = sections; s->key; s++) {
    const json_t *arr = json_object_get(j, s->key);
    if (!arr)
      continue;
    printf("\n%s %s:%s\n", s->zh, s->en, json_array_size(arr) ? "" : " 无 none");
    json_array_foreach(arr, i, v) print_item(v);
  }
}

static int fetch(const cli_opts_t *o, const char *path, const char *purpose, int *status,
                 sj_buf_t *resp) {
  sj_buf_t url = {0}, auth = {0};
  sj_header_t h[2];
  size_t nh = 0;
  sj_buf_printf(&url, "%s%s", o->node, path);
  if (o->token[0]) {
    sj_buf_printf(&auth, "Bearer %s", o->token);
    h[nh++] = (sj_header_t){"authorization", (const char *)auth.p};
  }
  if (purpose)
    h[nh++] = (sj_header_t){"x-purpose", purpose};
  int rv = sj_http_fetch((const char *)url.p, "GET", h, nh, NULL, 0, 120000, status, resp, NULL);
  if (rv)
    fprintf(stderr, "sanjiao: GET %s: %s\n", (const char *)url.p, sj_strerror(rv));
  sj_buf_deinit(&url);
  sj_buf_deinit(&auth);
  return rv;
}

int cmd_report(int argc, char **argv, const cli_opts_t *o) {
  const char *id = NULL, *purpose = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--purpose") && i + 1 < argc)
      purpose = argv[++i];
    else if (!id && argv[i][0] != '-')
      id = argv[i];
    else
      id = NULL, i = argc;
  }
  if (!id) {
    fprintf(stderr, "usage: sanjiao report ID [--purpose TEXT] [--json]\n");
    return 2;
  }
  sj_buf_t path = {0}, resp = {0};
  int status = 0;
  sj_buf_append_str(&path, "/v1/subjects/");
  cli_path_escape(id, &path);
  sj_buf_append_str(&path, "/report");
  int rv = fetch(o, (const char *)path.p, purpose, &status, &resp);
  json_t *j = NULL;
  if (rv == 0 && status != 200) {
    cli_print_problem(status, &resp);
    rv = 1;
  } else if (rv == 0 && !(j = json_loadb((const char *)resp.p, resp.n, 0, NULL))) {
    fprintf(stderr, "sanjiao: the node's answer is not JSON\n");
    rv = 1;
  } else if (rv == 0 && o->json) {
    printf("%.*s\n", (int)resp.n, (const char *)resp.p);
  } else if (rv == 0) {
    print_report(j);
  }
  json_decref(j);
  sj_buf_deinit(&path);
  sj_buf_deinit(&resp);
  return rv ? 1 : 0;
}
