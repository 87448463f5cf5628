// safetensors: a round trip of every dtype (bytes, shapes, metadata, atomic write), then bad files built
// byte by byte, each of which samx_st_open must refuse with a message naming the file, the problem
// and, where there is one, the tensor.
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness.h"

static char dir[] = "/tmp/samx_st_XXXXXX";

static void path_in_dir(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static int count_files(void) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

// ---- round trip ----

typedef struct {
  const char *name;
  SamxDType dtype;
  int ndim;
  int64_t shape[SAMX_MAX_DIMS];
} Spec;

static const Spec specs[] = {
    {"f32", SAMX_F32, 2, {3, 5}},       {"bf16", SAMX_BF16, 3, {2, 1, 3}}, {"f16", SAMX_F16, 1, {7}},
    {"i32", SAMX_I32, 2, {4, 2}},       {"u8", SAMX_U8, 1, {13}},          {"i64", SAMX_I64, 1, {3}},
    {"scalar", SAMX_F32, 0, {0}},       {"empty", SAMX_F32, 2, {2, 0}},    {"after_empty", SAMX_I32, 1, {2}},
    {"five_dims", SAMX_U8, 5, {1, 2, 1, 2, 3}},
};
#define N_SPECS ((int)(sizeof specs / sizeof *specs))

static size_t spec_bytes(const Spec *s) {
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= s->shape[i];
  return (size_t)n * samx_dtype_size(s->dtype);
}

// Distinct bytes per tensor, so a mix-up of offsets would show.
static void fill_bytes(unsigned char *b, size_t n, int seed) {
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed * 37 + i * 11 + 1);
}

static void check_round_trip(void) {
  char path[600];
  path_in_dir(path, sizeof path, "round.safetensors");
  SamxSTWriter *w = samx_st_writer_new();
  unsigned char buf[256];
  for (int i = 0; i < N_SPECS; i++) {
    fill_bytes(buf, spec_bytes(&specs[i]), i);
    samx_st_writer_add(w, specs[i].name, specs[i].dtype, specs[i].ndim, specs[i].shape, buf);
  }
  samx_st_writer_meta(w, "format", "pt");
  samx_st_writer_meta(w, "note", "quotes \" and unicode \xc3\xa9");
  CHECK(samx_st_writer_save(w, path) == 0, "save: %s", samx_last_error());
  samx_st_writer_free(w);
  CHECK(count_files() == 1, "the atomic writer left %d files behind (expected only the result)", count_files());

  SamxSafetensors st;
  if (samx_st_open(&st, path) != 0) {
    CHECK(0, "open of a file just written: %s", samx_last_error());
    return;
  }
  CHECK(st.n == N_SPECS, "%d tensors read back, %d written", st.n, N_SPECS);
  for (int i = 0; i < N_SPECS; i++) {
    const Spec *s = &specs[i];
    const SamxSTEntry *e = samx_st_find(&st, s->name);
    if (!e) {
      CHECK(0, "tensor %s missing after the round trip", s->name);
      continue;
    }
    int same_shape = e->ndim == s->ndim;
    for (int k = 0; k < s->ndim && same_shape; k++) same_shape = e->shape[k] == s->shape[k];
    CHECK(e->dtype == s->dtype && same_shape, "%s: dtype %s ndim %d after the round trip", s->name,
          samx_dtype_name(e->dtype), e->ndim);
    fill_bytes(buf, spec_bytes(s), i);
    CHECK(e->nbytes == spec_bytes(s) && memcmp(e->data, buf, e->nbytes) == 0, "%s: bytes differ", s->name);
  }
  const SamxSTEntry *first = samx_st_find(&st, specs[0].name);
  CHECK(first && ((const char *)first->data - (const char *)st.map) % 8 == 0, "data block not 8-byte aligned");
  const char *fmt = samx_st_meta(&st, "format"), *note = samx_st_meta(&st, "note");
  CHECK(fmt && strcmp(fmt, "pt") == 0, "metadata 'format' = %s", fmt ? fmt : "(missing)");
  CHECK(note && strcmp(note, "quotes \" and unicode \xc3\xa9") == 0, "metadata 'note' = %s", note ? note : "(missing)");
  CHECK(samx_st_meta(&st, "absent") == NULL, "absent metadata key found");

  // f16/bf16 decode to the right floats, and load_into refuses a shape the model does not expect.
  SamxArena a;
  samx_arena_init(&a, "test", samx_cpu(), 1 << 16, 1 << 14);
  SamxTensor *t = samx_tensor_new(&a, SAMX_F32, SHAPE(5, 3));
  CHECK(samx_st_load_into(&st, samx_st_find(&st, "f32"), t) == -1 && strstr(samx_last_error(), "'f32'") &&
            strstr(samx_last_error(), "[3, 5]") && strstr(samx_last_error(), "[5, 3]"),
        "load_into with a wrong shape: %s", samx_last_error());
  samx_arena_free(&a);
  samx_st_close(&st);
  unlink(path);

  SamxSTWriter *h = samx_st_writer_new();
  uint16_t half[3] = {0x3c00, 0xc000, 0x3555}, bf[2] = {0x3f80, 0xc0a0};  // 1, -2, ~1/3; 1, -5
  int64_t s3 = 3, s2 = 2;
  samx_st_writer_add(h, "h", SAMX_F16, 1, &s3, half);
  samx_st_writer_add(h, "b", SAMX_BF16, 1, &s2, bf);
  CHECK(samx_st_writer_save(h, path) == 0, "save: %s", samx_last_error());
  samx_st_writer_free(h);
  if (samx_st_open(&st, path) == 0) {
    float *hf = samx_st_to_f32(samx_st_find(&st, "h")), *bff = samx_st_to_f32(samx_st_find(&st, "b"));
    CHECK(hf[0] == 1.0f && hf[1] == -2.0f && fabsf(hf[2] - 1.0f / 3) < 1e-3f, "f16 decode %g %g %g", hf[0], hf[1],
          hf[2]);
    CHECK(bff[0] == 1.0f && bff[1] == -5.0f, "bf16 decode %g %g", bff[0], bff[1]);
    free(hf), free(bff);
    samx_st_close(&st);
  }
  unlink(path);
}

// ---- bad files ----

// Writes the 8-byte length `hlen`, then the header text, then n_data bytes of data.
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t n_data) {
  FILE *f = fopen(path, "wb");
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
  fwrite(len8, 1, 8, f);
  fwrite(header, 1, strlen(header), f);
  for (size_t i = 0; i < n_data; i++) fputc((int)i, f);
  fclose(f);
}

// Every needle must appear in the error message.
static void expect_refused(const char *label, const char *path, const char *needle1, const char *needle2) {
  SamxSafetensors st;
  samx_clear_error();
  int rc = samx_st_open(&st, path);
  const char *msg = samx_last_error();
  int ok = rc == -1 && strstr(msg, path) && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2));
  CHECK(ok, "%s: rc %d, message \"%s\" (expected it to name the file, \"%s\"%s%s%s)", label, rc, msg, needle1,
        needle2 ? " and \"" : "", needle2 ? needle2 : "", needle2 ? "\"" : "");
  if (ok) printf("PASS %s: %s\n", label, msg);
  if (rc == 0) samx_st_close(&st);
  unlink(path);
}

static void bad_header(const char *label, const char *header, size_t n_data, const char *needle1,
                       const char *needle2) {
  char path[600];
  path_in_dir(path, sizeof path, "bad.safetensors");
  write_raw(path, strlen(header), header, n_data);
  expect_refused(label, path, needle1, needle2);
}

// Zero-size tensors are legal (torch saves them) and own no bytes, so one may start where another
// tensor starts, whatever the header order.
static void check_empty_tensor_offsets(void) {
  char path[600];
  path_in_dir(path, sizeof path, "empty.safetensors");
  const char *headers[] = {
      "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
      "{\"e\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
  };
  for (int i = 0; i < 2; i++) {
    write_raw(path, strlen(headers[i]), headers[i], 8);
    SamxSafetensors st;
    int rc = samx_st_open(&st, path);
    CHECK(rc == 0, "empty tensor at another tensor's offset (header order %d) refused: %s", i, samx_last_error());
    if (rc == 0) samx_st_close(&st);
    unlink(path);
  }
}

static void check_bad_files(void) {
  char path[600];
  path_in_dir(path, sizeof path, "bad.safetensors");

  FILE *f = fopen(path, "wb");
  fwrite("\x10\x00\x00", 1, 3, f);
  fclose(f);
  expect_refused("file shorter than the length field", path, "shorter than the 8-byte", NULL);

  write_raw(path, 1000, "{\"w\":{}}", 0);
  expect_refused("header length past the end", path, "header length 1000 exceeds the file", NULL);

  // A valid file cut short inside its data block.
  const char *ok_header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
  write_raw(path, strlen(ok_header), ok_header, 16);
  SamxSafetensors st;
  CHECK(samx_st_open(&st, path) == 0, "the untruncated file must open: %s", samx_last_error());
  if (st.map) samx_st_close(&st);
  CHECK(truncate(path, 8 + (off_t)strlen(ok_header) + 10) == 0, "truncate");
  expect_refused("truncated data block", path, "'w'", "truncated");

  bad_header("offsets out of range", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[400,404]}}", 8,
             "'w'", "past the data block");
  bad_header("offsets reversed", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 8, "'w'",
             "not ordered");
  bad_header("overlapping tensors",
             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             12, "'a' and 'b' overlap", NULL);
  bad_header("byte size != dtype size x shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
             "'w'", "8 bytes stored, but F32 x 3 elements need 12");
  bad_header("non-JSON header", "{\"w\": {dtype: F32}}", 0, "not valid JSON", NULL);
  bad_header("header not an object", "[1, 2, 3]", 0, "does not start with '{'", NULL);
  bad_header("duplicate names",
             "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
             2, "duplicate", "w");
  bad_header("unknown dtype", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "'w'",
             "dtype Q7 is not supported");
  bad_header("negative shape", "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1,2],\"data_offsets\":[0,2]}}", 2, "'w'",
             "shape[0] is not a non-negative integer");
  bad_header("missing data_offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, "'w'", "data_offsets");
  bad_header("non-string metadata", "{\"__metadata__\":{\"k\":3}}", 0, "__metadata__ 'k' is not a string", NULL);

  path_in_dir(path, sizeof path, "does_not_exist.safetensors");
  expect_refused("missing file", path, "cannot open", NULL);
}

int main(void) {
  if (!mkdtemp(dir)) {
    printf("FAIL cannot create a temporary directory\n");
    return 1;
  }
  check_round_trip();
  check_bad_files();
  check_empty_tensor_offsets();
  CHECK(count_files() == 0, "%d files left in %s", count_files(), dir);
  rmdir(dir);
  return samx_test_summary();
}
