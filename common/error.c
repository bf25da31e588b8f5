/* common/error.c — sj_strerror(): one table for Sanjiao's own codes, strerror() for -errno. */
#include "common/common.h"

#include <string.h>

const char *sj_strerror(int rv) {
  switch (rv) {
  case 0: return "success";
  case SJ_EINVAL: return "invalid argument or input";
  case SJ_ETRUNC: return "input truncated";
  case SJ_EFORMAT: return "malformed input";
  case SJ_EVERSION: return "unknown format version";
  case SJ_EVERIFY: return "verification failed";
  case SJ_ENOTFOUND: return "not found";
  case SJ_ESEQ: return "sequence number does not follow the log";
  case SJ_ECHAIN: return "chain link does not follow the log";
  case SJ_ESTORE: return "storage engine error";
  case SJ_ETOOBIG: return "input exceeds a limit";
  case SJ_EBUSY: return "resource busy";
  case SJ_ERANGE: return "index or size out of range";
  case SJ_EPROTO: return "protocol violation by peer";
  case SJ_ECLOSED: return "stream or connection closed";
  case SJ_ETIMEDOUT: return "timed out";
  case SJ_EEXIST: return "already exists";
  case SJ_EPERM: return "not permitted";
  case SJ_ENOSPACE: return "no space left on device";
  default: break;
  }
  if (rv < 0 && rv > -1000)
    return strerror(-rv); /* glibc's table is static; fine for -errno */
  return "unknown error";
}
