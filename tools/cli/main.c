/* tools/cli/main.c — `sanjiao`: the command line of a Sanjiao node. Dispatches to the commands. */
#include "tools/cli/cli.h"

#include "crypto/crypto.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: sanjiao COMMAND [ARGS] [--node URL] [--token-file FILE] [--ca FILE] [--json]\n"
    "commands:\n"
    "  keygen --origin NAME --out FILE     new Ed25519 key (C2SP); prints the verifier key last\n"
    "  token new --role ROLE [...]         new bearer token; prints the tokens-file line, then it\n"
    "  submit [FILE|-] [--ndjson] [--idempotency-key K]   append records (JSON or NDJSON)\n"
    "  get REGION SEQ                      one record\n"
    "  subject ID                          every record about an enterprise or person\n"
    "  trace CODE [--journey [--direction back|forward|both] [--depth N] [--limit N]]\n"
    "                                      events naming a trace code (EPC URN or Digital Link),\n"
    "                                      or its journey across regions as a timeline\n"
    "  checkpoint REGION                   the region's latest signed checkpoint\n"
    "  prove REGION SEQ --vkey VKEY        fetch a record, its proof and checkpoint; verify offline\n"
    "  report ID                           a subject's credit report\n"
    "  sample --records N --seed S --out DIR   deterministic Delta test data, NDJSON per region\n"
    "  import FILE [--region R] [--batch N] [--skip-invalid] [--resume] [--list TYPE]\n"
    "                                      bulk import (NDJSON, EPCIS document, CSV of lists)\n"
    "  cluster up|down --dir DIR [--base-port P]   a local four-region cluster\n"
    "The token comes from --token-file FILE or $SANJIAO_TOKEN; the node from --node or\n"
    "$SANJIAO_NODE (default http://127.0.0.1:7300); for https:// nodes the CA certificate from\n"
    "--ca FILE or $SANJIAO_CA (default: the system's store).\n";

int main(int argc, char **argv) {
  if (sj_crypto_init()) {
    fprintf(stderr, "sanjiao: cannot initialise libsodium\n");
    return 1;
  }
  sj_log_set_level(SJ_LOG_LEVEL_ERR); /* commands print their own errors */
  signal(SIGPIPE, SIG_IGN);           /* a peer closing mid-write is an error, not a death */
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  argc--, argv++;
  if (!strcmp(cmd, "keygen"))
    return cmd_keygen(argc, argv);
  if (!strcmp(cmd, "token"))
    return cmd_token(argc, argv);
  if (!strcmp(cmd, "sample"))
    return cmd_sample(argc, argv);
  if (!strcmp(cmd, "cluster"))
    return cmd_cluster(argc, argv);
  cli_opts_t o;
  int rv = cli_common_args(&argc, argv, &o);
  if (rv)
    return rv;
  if (!strcmp(cmd, "submit"))
    return cmd_submit(argc, argv, &o);
  if (!strcmp(cmd, "get"))
    return cmd_get(argc, argv, &o);
  if (!strcmp(cmd, "subject"))
    return cmd_subject(argc, argv, &o);
  if (!strcmp(cmd, "trace"))
    return cmd_trace(argc, argv, &o);
  if (!strcmp(cmd, "checkpoint"))
    return cmd_checkpoint(argc, argv, &o);
  if (!strcmp(cmd, "prove"))
    return cmd_prove(argc, argv, &o);
  if (!strcmp(cmd, "report"))
    return cmd_report(argc, argv, &o);
  if (!strcmp(cmd, "import"))
    return cmd_import(argc, argv, &o);
  fprintf(stderr, "sanjiao: unknown command '%s'\n%s", cmd, usage);
  return 2;
}
