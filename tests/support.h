/* tests/support.h — helpers shared by the Check suites: scratch directories and files, shell
 * commands, JSON, one-call HTTP/2 requests, sanjiao-node processes on loopback (test_node,
 * test_trace, test_credit, test_crash), cluster suites' commands (test_cluster, test_partition),
 * and a libuv loop with a guard timer for the suites that drive net's server and client themselves
 * (test_net, test_tls).
 *
 * Test code, not a library of the project: a helper that meets an error fails the running test
 * through Check's ck_assert (fork mode: the test's process exits; CK_FORK=no: Check longjmps back),
 * unless its comment says it returns the error. Helpers marked "any thread" may be called from a
 * test's own threads (they never ck_assert); the others belong to the test's main thread. Strings
 * passed in are borrowed for the call only, unless said otherwise. */
#ifndef SJ_TESTS_SUPPORT_H
#define SJ_TESTS_SUPPORT_H

#include "common/common.h"
#include "crypto/crypto.h"
#include "net/net.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- Files, directories, commands ------------------------------------------------------------ */

/* Sleeps ms milliseconds (any thread). */
void sj_test_sleep_ms(long ms);

/* Makes a fresh directory "$SJ_TMPDIR/<prefix>.XXXXXX" (/tmp without SJ_TMPDIR) into dir. */
void sj_test_tmpdir(char *dir, size_t cap, const char *prefix);

/* Removes dir and everything below it; returns 0, or -1 after saying so on stderr. */
int sj_test_rmtree(const char *dir);

/* Creates or truncates path with text and the given mode. */
void sj_test_write_file(const char *path, const char *text, mode_t mode);

/* Runs a shell command given as a printf format; returns its exit status, or -1 when it did not
 * exit normally. */
int sj_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs cmd with popen (any thread); returns its stdout, NUL-terminated and malloc'd (the caller
 * frees it), and in *status pclose's result (-1 when it could not be started, with "" as output).
 */
char *sj_test_popen(const char *cmd, int *status);

/* Parses n bytes of JSON; the test fails, showing the bytes, when they are not JSON. The caller
 * owns the result (json_decref). */
json_t *sj_test_json(const void *p, size_t n);

/* A TCase that holds one test: the TCase's name and the test (START_TEST's name). */
typedef struct sj_test_case {
  const char *name;
  const TTest *test;
} sj_test_case_t;

/* Adds to s one TCase per entry of cases[n], each with the checked fixture setup/teardown and a
 * timeout in seconds. */
void sj_test_add_cases(Suite *s, const sj_test_case_t *cases, size_t n, SFun setup, SFun teardown,
                       double timeout);

/* Runs every test of s in Check's default mode (CK_FORK decides fork or not) and frees it; returns
 * EXIT_SUCCESS when none failed, else EXIT_FAILURE (main's return value). */
int sj_test_run_suite(Suite *s);

/* ---- HTTP/2 requests (sj_http_fetch) --------------------------------------------------------- */

/* One request; zero members take the defaults. */
typedef struct sj_test_req {
  const char *method;  /* "GET" when NULL */
  const char *path;    /* appended to the base URL; may be NULL */
  const char *token;   /* sent as "authorization: Bearer <token>" when set */
  const char *ctype;   /* content-type, when set */
  const char *idem;    /* idempotency-key, when set */
  const char *purpose; /* x-purpose, when set */
  const char *body;    /* request body, or NULL for none */
  size_t len;          /* body length; 0 means strlen(body) */
  uint64_t timeout_ms; /* 20000 when 0 */
} sj_test_req_t;

/* Sends r to base (e.g. "http://127.0.0.1:7300") + r->path and waits for the answer (any thread).
 * Returns the HTTP status with the body in out (reset first), or sj_http_fetch's negative error. */
int sj_test_fetch(const char *base, const sj_test_req_t *r, sj_buf_t *out);

/* Polls base + "/healthz" every 25 ms until it answers 200 or about max_ms passed; returns the last
 * status (or negative error), 200 when the node is up. */
int sj_test_wait_healthy(const char *base, long max_ms);

/* Verifies the signed checkpoint note (n bytes at p) with vkey and parses it into *cp; the test
 * fails when either does not succeed. */
void sj_test_checkpoint_verify(const char *vkey, const void *p, size_t n, sj_checkpoint_t *cp);

/* Called for each entry sj_test_check_entries verified, with its sequence number and leaf hash. */
typedef void (*sj_test_leaf_fn)(void *arg, uint64_t seq, const uint8_t leaf[SJ_HASH_LEN]);

/* Verifies the entries in b, frames as GET /v1/logs/{region}/entries returns them: each header
 * decodes, carries the sequence number *next (then advanced) and the leaf hash of the entry before
 * it, prev (then set to its own: all zero before entry 0), and a body that is present matches the
 * header's hash. Calls on_leaf(arg, ...) for each entry when on_leaf is set. Returns how many
 * entries came with their body. The test fails, naming the entry, on the first mismatch. */
size_t sj_test_check_entries(const sj_buf_t *b, uint64_t *next, uint8_t prev[SJ_HASH_LEN],
                             sj_test_leaf_fn on_leaf, void *arg);

/* ---- A sanjiao-node process on loopback ------------------------------------------------------ */

/* A test's HMAC key for personal identifiers, as the node reads it (hex). */
#define SJ_TEST_HMAC_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* One node; several may run in one test, each with its own directory. Plain data the test owns
 * (static or on its stack); nothing in it needs freeing beyond stopping the process. */
typedef struct sj_test_node {
  char dir[512];  /* its files: key, hmac, tokens, node.log, and data/ (the store) */
  char region[8]; /* the region it serves (--region) */
  char url[64];   /* "http://127.0.0.1:<port>" */
  char vkey[256]; /* the verifier key of its signing key, for checking its checkpoints */
  uint16_t port;  /* the loopback port it listens on, free when init chose it */
  pid_t pid;      /* the running process, 0 when stopped */
} sj_test_node_t;

/* Prepares n in dir (which must exist): a new Ed25519 signing key for origin (file key, n->vkey),
 * the HMAC key SJ_TEST_HMAC_HEX (file hmac), an empty tokens file and a free loopback port. Does
 * not start the node. */
void sj_test_node_init(sj_test_node_t *n, const char *dir, const char *region, const char *origin);

/* Appends a token line to the node's tokens file: "<role> <sha256 hex of token>[ <arg>] <label>"
 * (arg is the subject id of a subject token, NULL otherwise). A running node rereads the file on
 * SIGHUP. */
void sj_test_node_add_token(const sj_test_node_t *n, const char *role, const char *token,
                            const char *arg, const char *label);

/* Starts sanjiao-node from $SJ_BIN with n's region, port and files (log level warn, stderr
 * appended to node.log) plus args (NULL-terminated, may be NULL), and waits until /healthz
 * answers 200 (10 s at most). Safe while the test's other threads run (the child only execs). */
void sj_test_node_start(sj_test_node_t *n, const char *const *args);

/* Sends sig to the node and reaps it; nothing when it is not running. */
void sj_test_node_stop(sj_test_node_t *n, int sig);

/* The node's tree size, from /healthz. */
uint64_t sj_test_node_tree_size(const sj_test_node_t *n);

/* An unlabelled counter or gauge of the node's /metrics (e.g. "sanjiao_cache_hits_total"); fails
 * the test when it is absent. */
unsigned long long sj_test_node_metric(const sj_test_node_t *n, const char *name);

/* ---- A loop under test (net's server and client) --------------------------------------------- */

/* A libuv loop and a guard timer that bounds every wait on it. Embed it (static or on the stack);
 * init, run, close on one thread. */
typedef struct sj_test_loop {
  uv_loop_t loop;   /* the loop the test's servers and clients run on */
  uv_timer_t guard; /* fires when a wait's time is up */
  int guard_fired;  /* set by the guard's callback */
} sj_test_loop_t;

/* Initialises the loop and its guard timer. */
void sj_test_loop_init(sj_test_loop_t *l);

/* Runs the loop until *flag >= target or ms elapsed; returns whether the target was met. */
int sj_test_loop_run_until(sj_test_loop_t *l, const int *flag, int target, uint64_t ms);

/* Runs the loop for ms. */
void sj_test_loop_run_for(sj_test_loop_t *l, uint64_t ms);

/* A function running on a helper thread while the loop keeps serving: a blocking client (curl,
 * sj_http_fetch) against a server on this loop. Opaque; the loop's thread starts and finishes it.
 */
typedef struct sj_test_job sj_test_job_t;

/* Starts fn(arg) on a helper thread; fn must not touch the loop. The job is the caller's until
 * sj_test_job_finish. */
sj_test_job_t *sj_test_job_start(sj_test_loop_t *l, void (*fn)(void *arg), void *arg);

/* Whether the loop has seen the job finish (it runs the loop, e.g. sj_test_loop_run_for, first). */
int sj_test_job_done(const sj_test_job_t *j);

/* Runs the loop until the job finished or ms passed, then joins the thread (waiting for it either
 * way) and frees the job; returns whether it finished within ms. */
int sj_test_job_finish(sj_test_loop_t *l, sj_test_job_t *j, uint64_t ms);

/* Ends a test: runs the loop until *closed >= want (the test's server and clients closing, 5 s at
 * most), closes the guard and the loop, and fails the test unless the closing completed and
 * uv_loop_close returned 0 (no handle leaked). */
void sj_test_loop_finish(sj_test_loop_t *l, const int *closed, int want);

/* One client request's outcome, filled by sj_test_request's completion. */
typedef struct sj_test_result {
  int done, err, status; /* done: 1 once completed; err: the client's error; status: HTTP status */
  sj_buf_t body;         /* the response body (the test frees it) */
  char ctype[64];        /* the content-type header, "" without one */
  char allow[64];        /* the allow header, "" without one */
  int *counter;          /* incremented on completion, if set (set it after sj_test_request) */
} sj_test_result_t;

/* The sj_call_cbs_t on_done that fills the sj_test_result_t arg (body appended, headers kept). */
void sj_test_result_done(int err, const sj_resp_t *resp, void *arg);

/* Sends r on c with completion filling res (zeroed first; must outlive the request). */
void sj_test_request(sj_client_t *c, const sj_call_req_t *r, sj_test_result_t *res);

/* Whether the response body is exactly s. */
int sj_test_body_is(const sj_test_result_t *r, const char *s);

#endif
