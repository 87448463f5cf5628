#include "error.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char last_error[1024];

int samx_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
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
  abort();
}
