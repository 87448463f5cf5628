// Crash-safe file writing: every writer writes to "<path>.tmp.<pid>", fsyncs it, renames it over
// <path> and fsyncs the directory, so a killed run leaves either the old file or the new one.
#ifndef SAMX_FILEIO_H
#define SAMX_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

// Writes the temporary name for path into buf.
void samx_tmp_path(const char *path, char *buf, size_t n);
// fsyncs tmp, renames it to path, fsyncs path's directory. Returns 0 or -1 (samx_last_error).
int samx_commit_tmp(const char *tmp, const char *path);
// Writes the whole buffer atomically (tmp + rename).
int samx_write_file_atomic(const char *path, const void *data, size_t n);
// Reads a whole file into a malloc'd buffer (NUL-terminated). Returns NULL with samx_last_error set.
char *samx_read_file(const char *path, size_t *size);

#ifdef __cplusplus
}
#endif
#endif
