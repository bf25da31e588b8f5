/* tools/cli/keys.c — `sanjiao keygen` and `sanjiao token new`: local secrets, no network. */
#include "tools/cli/cli.h"

#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_secret_file(const char *path, const sj_buf_t *text, int force) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (force ? 0 : O_EXCL), 0600);
  if (fd < 0)
    return -errno;
  int rv = fchmod(fd, 0600) ? -errno : 0; /* an existing file keeps its mode otherwise */
  if (rv == 0 && (write(fd, text->p, text->n) != (ssize_t)text->n || write(fd, "\n", 1) != 1))
    rv = -EIO;
  if (rv == 0 && fsync(fd))
    rv = -errno;
  close(fd);
  return rv;
}

int cmd_keygen(int argc, char **argv) {
  const char *origin = NULL, *out = NULL;
  int force = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--origin") && i + 1 < argc)
      origin = argv[++i];
    else if (!strcmp(argv[i], "--out") && i + 1 < argc)
      out = argv[++i];
    else if (!strcmp(argv[i], "--force"))
      force = 1;
    else {
      fprintf(stderr, "usage: sanjiao keygen --origin NAME --out FILE [--force]\n");
      return 2;
    }
  }
  if (!origin || !out) {
    fprintf(stderr, "usage: sanjiao keygen --origin NAME --out FILE [--force]\n");
    return 2;
  }
  sj_signer_t *s = NULL;
  sj_buf_t sk = {0}, vk = {0};
  int rv = sj_signer_generate(origin, &s);
  if (rv) {
    fprintf(stderr, "keygen: invalid origin name '%s': %s\n", origin, sj_strerror(rv));
    return 1;
  }
  rv = sj_signer_format(s, &sk);
  if (rv == 0)
    rv = write_secret_file(out, &sk, force);
  if (rv == 0)
    rv = sj_signer_vkey(s, SJ_KEY_ED25519, &vk);
  if (sk.p)
    sodium_memzero(sk.p, sk.cap);
  sj_buf_deinit(&sk);
  sj_signer_free(s);
  if (rv) {
    fprintf(stderr, "keygen: cannot write %s: %s%s\n", out, sj_strerror(rv),
            rv == -EEXIST ? " (use --force to replace it)" : "");
    sj_buf_deinit(&vk);
    return 1;
  }
  printf("private key written to %s (mode 0600); its verifier key:\n%s\n", out, (char *)vk.p);
  sj_buf_deinit(&vk);
  return 0;
}

static void token_usage(void) {
  fprintf(stderr, "usage: sanjiao token new --role submit|authority|subject|peer [--id ID] "
                  "[--region CODE] [--label TEXT]\n"
                  "  subject tokens need --id (USCC or identity number); peer tokens --region\n");
}

int cmd_token(int argc, char **argv) {
  const char *role = NULL, *id = NULL, *region = NULL, *label = NULL;
  if (argc < 2 || strcmp(argv[1], "new")) {
    token_usage();
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    if (i + 1 >= argc) {
      token_usage();
      return 2;
    }
    const char *a = argv[i], *v = argv[++i];
    if (!strcmp(a, "--role"))
      role = v;
    else if (!strcmp(a, "--id"))
      id = v;
    else if (!strcmp(a, "--region"))
      region = v;
    else if (!strcmp(a, "--label"))
      label = v;
    else {
      token_usage();
      return 2;
    }
  }
  int ok = role && (!strcmp(role, "submit") || !strcmp(role, "authority") ||
                    (!strcmp(role, "subject") && id) || (!strcmp(role, "peer") && region));
  if (!ok) {
    token_usage();
    return 2;
  }
  uint8_t raw[32], h[32];
  char token[4 + 65], hex[65];
  randombytes_buf(raw, sizeof raw);
  memcpy(token, "sjt_", 4);
  sj_hex_encode(raw, sizeof raw, token + 4);
  sj_sha256(token, strlen(token), h);
  sj_hex_encode(h, sizeof h, hex);
  const char *arg = !strcmp(role, "subject") ? id : !strcmp(role, "peer") ? region : NULL;
  printf("%s %s%s%s%s%s\n", role, hex, arg ? " " : "", arg ? arg : "", label ? " " : "",
         label ? label : "");
  printf("%s\n", token);
  sodium_memzero(token, sizeof token);
  return 0;
}
