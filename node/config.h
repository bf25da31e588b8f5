/* node/config — the node's configuration: a documented file (docs/CONFIG.md) of "key = value"
 * lines, with command-line flags that override it. Peers (replication) are "[peer REGION]"
 * sections. Plain data; no I/O beyond reading the file. */
#ifndef SJ_NODE_CONFIG_H
#define SJ_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SJ_MAX_PEERS 32
#define SJ_MAX_PEER_URLS 4

typedef struct {
  uint32_t region;                  /* the other region's code */
  char origin[256];                 /* its log's origin name (the key name) */
  char vkey[512];                   /* its pinned verifier key (C2SP text) */
  char urls[SJ_MAX_PEER_URLS][256]; /* where to fetch it: its own node first, then relays */
  size_t nurls;
  char token_file[512];             /* file holding the peer token this node presents */
} sj_peer_conf_t;

typedef struct {
  uint32_t region;         /* --region, required */
  char listen[128];        /* --listen HOST:PORT, default 127.0.0.1:7300 (cleartext h2) */
  char tls_listen[128];    /* --tls-listen HOST:PORT: HTTPS (TLS 1.3, h2) beside it; "" = none */
  char tls_cert[512];      /* --tls-cert: certificate chain (PEM), also the client cert to peers */
  char tls_key[512];       /* --tls-key: its key */
  char tls_ca[512];        /* --tls-ca: CA for peers' server and client certificates */
  int tls_require_client_cert; /* --tls-require-client-cert 1: mutual TLS only on the TLS port */
  char data_dir[512];      /* --data-dir, required */
  char backup_dir[512];    /* --backup-dir, default DATA-DIR.backups */
  char key_file[512];      /* --key, required: C2SP private key, mode 0600 */
  char next_key_file[512]; /* --next-key: key rotation in progress (docs/OPERATIONS.md) */
  char tokens_file[512];   /* --tokens, optional: no file = public only */
  char hmac_key_file[512]; /* --hmac-key: 32-byte hex key shared by the regions for personal ids */
  char log_level[16];      /* --log-level err|warn|info|debug, default info */
  char debug[128];         /* --debug SUBSYSTEMS */
  size_t block_cache_mb;   /* default 256 */
  unsigned block_cache_warm; /* SJ_WARM_* (storage.h): families read through the block cache at
                               start (docs/CONFIG.md); default 0, none */
  int mmap_reads;            /* 1: RocksDB reads table files through memory maps; default 0 */
  size_t max_body;         /* POST /v1/records body limit, default 16 MiB */
  size_t max_group;        /* records per group commit, default 20000 */
  size_t max_conns;        /* default 4096 */
  size_t max_conns_per_addr; /* connections from one IP address; default 128; 0 = no cap */
  size_t cache_entries;    /* lookup response cache: most answers, default 1048576; 0 = off */
  size_t cache_mb;         /* lookup response cache: most MiB of answers, default 1024 */
  size_t fold_cache_entries; /* subjects' public-window folds kept (direct-mapped slots), default
                                65536; 0 = off (every lookup folds) */
  uint64_t cache_ttl;      /* longest a cached public answer (or subject fold) is kept, seconds;
                              default 3600 (an operator's bound: expiry is exact without it) */
  uint64_t poll_ms;        /* replication: checkpoint poll period, default 5000 */
  size_t min_free_mb;      /* appends answer 507 below this much free disk; default 64 */
  size_t token_rate;       /* requests per second per token (burst: twice that); 0 = no limit;
                              default 5000 */
  size_t public_rate;      /* requests per second per source address for callers without a
                              (known) token (burst: twice that); 0 = no limit; default 0 */
  sj_peer_conf_t peers[SJ_MAX_PEERS];
  size_t npeers;
} sj_config_t;

void sj_config_default(sj_config_t *c);
/* Reads a config file over c. On error writes a message into err (errlen bytes) and returns
 * SJ_EFORMAT or -errno. */
int sj_config_load(sj_config_t *c, const char *path, char *err, size_t errlen);
/* Applies argv (flags override the file; --config FILE is read first wherever it appears).
 * Returns 0, 1 if --help was asked, or SJ_EINVAL with a message in err. */
int sj_config_from_args(sj_config_t *c, int argc, char **argv, char *err, size_t errlen);
/* Checks that the required settings are present; SJ_EINVAL with a message otherwise. */
int sj_config_check(const sj_config_t *c, char *err, size_t errlen);
/* Parses a region code (6 digits, 100000..999999). Returns 0 or SJ_EINVAL. */
int sj_region_parse(const char *s, size_t n, uint32_t *out);
extern const char sj_config_usage[];

#endif
