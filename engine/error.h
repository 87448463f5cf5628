// Error reporting for samx.
// Library functions that can fail on user input (files, shapes given on the command line) return a
// status and leave a message in a thread-local buffer; programming errors abort with file:line.
#ifndef SAMX_ERROR_H
#define SAMX_ERROR_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

// Records a formatted message as the last error; always returns -1 so callers can `return samx_fail(...)`.
int samx_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *samx_last_error(void);
void samx_clear_error(void);

// Aborts with file:line and a message: for violated preconditions (a bug in the caller).
void samx_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define SAMX_DIE(...) samx_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define SAMX_ASSERT(cond, ...)      \
  do {                              \
    if (!(cond)) SAMX_DIE(__VA_ARGS__); \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
