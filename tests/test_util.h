// Helpers shared by the plain tests (not the op harness): the device named on the command line,
// golden safetensors look-ups, temporary directories, and running the samx command line with its
// stderr captured.
#ifndef SAMX_TEST_UTIL_H
#define SAMX_TEST_UTIL_H

#include <stddef.h>

#include "harness.h"

// The device named by argv[1]: "cuda" gives CUDA device 0, anything else (or nothing) the CPU.
// Returns 0, or SAMX_TEST_SKIP after printing "skipped: no CUDA device" when CUDA is asked for and
// there is none (ctest then reports the entry as skipped, never as passed). Call it as
// `if (samx_test_device_arg(...) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;`: CMake gives a test a
// `_cuda` entry only when its source names SAMX_TEST_SKIP.
int samx_test_device_arg(int argc, char **argv, SamxDevice *dev);

// The entry of st named by printf(fmt, a, b); NULL when there is none.
const SamxSTEntry *samx_test_st_get(const SamxSafetensors *st, const char *fmt, const char *a, const char *b);
// Max |t - want| over all elements; infinite on a missing reference, a size mismatch or a NaN.
double samx_test_max_abs_diff(SamxTensor *t, const SamxSTEntry *want);

// "dir/rel" in one of 8 rotating static buffers, so a few can be live in one expression.
const char *samx_test_path(const char *dir, const char *rel);
// mkdir -p of path's parent directory.
void samx_test_make_parent(const char *path);
// Creates a fresh directory /tmp/NAME_XXXXXX and writes its path into dir (size n); 0 on success.
int samx_test_mkdtemp(char *dir, size_t n, const char *name);
// `rm -rf dir`, with a note on stdout when that fails.
void samx_test_remove_dir(const char *dir);
// The exit status of a system() result; -1 when the command was killed by a signal.
int samx_test_exit_status(int system_rc);
// Runs a reference script (PyTorch, transformers, segment_anything) as `PYTHON SCRIPT DIR` into a fresh
// folder /tmp/NAME_XXXXXX, whose path goes to dir (size n). PYTHON is $SAMX_VENV_PYTHON, else the
// checkout's .venv/bin/python (scripts/setup-venv.sh; the tests run in the repository root), else
// $SAMX_PYTHON (a node's own python with the packages on its PYTHONPATH). Returns 0; or -1 after a
// FAIL line or a failed check (no python, no folder, the script's exit status), with the folder removed.
int samx_test_reference_script(const char *script, char *dir, size_t n, const char *name);

// The samx binary: $SAMX_BIN, else "samx" next to this test executable (argv0 when /proc/self/exe
// cannot be read), else build/samx (relative to the repository root, where ctest runs the tests).
const char *samx_test_samx_bin(const char *argv0);
// Runs `samx ARGS` (ARGS printf-style) with stdout to dir/stdout.txt and stderr to dir/stderr.txt,
// from inside dir when in_dir is set; the head of that stderr is copied into err (err_size bytes,
// NUL-terminated). Returns the exit status; -1 when killed by a signal or the command is too long.
int samx_test_run_samx(const char *dir, int in_dir, char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

// Element i of a float tensor on any device (a round trip through the host, for finite differences).
// Runs fn(arg) in a forked child whose stderr is captured into msg (NUL-terminated, at most cap - 1
// bytes); returns the child's wait status (-1 if it could not start). For checks that a call aborts
// with a message: fork before this process touches CUDA, so the child may use it.
int samx_test_run_child(void (*fn)(void *), void *arg, char *msg, size_t cap);
float samx_test_get_elem(SamxTensor *t, int i);
void samx_test_set_elem(SamxTensor *t, int i, float x);

#endif
