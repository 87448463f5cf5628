// Crash-safe file writing: every writer writes to a temporary file, fsyncs it, renames it over the
// target and fsyncs the directory, so a killed run leaves either the old file or the new one.
//
// The target is what the user named, as a user expects it to be treated:
// - a regular file (or a new path): the temporary file is "<path>.tmp.<pid>" beside it;
// - a symlink: the link is kept and its target (followed to the end, a dangling link's too) is
//   replaced; the temporary file sits beside that target;
// - anything else that exists (a FIFO, /dev/null, a terminal, /dev/stdout onto a pipe): it is never
//   replaced; the temporary file is "$TMPDIR/samx-<pid>-<n>-<name>.tmp" and its bytes are streamed into
//   the target on commit.
// All writers go through samx_tmp_path + samx_commit_tmp (or samx_write_file_atomic).
#ifndef SAMX_FILEIO_H
#define SAMX_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// Writes the temporary name for path into buf, and remembers it until samx_commit_tmp: a fatal error
// (SAMX_ASSERT) removes the temporary files still open.
void samx_tmp_path(const char *path, char *buf, size_t n);
// Unlinks every temporary file handed out and not committed (called by samx_die_at before abort).
void samx_remove_live_tmp(void);
// Makes tmp's bytes the content of path (see above) and removes tmp. Returns 0 or -1 (samx_last_error).
int samx_commit_tmp(const char *tmp, const char *path);
// Writes the whole buffer atomically (tmp + rename).
int samx_write_file_atomic(const char *path, const void *data, size_t n);
// Reads a whole file into a malloc'd buffer (NUL-terminated). Returns NULL with samx_last_error set.
char *samx_read_file(const char *path, size_t *size);
// Fails when output `out` is the same file as one of the n inputs (NULL entries skipped): writing it
// would replace an input. `what` names the option in the message ("--out"). Returns 0 or -1.
int samx_check_output_not_input(const char *what, const char *out, const char *const *inputs, int n);
// Removes leftovers "<path>.tmp.<pid>" of writers of path that were killed (SIGKILL, power loss):
// only those whose pid is not a running process. Returns how many were removed.
int samx_remove_stale_tmp(const char *path);

#ifdef __cplusplus
}
#endif
#endif
