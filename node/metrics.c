/* node/metrics.c — per-route request counts by status and latency histograms. */
#include "node/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Histogram upper bounds in microseconds (Prometheus "le" in seconds); the last bucket is +Inf. */
static const uint64_t bounds_us[] = {50,    100,   250,    500,    1000,   2500,    5000,
                                     10000, 25000, 50000, 100000, 250000, 1000000};
#define NBOUNDS (sizeof bounds_us / sizeof *bounds_us)

typedef struct {
  char label[64];
  uint64_t by_status[500]; /* index status - 100 */
  uint64_t buckets[NBOUNDS + 1];
  uint64_t count;
  uint64_t sum_us;
} route_stats_t;

struct sj_metrics {
  route_stats_t routes[SJ_METRICS_MAX_ROUTES];
  int n;
};

int sj_metrics_new(sj_metrics_t **out) {
  sj_metrics_t *m = calloc(1, sizeof *m);
  if (!m)
    return -ENOMEM;
  *out = m;
  return 0;
}

void sj_metrics_free(sj_metrics_t *m) {
  free(m);
}

int sj_metrics_route(sj_metrics_t *m, const char *label) {
  if (m->n == SJ_METRICS_MAX_ROUTES)
    return SJ_ETOOBIG;
  snprintf(m->routes[m->n].label, sizeof m->routes[0].label, "%s", label);
  return m->n++;
}

void sj_metrics_request(sj_metrics_t *m, int route, int status, uint64_t latency_us) {
  if (route < 0 || route >= m->n)
    return;
  route_stats_t *r = &m->routes[route];
  if (status >= 100 && status < 600)
    r->by_status[status - 100]++;
  size_t b = 0;
  while (b < NBOUNDS && latency_us > bounds_us[b])
    b++;
  r->buckets[b]++;
  r->count++;
  r->sum_us += latency_us;
}

static int render_route(const route_stats_t *r, sj_buf_t *out) {
  int rv = 0;
  uint64_t cum = 0;
  for (size_t b = 0; rv == 0 && b <= NBOUNDS; b++) {
    cum += r->buckets[b];
    if (b < NBOUNDS)
      rv = sj_buf_printf(out, "sanjiao_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                         r->label, (double)bounds_us[b] / 1e6, (unsigned long long)cum);
    else
      rv = sj_buf_printf(out, "sanjiao_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                         r->label, (unsigned long long)cum);
  }
  if (rv == 0)
    rv = sj_buf_printf(out,
                       "sanjiao_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                       "sanjiao_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                       r->label, (double)r->sum_us / 1e6, r->label, (unsigned long long)r->count);
  return rv;
}

int sj_metrics_render(const sj_metrics_t *m, sj_buf_t *out) {
  int rv = sj_buf_append_str(out, "# HELP sanjiao_http_requests_total HTTP requests answered, by route and status.\n"
                                  "# TYPE sanjiao_http_requests_total counter\n");
  for (int i = 0; rv == 0 && i < m->n; i++)
    for (int s = 0; rv == 0 && s < 500; s++)
      if (m->routes[i].by_status[s])
        rv = sj_buf_printf(out, "sanjiao_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                           m->routes[i].label, s + 100,
                           (unsigned long long)m->routes[i].by_status[s]);
  if (rv == 0)
    rv = sj_buf_append_str(out, "# HELP sanjiao_http_request_duration_seconds Time from request to response.\n"
                                "# TYPE sanjiao_http_request_duration_seconds histogram\n");
  for (int i = 0; rv == 0 && i < m->n; i++)
    if (m->routes[i].count)
      rv = render_route(&m->routes[i], out);
  return rv;
}
