/* common/log.c — the logger behind SJ_LOG_*: one line per event on stderr, level and per-subsystem
 * debug switches set at start-up (or on SIGHUP) and read without locks on the hot path. */
#include "common/common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile int g_level = SJ_LOG_LEVEL_INFO;
static char g_debug[256]; /* comma-separated subsystems with DEBUG on; "all" for every one */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

void sj_log_set_level(sj_log_level_t level) {
  g_level = (int)level;
}

void sj_log_set_debug(const char *subsystems) {
  pthread_mutex_lock(&g_lock);
  snprintf(g_debug, sizeof g_debug, "%s", subsystems ? subsystems : "");
  pthread_mutex_unlock(&g_lock);
}

static int debug_on(const char *subsys) {
  size_t n = strlen(subsys);
  const char *p = g_debug;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if ((len == 3 && memcmp(p, "all", 3) == 0) || (len == n && memcmp(p, subsys, n) == 0))
      return 1;
    if (!e)
      break;
    p = e + 1;
  }
  return 0;
}

int sj_log_enabled(sj_log_level_t level, const char *subsys) {
  if ((int)level <= g_level)
    return 1;
  return level == SJ_LOG_LEVEL_DEBUG && g_debug[0] && debug_on(subsys);
}

void sj_log_write(sj_log_level_t level, const char *subsys, const char *fmt, ...) {
  static const char *names[] = {"ERR", "WARN", "INFO", "DEBUG"};
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int off = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %-8s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level], subsys);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s\n", line); /* one fprintf: stdio locks the stream, lines never interleave */
}
