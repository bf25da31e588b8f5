/* node — the region node: opens the store, loads the region's key and tokens, starts the writer
 * and the HTTP/2 API on the caller's loop. main.c is a thin shell around this, and the tests run
 * it the same way (as a real process on loopback).
 *
 * Loop thread only. Errors: the codes of common/common.h; a message is logged where it happens. */
#ifndef SJ_NODE_H
#define SJ_NODE_H

#include "node/config.h"

#include <uv.h>

typedef struct sj_node sj_node_t;

/* Starts a node on loop with cfg (copied). Errors: SJ_EINVAL (bad config, key, tokens: logged),
 * SJ_EPERM (key file readable by others), SJ_ESTORE, libuv errors (e.g. -EADDRINUSE). */
int sj_node_open(uv_loop_t *loop, const sj_config_t *cfg, sj_node_t **out);
/* The port the API listens on. */
uint16_t sj_node_port(const sj_node_t *n);
/* Re-reads the tokens file (SIGHUP). On error keeps the old tokens and returns the error. */
int sj_node_reload(sj_node_t *n);
/* Graceful stop: stops accepting, finishes requests in flight (up to a few seconds), drains the
 * writer, closes the store. done(arg) runs on the loop once everything is closed. */
void sj_node_close(sj_node_t *n, void (*done)(void *arg), void *arg);

#endif
