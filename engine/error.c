#include "error.h"

#include "fileio.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char last_error[1024];

int samx_fail(const char *fmt, ...) {
  // Formatted apart first: callers wrap the previous error (samx_fail("%s: ...", samx_last_error())),
  // and formatting a buffer into itself is undefined (glibc printed it as "").
  char msg[sizeof last_error];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  memcpy(last_error, msg, sizeof last_error);
  return -1;
}

const char *samx_last_error(void) { return last_error[0] ? last_error : "no error recorded"; }

void samx_clear_error(void) { last_error[0] = 0; }

void samx_die_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "samx: fatal: %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  samx_remove_live_tmp();  // a crashed writer leaves no .tmp behind
  abort();
}
