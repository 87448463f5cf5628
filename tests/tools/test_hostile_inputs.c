// Inputs a careless or hostile user gives the commands, each of which once crashed, destroyed a file
// or gave a silently wrong result (tests/data/sam_tiny's model, 160-pixel input):
//  - a 2000 x 1 image (its short side rounds to 0 pixels at 160): `samx segment` writes a 2000 x 1
//    mask, a dataset of such images runs through `samx infer` and leaves no temporary file;
//  - a PNG whose header declares 20000 x 20000 is refused naming SAMX_MAX_IMAGE_PIXELS, and read
//    again when the limit is raised past it (then failing only on its missing pixels);
//  - `samx segment --out m.jpg` writes JPEG (read back by libjpeg), an unknown extension is refused
//    before any work, --out onto --image is refused and the image survives;
//  - the decoder head count survives a save/load round trip (it was always read back as 8), `samx
//    convert --dec-heads 4` is honoured and --dec-heads 3 (not a divisor of the width) refused;
//  - NaN weights: ReLU keeps NaN as PyTorch's does, and `segment` and `infer` refuse non-finite
//    outputs instead of writing a plausible mask;
//  - a .pth whose stored tensor member has a flipped byte is refused (CRC-32), not loaded silently;
//  - `samx pack folder` refuses a symlink loop and a file reached twice; `samx data check` reports the
//    same image under two cases and one case in two splits;
//  - messages: a schema error names the file, a truncated HDF5 file is not called a locking problem,
//    a mask of the wrong size is printed with its size (was 0x0);
//  - a fatal error (SAMX_ASSERT) removes the temporary files the process had not committed;
//  - usage errors exit 2 (embed, figure), `bench -r 0` and `-r abc` are refused.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness.h"
#include "../test_util.h"
#include "data/dataset.h"
#include "data/image_io.h"
#include "data/predictions.h"
#include "engine/samx.h"
#include "models/sam/sam.h"

#define CKPT "tests/data/sam_tiny/sam_tiny.pth"

static const char *bin;
static char dir[256];
static char err_text[8192];

#define samx_run(...) samx_test_run_samx(dir, 0, err_text, sizeof err_text, __VA_ARGS__)

static int tmp_files_in_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls -a %s | grep -c '\\.tmp' > %s/count.txt", dir, dir);
  (void)!system(cmd);
  char *s = samx_read_file(samx_test_path(dir, "count.txt"), NULL);
  int n = s ? atoi(s) : -1;
  free(s);
  return n;
}

static void thin_images(void) {
  const char *png = samx_test_path(dir, "thin.png"), *out = samx_test_path(dir, "thin_mask.png");
  uint8_t *pix = (uint8_t *)malloc(2000);
  for (int i = 0; i < 2000; i++) pix[i] = (uint8_t)(i < 1000 ? 200 : 20);
  CHECK(samx_png_write(png, pix, 2000, 1, 1) == 0, "writing thin.png: %s", samx_last_error());
  int rc = samx_run("segment --checkpoint %s --image %s --box 0,0,1000,1 --out %s --device cpu", CKPT, png, out);
  CHECK(rc == 0, "segment of a 2000x1 image: exit %d (crashed: %d): %s", rc, rc < 0, err_text);
  SamxImage m = {0};
  CHECK(rc != 0 || (samx_image_read(out, &m) == 0 && m.w == 2000 && m.h == 1), "the mask is not 2000x1");
  free(m.data);

  // A dataset of 2000 x 1 images through infer.
  const char *data = samx_test_path(dir, "thin.h5"), *pred = samx_test_path(dir, "thin_pred.h5");
  SamxDatasetSpec spec = {.h = 1, .w = 2000, .k = 1, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test",
                          .modality = "synthetic"};
  SamxDatasetWriter *dw = samx_dataset_create(data, &spec);
  uint8_t *mask = (uint8_t *)calloc(2000, 1), valid[1] = {1};
  for (int i = 0; i < 1000; i++) mask[i] = 1;
  const char *ids[2] = {"a", "b"};
  for (int i = 0; i < 2 && dw; i++) {
    pix[1999] = (uint8_t)i;  // two different images
    SamxSample s = {pix, mask, valid, SAMX_SPLIT_TEST, ids[i], {1, 1}};
    CHECK(samx_dataset_append(dw, &s) == 0, "append: %s", samx_last_error());
  }
  CHECK(dw && samx_dataset_finish(dw) == 0, "writing thin.h5: %s", samx_last_error());
  rc = samx_run("data check %s", data);
  CHECK(rc == 0, "data check of a valid (thin) dataset: exit %d: %s", rc, err_text);
  rc = samx_run("infer --method sam --checkpoint %s --data %s --out %s --device cpu -q", CKPT, data, pred);
  CHECK(rc == 0, "infer on 2000x1 images: exit %d (crashed: %d): %s", rc, rc < 0, err_text);
  CHECK(tmp_files_in_dir() == 0, "infer left a temporary file");
  free(pix), free(mask);
}

// A PNG signature, an IHDR declaring w x h 8-bit grey, one tiny IDAT and IEND: almost no pixel data.
static void write_png_header(const char *path, uint32_t w, uint32_t h) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import struct,zlib,sys\n"
           "def c(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)\n"
           "open(sys.argv[1],'wb').write(b'\\x89PNG\\r\\n\\x1a\\n'+c(b'IHDR',struct.pack('>IIBBBBB',%u,%u,8,0,0,0,0))"
           "+c(b'IDAT',zlib.compress(bytes(64)))+c(b'IEND',b''))\" %s",
           w, h, path);
  CHECK(system(cmd) == 0, "python could not write %s", path);
}

static void huge_png(void) {
  const char *png = samx_test_path(dir, "huge.png");
  write_png_header(png, 20000, 20000);
  int rc = samx_run("segment --checkpoint %s --image %s --box 0,0,10,10 --out %s --device cpu", CKPT, png,
                    samx_test_path(dir, "huge_mask.png"));
  CHECK(rc == 1 && strstr(err_text, "SAMX_MAX_IMAGE_PIXELS") && strstr(err_text, "huge.png"),
        "a 20000x20000 PNG: exit %d: %s", rc, err_text);
  SamxSamples im;
  setenv("SAMX_MAX_IMAGE_PIXELS", "400000000", 1);
  rc = samx_image_read_samples(png, &im);
  CHECK(rc != 0 && !strstr(samx_last_error(), "SAMX_MAX_IMAGE_PIXELS"),
        "with the limit raised the header passes (and the missing pixels fail): %s", samx_last_error());
  unsetenv("SAMX_MAX_IMAGE_PIXELS");
}

static void output_formats(void) {
  const char *png = samx_test_path(dir, "small.png"), *jpg = samx_test_path(dir, "m.jpg");
  uint8_t pix[64 * 48];
  for (int i = 0; i < 64 * 48; i++) pix[i] = (uint8_t)(i % 64 < 32 ? 220 : 30);
  samx_png_write(png, pix, 64, 48, 1);
  int rc = samx_run("segment --checkpoint %s --image %s --box 0,0,32,48 --out %s --device cpu", CKPT, png, jpg);
  CHECK(rc == 0, "segment --out m.jpg: exit %d: %s", rc, err_text);
  FILE *f = fopen(jpg, "rb");
  unsigned char magic[3] = {0};
  if (f) (void)!fread(magic, 1, 3, f), fclose(f);
  CHECK(magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff, "m.jpg does not hold JPEG data");
  rc = samx_run("segment --checkpoint %s --image %s --box 0,0,32,48 --out %s --device cpu", CKPT, png,
                samx_test_path(dir, "m.bmp"));
  CHECK(rc == 2 && strstr(err_text, "unknown image extension"), "--out m.bmp: exit %d: %s", rc, err_text);
  char before[65], after[65];
  samx_sha256_file(png, before);
  rc = samx_run("segment --checkpoint %s --image %s --box 0,0,32,48 --out %s --device cpu", CKPT, png, png);
  samx_sha256_file(png, after);
  CHECK(rc == 2 && strstr(err_text, "replace that input") && !strcmp(before, after), "--out = --image: exit %d: %s", rc,
        err_text);
}

static void dec_heads(void) {
  SamConfig c;
  sam_config_preset("tiny", &c);
  c.dec_heads = 4;
  SamModel m, back;
  sam_init_random(&m, &c, samx_cpu(), 0, 1);
  const char *path = samx_test_path(dir, "heads4.safetensors");
  CHECK(sam_save(&m, path) == 0, "sam_save: %s", samx_last_error());
  CHECK(sam_load(&back, path, samx_cpu(), 0, NULL) == 0, "sam_load: %s", samx_last_error());
  CHECK(back.cfg.dec_heads == 4, "a model saved with 4 decoder heads loads with %d", back.cfg.dec_heads);
  sam_free(&back);
  sam_free(&m);

  const char *conv = samx_test_path(dir, "conv4.safetensors");
  int rc = samx_run("convert %s %s --dec-heads 4", CKPT, conv);
  CHECK(rc == 0, "convert --dec-heads 4: exit %d: %s", rc, err_text);
  CHECK(rc != 0 || (sam_load(&back, conv, samx_cpu(), 0, NULL) == 0 && back.cfg.dec_heads == 4),
        "convert --dec-heads 4 was not honoured (%d)", back.cfg.dec_heads);
  if (rc == 0) sam_free(&back);
  rc = samx_run("convert %s %s --dec-heads 3", CKPT, samx_test_path(dir, "conv3.safetensors"));
  CHECK(rc == 1 && strstr(err_text, "do not divide"), "convert --dec-heads 3: exit %d: %s", rc, err_text);
}

static void nan_weights(void) {
  // ReLU as torch.relu: relu(NaN) = NaN, and the gradient flows through it.
  SamxCtx ctx;
  samx_ctx_init(&ctx, samx_cpu(), 1 << 20, 64);
  float in[3] = {NAN, -1.0f, 2.0f}, out[3];
  samx_tensor_read_f32(samx_relu(&ctx, samx_from_host(&ctx, SHAPE(3), in)), out);
  CHECK(isnan(out[0]) && out[1] == 0 && out[2] == 2, "relu(NaN, -1, 2) = (%g, %g, %g)", out[0], out[1], out[2]);
  samx_ctx_free(&ctx);

  SamModel m;
  CHECK(sam_load(&m, CKPT, samx_cpu(), 0, NULL) == 0, "sam_load: %s", samx_last_error());
  for (int i = 0; i < m.params.n; i++)
    if (!strcmp(m.params.list[i]->name, "mask_decoder.iou_token.weight")) samx_tensor_fill(m.params.list[i], NAN);
  const char *bad = samx_test_path(dir, "nan.safetensors");
  CHECK(sam_save(&m, bad) == 0, "sam_save: %s", samx_last_error());
  sam_free(&m);
  const char *png = samx_test_path(dir, "small.png"), *out_png = samx_test_path(dir, "nan_mask.png");
  int rc = samx_run("segment --checkpoint %s --image %s --box 0,0,32,48 --out %s --device cpu", bad, png, out_png);
  CHECK(rc == 1 && strstr(err_text, "non-finite") && access(out_png, F_OK) != 0,
        "segment with NaN weights: exit %d: %s", rc, err_text);
  rc = samx_run("infer --method sam --checkpoint %s --data %s --out %s --device cpu -q", bad,
                samx_test_path(dir, "thin.h5"), samx_test_path(dir, "nan_pred.h5"));
  CHECK(rc == 1 && strstr(err_text, "non-finite") && access(samx_test_path(dir, "nan_pred.h5"), F_OK) != 0,
        "infer with NaN weights: exit %d: %s", rc, err_text);
  CHECK(tmp_files_in_dir() == 0, "infer with NaN weights left a temporary file");
}

// One byte of a stored tensor member flipped (the zip directory left as it is): the CRC-32 check of
// the member read must refuse the file.
static void corrupt_pth(void) {
  const char *bad = samx_test_path(dir, "corrupt.pth");
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import zipfile,struct,sys,shutil\n"
           "shutil.copy(sys.argv[1], sys.argv[2]); i = zipfile.ZipFile(sys.argv[2]).getinfo('sam_tiny/data/1')\n"
           "f = open(sys.argv[2], 'r+b'); f.seek(i.header_offset); h = f.read(30)\n"
           "n, e = struct.unpack('<HH', h[26:30]); at = i.header_offset + 30 + n + e + 1000\n"
           "f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 0x40]))\" %s %s",
           CKPT, bad);
  CHECK(system(cmd) == 0, "python could not corrupt a copy of %s", CKPT);
  int rc = samx_run("convert %s %s", bad, samx_test_path(dir, "corrupt.safetensors"));
  CHECK(rc == 1 && strstr(err_text, "CRC") && strstr(err_text, "corrupt.pth"), "a corrupted member: exit %d: %s", rc,
        err_text);
}

// samx pack folder on a folder with a symlink loop, and with one image reached twice; samx data check
// on a dataset holding the same image under two case ids, and one case in two splits.
static void folder_loops_and_duplicates(void) {
  char cmd[2048];
  const char *root = samx_test_path(dir, "folder");
  snprintf(cmd, sizeof cmd, "mkdir -p %s/images %s/masks", root, root);
  CHECK(system(cmd) == 0, "mkdir failed");
  uint8_t img[3][64], mask[64] = {0};
  for (int i = 0; i < 64; i++) img[0][i] = (uint8_t)(i * 3), img[1][i] = (uint8_t)(255 - i), img[2][i] = (uint8_t)(i * 3);
  for (int i = 0; i < 16; i++) mask[i] = 255;
  const char *names[3] = {"a", "b", "c"};
  char p[600];
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/images/%s.png", root, names[i]);
    samx_png_write(p, img[i], 8, 8, 1);
    snprintf(p, sizeof p, "%s/masks/%s_mask.png", root, names[i]);
    samx_png_write(p, mask, 8, 8, 1);
  }
  snprintf(p, sizeof p, "%s/images/loop", root);
  CHECK(symlink("..", p) == 0, "symlink failed");
  const char *out = samx_test_path(dir, "folder.h5");
  int rc = samx_run("pack folder --in %s --out %s", root, out);
  CHECK(rc == 1 && strstr(err_text, "symlink loop"), "pack folder with a symlink loop: exit %d: %s", rc, err_text);
  unlink(p);
  snprintf(p, sizeof p, "%s/images/d.png", root);
  CHECK(symlink("a.png", p) == 0, "symlink failed");
  rc = samx_run("pack folder --in %s --out %s", root, out);
  CHECK(rc == 1 && strstr(err_text, "same file"), "pack folder with a file reached twice: exit %d: %s", rc, err_text);
  unlink(p);
  // c.png is a copy of a.png: packs (two files), and data check reports the identical images.
  rc = samx_run("pack folder --in %s --out %s", root, out);
  CHECK(rc == 0, "pack folder: exit %d: %s", rc, err_text);
  rc = samx_run("data check %s", out);
  CHECK(rc == 1 && strstr(err_text, "identical images"), "data check of a copied image: exit %d: %s", rc, err_text);

  const char *two = samx_test_path(dir, "two_splits.h5");
  SamxDatasetSpec spec = {.h = 8, .w = 8, .k = 1, .channels = 1, .dtype = SAMX_IMAGE_U8, .source = "test",
                          .modality = "synthetic"};
  SamxDatasetWriter *dw = samx_dataset_create(two, &spec);
  uint8_t m01[64] = {0}, valid[1] = {1};
  SamxSample s0 = {img[0], m01, valid, SAMX_SPLIT_TRAIN, "p1", {1, 1}};
  SamxSample s1 = {img[1], m01, valid, SAMX_SPLIT_TEST, "p1", {1, 1}};
  CHECK(dw && samx_dataset_append(dw, &s0) == 0 && samx_dataset_append(dw, &s1) == 0 && samx_dataset_finish(dw) == 0,
        "writing two_splits.h5: %s", samx_last_error());
  rc = samx_run("data check %s", two);
  CHECK(rc == 1 && strstr(err_text, "in 2 splits"), "data check of a case in two splits: exit %d: %s", rc, err_text);
}

// Messages: a schema error names the file, a truncated HDF5 file is called truncated (not a locking
// problem), a mask of the wrong size is reported with its real size.
static void messages(void) {
  const char *noschema = samx_test_path(dir, "noschema.h5"), *cut = samx_test_path(dir, "cut.h5");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import h5py\nh5py.File('%s', 'w')['x'] = [1]\"", noschema);
  CHECK(system(cmd) == 0, "h5py could not write %s", noschema);
  int rc = samx_run("data info %s", noschema);
  CHECK(rc == 1 && strstr(err_text, "noschema.h5") && strstr(err_text, "schema"), "no schema: exit %d: %s", rc, err_text);
  const char *full = samx_test_path(dir, "folder.h5");  // written by folder_loops_and_duplicates
  snprintf(cmd, sizeof cmd, "head -c $(( $(stat -c %%s %s) / 2 )) %s > %s", full, full, cut);
  CHECK(system(cmd) == 0, "truncating failed");
  rc = samx_run("data info %s", cut);
  CHECK(rc == 1 && strstr(err_text, "truncated") && !strstr(err_text, "locking"), "truncated file: exit %d: %s", rc,
        err_text);
  const char *root = samx_test_path(dir, "badmask");
  snprintf(cmd, sizeof cmd, "mkdir -p %s/images %s/masks", root, root);
  CHECK(system(cmd) == 0, "mkdir failed");
  uint8_t img[64] = {1, 2, 3}, mask[24] = {0};
  char p[600];
  snprintf(p, sizeof p, "%s/images/a.png", root);
  samx_png_write(p, img, 8, 8, 1);
  snprintf(p, sizeof p, "%s/masks/a_mask.png", root);
  samx_png_write(p, mask, 6, 4, 1);
  rc = samx_run("pack folder --in %s --out %s", root, samx_test_path(dir, "badmask.h5"));
  CHECK(rc == 1 && strstr(err_text, "mask is 6x4"), "a 6x4 mask of an 8x8 image: exit %d: %s", rc, err_text);
}

// A fatal error (SAMX_ASSERT's abort) in a process that holds an uncommitted temporary file removes it.
static void abort_removes_tmp(void) {
  char tmp[4200];
  const char *target = samx_test_path(dir, "aborted.h5");
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    samx_tmp_path(target, tmp, sizeof tmp);
    samx_write_file_atomic(samx_test_path(dir, "unrelated.txt"), "x", 1);
    FILE *f = fopen(tmp, "w");
    if (f) fputs("half", f), fclose(f);
    freopen("/dev/null", "w", stderr);
    SAMX_ASSERT(0, "deliberate");
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", target, (int)pid);
  CHECK(WIFSIGNALED(st) && access(tmp, F_OK) != 0, "an aborted writer left %s", tmp);
}

static void usage_errors(void) {
  int rc = samx_run("embed --data");
  CHECK(rc == 2, "embed --data (no value): exit %d, want 2", rc);
  rc = samx_run("figure grid --bogus 1");
  CHECK(rc == 2, "figure grid --bogus: exit %d, want 2", rc);
  rc = samx_run("bench kernels -r 0");
  CHECK(rc == 2 && strstr(err_text, "-r"), "bench -r 0: exit %d: %s", rc, err_text);
  rc = samx_run("bench kernels -r abc");
  CHECK(rc == 2 && strstr(err_text, "-r"), "bench -r abc: exit %d: %s", rc, err_text);
  rc = samx_run("embed --checkpoint c --data d --out o -q");
  CHECK(rc == 2 && strstr(err_text, "unknown option -q"), "embed ... -q: exit %d: %s", rc, err_text);
  rc = samx_run("figure grid --data d --out o.png -q");
  CHECK(rc == 2 && strstr(err_text, "unknown option -q"), "figure ... -q: exit %d: %s", rc, err_text);
  rc = samx_run("eval --data x.h5 --pred y.h5 -q --bogus");
  CHECK(rc == 2 && !strstr(err_text, "-q needs a value"), "eval -q: %s", err_text);
}

int main(int argc, char **argv) {
  (void)argc;
  bin = samx_test_samx_bin(argv[0]);
  if (access(bin, X_OK)) {
    printf("FAIL: %s not built\n", bin);
    return 1;
  }
  setenv("SAMX_BIN", bin, 1);
  SAMX_ASSERT(samx_test_mkdtemp(dir, sizeof dir, "samx_hostile") == 0, "mkdtemp failed");
  thin_images();
  huge_png();
  output_formats();
  dec_heads();
  nan_weights();
  corrupt_pth();
  folder_loops_and_duplicates();
  messages();
  abort_removes_tmp();
  usage_errors();
  if (!samx_test_failed) samx_test_remove_dir(dir);
  else printf("files kept in %s\n", dir);
  return samx_test_summary();
}
