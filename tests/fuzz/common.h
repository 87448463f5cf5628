// Shared by the fuzz targets: inputs that a reader takes by path go to a per-process file, and
// known, already-filed issues can be stepped over (tests/fuzz/known_issues.txt, SAMX_FUZZ_SKIP).
#ifndef SAMX_FUZZ_COMMON_H
#define SAMX_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>

// Writes data to a file named after the process and `suffix` (".pth", ".h5" ...) under
// $SAMX_FUZZ_TMP (default /dev/shm, else /tmp) and returns its path (static storage, one per suffix
// slot: slot 0..3). Aborts when the file cannot be written (that is the harness, not a finding).
const char *fuzz_write_file(int slot, const char *suffix, const uint8_t *data, size_t n);
// Writes data to path (aborts on failure).
void fuzz_write_at(const char *path, const uint8_t *data, size_t n);
// The folder of those files.
const char *fuzz_tmp_dir(void);
// A path under the same folder for a reader's output (not created).
const char *fuzz_out_path(int slot, const char *suffix);
// True when `id` is in the comma-separated list of $SAMX_FUZZ_SKIP: an issue filed and being fixed
// elsewhere, whose inputs the target returns early on (listed in tests/fuzz/known_issues.txt).
int fuzz_skip(const char *id);
// Redirects stdout to /dev/null once (commands print tables); stderr stays for libFuzzer.
void fuzz_quiet(void);

// libhdf5 must not take samx down with it: before a target hands file bytes to samx's HDF5 readers,
// the checker (the program fuzz_h5_checker, started once) opens the file with libhdf5 alone in a
// worker process and reads every attribute and dataset, within FUZZ_H5_META_CPU_S of CPU time
// (FUZZ_H5_BULK_CPU_S once it reads a dataset of more than FUZZ_H5_BULK_BYTES). Returns 1 when the
// worker crashed or hung: a libhdf5 finding, not samx's; the input is saved under
// $SAMX_FUZZ_UPSTREAM_DIR (when set) and the target skips it. SAMX_FUZZ_NO_ISOLATION=1 runs the same
// reads in-process instead (to see a libhdf5 crash's stack).
int fuzz_h5_upstream_fails(const char *path, const uint8_t *data, size_t n);
// Aborts (a finding) when any HDF5 file, dataset, group, attribute or type id is still open after a
// reader returned: the next input reuses the path, and a leaked id would carry this file's state into it.
void fuzz_h5_expect_all_closed(const char *what);
// What the checker does with one file: open it and read every attribute and dataset as h5io.c does.
void fuzz_h5_preflight(const char *path);
// Turns libhdf5's own free lists off (the targets and the checker both do): see common.c.
void fuzz_h5_no_free_lists(void);
// Called by fuzz_h5_preflight before it reads a dataset of more than FUZZ_H5_BULK_BYTES (the worker
// tells the supervisor, which then allows the longer deadline).
extern void (*fuzz_h5_bulk_read_hook)(void);
#define FUZZ_H5_BULK_BYTES (1u << 20)
#define FUZZ_H5_META_CPU_S 0.1
#define FUZZ_H5_BULK_CPU_S 5.0
#endif
