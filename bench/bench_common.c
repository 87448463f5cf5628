#define _GNU_SOURCE
#include "bench_common.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

double bench_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

double bench_median(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double t = v[j];
      v[j] = v[j - 1], v[j - 1] = t;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Vendor figures for the GPUs samx is tuned for (dense, no sparsity): FLOP/s of the CUDA cores in fp32
// and of the tensor cores in tf32 and bf16, and HBM bytes/s. "H100" is the SXM part.
static const struct {
  const char *name_part;
  double fp32, tf32, bf16, bw;
} gpu_table[] = {
    {"H100 PCIe", 51.2e12, 378e12, 756e12, 2.0e12}, {"H100", 66.9e12, 494.7e12, 989.4e12, 3.35e12},
    {"H200", 66.9e12, 494.7e12, 989.4e12, 4.8e12},  {"A100", 19.5e12, 156e12, 312e12, 2.04e12},
    {"L40S", 91.6e12, 183e12, 362e12, 0.864e12},     {"A10", 31.2e12, 62.5e12, 125e12, 0.6e12},
};

static double cpu_mhz(void) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  double mhz = 0;
  char line[512];
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "cpu MHz", 7)) {
      mhz = atof(strchr(line, ':') + 1);
      break;
    }
  if (f) fclose(f);
  return mhz > 0 ? mhz : 2000;
}

static int cpu_has(const char *flag) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[8192];
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "flags", 5)) {
      char pat[64];
      snprintf(pat, sizeof pat, " %s ", flag);
      line[strcspn(line, "\n")] = ' ';
      found = strstr(line, pat) != NULL;
      break;
    }
  if (f) fclose(f);
  return found;
}

static double measured_copy_bw(void) {
  size_t n = (size_t)256 << 20;
  char *a = (char *)malloc(n), *b = (char *)malloc(n);
  memset(a, 1, n);
  memset(b, 2, n);
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double t0 = bench_now_ms();
    memcpy(b, a, n);
    double t = bench_now_ms() - t0;
    if (t < best) best = t;
  }
  free(a);
  free(b);
  return 2.0 * (double)n / (best * 1e-3);  // read + write
}

void bench_limits(SamxDevice d, SamxPrecision p, HwLimits *hw) {
  memset(hw, 0, sizeof *hw);
  if (d.type == SAMX_CPU) {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    int lanes = cpu_has("avx512f") ? 16 : cpu_has("avx2") ? 8 : 4;
    int fma = cpu_has("fma") ? 2 : 1;
    double mhz = cpu_mhz();
    // Two vector FMA pipes per core on current x86 cores.
    hw->peak_flops = threads * mhz * 1e6 * lanes * fma * 2;
    hw->peak_bw = measured_copy_bw();
    snprintf(hw->source, sizeof hw->source, "%d threads x %.0f MHz x %d-lane FMA x 2 pipes; measured memcpy bandwidth",
             threads, mhz, lanes);
    return;
  }
  char desc[256];
  samx_device_describe(d, desc, sizeof desc);
  for (size_t i = 0; i < sizeof gpu_table / sizeof *gpu_table; i++)
    if (strstr(desc, gpu_table[i].name_part)) {
      hw->peak_flops = p == SAMX_PRECISION_BF16   ? gpu_table[i].bf16
                       : p == SAMX_PRECISION_TF32 ? gpu_table[i].tf32
                                                  : gpu_table[i].fp32;
      hw->peak_bw = gpu_table[i].bw;
      snprintf(hw->source, sizeof hw->source, "vendor datasheet for %s (%s, dense; HBM)", gpu_table[i].name_part,
               p == SAMX_PRECISION_FP32 ? "fp32 CUDA cores" : p == SAMX_PRECISION_TF32 ? "tf32 tensor cores" : "bf16 tensor cores");
      return;
    }
  snprintf(hw->source, sizeof hw->source, "unknown GPU: no peak figures");
}

int bench_parse_opts(int argc, char **argv, BenchOpts *o, const char *usage) {
  return bench_parse_opts_ex(argc, argv, o, usage, NULL, NULL);
}

int bench_parse_opts_ex(int argc, char **argv, BenchOpts *o, const char *usage, BenchExtraOpt extra, void *user) {
  memset(o, 0, sizeof *o);
  o->reps = 5;
  const char *dev = "auto", *precision = "auto";
  int i = 1;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--device") && i + 1 < argc) dev = argv[++i];
    else if (!strcmp(argv[i], "--precision") && i + 1 < argc) precision = argv[++i];
    else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
      char *end;
      long r = strtol(argv[++i], &end, 10);
      if (end == argv[i] || *end || r < 1 || r > 100000) {
        fprintf(stderr, "samx bench: -r takes a number of repetitions >= 1, not '%s'\n", argv[i]);
        return -1;
      }
      o->reps = (int)r;
    }
    else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
      const char *fmt = argv[++i];
      if (strcmp(fmt, "md") && strcmp(fmt, "json")) {
        fprintf(stderr, "samx bench: -o takes md or json, not %s\n", fmt);
        return -1;
      }
      o->json = !strcmp(fmt, "json");
    } else if (!strcmp(argv[i], "--quick")) o->quick = 1;
    else if (!strcmp(argv[i], "--compare-torch")) o->compare_torch = 1;
    else if (!strcmp(argv[i], "--torch-compile")) o->compare_torch = o->torch_compile = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("%s", usage);
      exit(0);
    } else {
      int used = extra ? extra(argv[i], i + 1 < argc ? argv[i + 1] : NULL, user) : 0;
      if (used <= 0) {
        fprintf(stderr, "samx bench: unknown option %s (see --help)\n", argv[i]);
        return -1;
      }
      i += used - 1;
    }
  }
  if (samx_device_parse(dev, &o->device) != 0 || samx_precision_setup(precision, o->device) != 0) {
    fprintf(stderr, "samx bench: %s\n", samx_last_error());
    return -1;
  }
  o->precision = samx_precision_default();
  return i;
}

static const char *torch_script(void) {
  const char *env = getenv("SAMX_BENCH_TORCH");
  return env ? env : SAMX_SOURCE_DIR "/bench/torch_bench.py";
}

void bench_torch(const char *mode, const BenchOpts *o, BenchRow *rows, int n) {
  for (int i = 0; i < n; i++) rows[i].torch_ms = -1;
  if (!o->compare_torch) return;
  // The project's venv (scripts/setup-venv.sh: Debian's torch + segment_anything) when it exists.
  const char *venv = SAMX_SOURCE_DIR "/.venv/bin/python";
  const char *py = getenv("SAMX_PYTHON") ? getenv("SAMX_PYTHON") : access(venv, X_OK) == 0 ? venv : NULL;
  if (!py) {
    fprintf(stderr, "samx bench: --compare-torch needs the Python venv with segment_anything: run "
                    "%s/scripts/setup-venv.sh (or set SAMX_PYTHON); the PyTorch column is left empty\n",
            SAMX_SOURCE_DIR);
    return;
  }
  char specs[] = "/tmp/samx_bench_specs.XXXXXX";
  int fd = mkstemp(specs);
  if (fd < 0) return;
  FILE *f = fdopen(fd, "w");
  for (int i = 0; i < n; i++) fprintf(f, "%s\n", rows[i].spec);
  fclose(f);
  char dev[16], cmd[1024];
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  snprintf(cmd, sizeof cmd, "%s %s %s --device %s --reps %d --threads %d --specs %s --precision %s%s", py,
           torch_script(), mode, o->device.type == SAMX_CPU ? "cpu" : samx_device_str(o->device, dev, sizeof dev),
           o->reps, threads, specs, samx_precision_name(o->precision), o->torch_compile ? " --compile" : "");
  FILE *p = popen(cmd, "r");
  char line[512];
  int i = 0;
  while (p && fgets(line, sizeof line, p) && i < n) rows[i++].torch_ms = atof(line);
  int rc = p ? pclose(p) : -1;
  unlink(specs);
  if (rc != 0 || i != n) {
    fprintf(stderr, "samx bench: PyTorch comparison failed (%s); its column is left empty\n", cmd);
    for (int k = 0; k < n; k++) rows[k].torch_ms = -1;
  }
}

// What PyTorch's column ran: "fp32", "tf32", "bf16+SDPA", each with ", compiled" under --torch-compile.
static const char *torch_config(const BenchOpts *o, char *buf, size_t n) {
  snprintf(buf, n, "%s%s%s", samx_precision_name(o->precision), o->precision == SAMX_PRECISION_BF16 ? "+SDPA" : "",
           o->torch_compile ? ", compiled" : "");
  return buf;
}

static void print_json(const char *title, const BenchOpts *o, const HwLimits *hw, const BenchRow *rows, int n) {
  char dev[16], desc[256];
  samx_device_describe(o->device, desc, sizeof desc);
  json_t *root = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:f, s:f, s:s}", "bench", title, "device",
                           samx_device_str(o->device, dev, sizeof dev), "device_info", desc, "version", SAMX_VERSION,
                           "build_commit", SAMX_GIT_COMMIT, "reps", o->reps, "peak_flops", hw->peak_flops,
                           "peak_bytes_per_s", hw->peak_bw, "peak_source", hw->source);
  char tc[64];
  if (o->compare_torch) json_object_set_new(root, "torch_config", json_string(torch_config(o, tc, sizeof tc)));
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) {
    const BenchRow *r = &rows[i];
    json_t *row = json_pack("{s:s, s:s, s:f, s:f, s:f}", "name", r->name, "shape", r->shape, "ms", r->ms, "flops",
                            r->flops, "bytes", r->bytes);
    if (r->items > 0) {
      json_object_set_new(row, "items_per_s", json_real(r->items / (r->ms * 1e-3)));
      json_object_set_new(row, "unit", json_string(r->unit));
    }
    if (r->mem_mb > 0) json_object_set_new(row, "peak_mem_mb", json_real(r->mem_mb));
    if (r->torch_ms >= 0) json_object_set_new(row, "torch_ms", json_real(r->torch_ms));
    json_array_append_new(arr, row);
  }
  json_object_set_new(root, "precision", json_string(samx_precision_name(o->precision)));
  json_object_set_new(root, "results", arr);
  char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  printf("%s\n", s);
  free(s);
  json_decref(root);
}

void bench_print(const char *title, const BenchOpts *o, const HwLimits *hw, const BenchRow *rows, int n) {
  if (o->json) {
    print_json(title, o, hw, rows, n);
    return;
  }
  char desc[256];
  samx_device_describe(o->device, desc, sizeof desc);
  printf("## samx bench %s: %s, %s (samx %s, %s), median of %d\n\n", title, desc, samx_precision_name(o->precision),
         SAMX_VERSION, SAMX_GIT_COMMIT, o->reps);
  int has_items = 0, has_mem = 0;
  for (int i = 0; i < n; i++) has_items |= rows[i].items > 0, has_mem |= rows[i].mem_mb > 0;
  char tc[64], torch_head[96] = "";
  if (o->compare_torch) snprintf(torch_head, sizeof torch_head, " PyTorch %s ms | speed-up |", torch_config(o, tc, sizeof tc));
  printf("| op | shape | ms |%s GFLOP/s | GB/s | %% of peak |%s%s\n", has_items ? " items/s |" : "",
         has_mem ? " peak MB |" : "", torch_head);
  printf("|---|---|---:|%s---:|---:|---:|%s%s\n", has_items ? "---:|" : "", has_mem ? "---:|" : "",
         o->compare_torch ? "---:|---:|" : "");
  for (int i = 0; i < n; i++) {
    const BenchRow *r = &rows[i];
    double s = r->ms * 1e-3;
    double gflops = r->flops / s / 1e9, gbs = r->bytes / s / 1e9;
    // Compute-bound ops are measured against the FLOP peak, the others against bandwidth.
    double frac = r->flops > 0 ? (hw->peak_flops > 0 ? r->flops / s / hw->peak_flops : 0)
                               : (hw->peak_bw > 0 ? r->bytes / s / hw->peak_bw : 0);
    char gf[32] = "-";
    if (r->flops > 0) snprintf(gf, sizeof gf, "%.1f", gflops);
    printf("| %s | %s | %.3f |", r->name, r->shape, r->ms);
    if (has_items) printf(" %.2f %s/s |", r->items / s, r->unit);
    printf(" %s | %.1f | %.1f%% |", gf, gbs, 100 * frac);
    if (has_mem) printf(" %.0f |", r->mem_mb);
    if (o->compare_torch) {
      if (r->torch_ms >= 0)
        printf(" %.3f | %.2fx |", r->torch_ms, r->torch_ms / r->ms);
      else
        printf(" - | - |");
    }
    printf("\n");
  }
  printf("\npeaks: %.1f GFLOP/s, %.1f GB/s (%s)\n", hw->peak_flops / 1e9, hw->peak_bw / 1e9, hw->source);
}

void bench_fill(SamxTensor *t, uint64_t seed) {
  float *h = (float *)malloc((size_t)t->numel * sizeof(float) + 4);
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < t->numel; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    h[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
  }
  samx_tensor_write_f32(t, h);
  free(h);
}
