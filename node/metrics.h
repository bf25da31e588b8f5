/* node/metrics — request counters and latency histograms per route, rendered as Prometheus text.
 * Loop thread only (the writer's own counters are atomics in sj_writer_stats_t). */
#ifndef SJ_NODE_METRICS_H
#define SJ_NODE_METRICS_H

#include "common/common.h"

#include <stdint.h>

#define SJ_METRICS_MAX_ROUTES 64

typedef struct sj_metrics sj_metrics_t;

int sj_metrics_new(sj_metrics_t **out);
void sj_metrics_free(sj_metrics_t *m);
/* Registers a route label; returns its id (>= 0) or SJ_ETOOBIG. The label is copied. */
int sj_metrics_route(sj_metrics_t *m, const char *label);
/* Counts one answered request. */
void sj_metrics_request(sj_metrics_t *m, int route, int status, uint64_t latency_us);
/* Appends sanjiao_http_requests_total and sanjiao_http_request_duration_seconds. */
int sj_metrics_render(const sj_metrics_t *m, sj_buf_t *out);

#endif
