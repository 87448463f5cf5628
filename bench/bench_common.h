// Shared pieces of `samx bench`: timing, hardware limits, table/JSON output, the PyTorch side.
#ifndef SAMX_BENCH_COMMON_H
#define SAMX_BENCH_COMMON_H

#include "engine/samx.h"

typedef struct {
  char name[64];
  char shape[96];
  char spec[128];  // machine-readable description for bench/torch_bench.py ("gemm M N K", ...)
  double flops;   // work per call (0 when the op is bandwidth-bound)
  double bytes;   // minimum memory traffic per call
  double ms;      // median over repetitions
  double torch_ms;  // same work in PyTorch; < 0 when not measured
  double items;     // images, prompts, samples per call (0: not a throughput row)
  char unit[16];    // what items are ("img", "prompt", ...)
  double mem_mb;    // peak memory of the measured work (0: not measured)
} BenchRow;

typedef struct {
  double peak_flops;  // FLOP/s of the device in the run's precision (vendor figure or derived)
  double peak_bw;     // bytes/s (vendor figure on GPU, measured copy bandwidth on CPU)
  char source[128];   // where the peaks come from
} HwLimits;

typedef struct {
  SamxDevice device;
  SamxPrecision precision;  // --precision, resolved for the device (also the default of new contexts)
  int reps;
  int json;
  int quick;
  int compare_torch;
  int torch_compile;  // --torch-compile: PyTorch's side through torch.compile (implies --compare-torch)
} BenchOpts;

double bench_now_ms(void);
// Median of v[0..n) (sorts v).
double bench_median(double *v, int n);
// Peaks of device d for precision p (the CPU computes in fp32 only).
void bench_limits(SamxDevice d, SamxPrecision p, HwLimits *hw);
// Parses the options shared by all `samx bench` modes (--device, --precision, -r, -o, --quick, --compare-torch,
// --help); returns argc on success or -1 after printing an error.
int bench_parse_opts(int argc, char **argv, BenchOpts *o, const char *usage);
// The same, handing options it does not know to extra(opt, value, user), which returns how many
// arguments it consumed (1: a flag, 2: a flag and its value) or 0 for an unknown option.
typedef int (*BenchExtraOpt)(const char *opt, const char *value, void *user);
int bench_parse_opts_ex(int argc, char **argv, BenchOpts *o, const char *usage, BenchExtraOpt extra, void *user);
// Fills rows[i].torch_ms by running bench/torch_bench.py MODE on the same shapes.
void bench_torch(const char *mode, const BenchOpts *o, BenchRow *rows, int n);
void bench_print(const char *title, const BenchOpts *o, const HwLimits *hw, const BenchRow *rows, int n);
// Random f32 contents for a benchmark input.
void bench_fill(SamxTensor *t, uint64_t seed);

#endif
