// `samx bench MODE`: each mode lives in its own file and defines samx_bench_<mode>; a mode whose
// file is not part of this build says so.
#include <stdio.h>
#include <string.h>

#define BENCH_WEAK __attribute__((weak))
BENCH_WEAK int samx_bench_kernels(int argc, char **argv);
BENCH_WEAK int samx_bench_encoder(int argc, char **argv);
BENCH_WEAK int samx_bench_decoder(int argc, char **argv);
BENCH_WEAK int samx_bench_train(int argc, char **argv);
BENCH_WEAK int samx_bench_infer(int argc, char **argv);
BENCH_WEAK int samx_bench_data(int argc, char **argv);
BENCH_WEAK int samx_bench_metrics(int argc, char **argv);

typedef int (*BenchMode)(int, char **);

static const struct {
  const char *name;
  const char *help;
} modes[] = {
    {"kernels", "GEMM, attention (window/global), LayerNorm, conv2d, conv-transpose"},
    {"encoder", "SAM image encoder: images/s, ms, fraction of the FLOP floor, peak memory"},
    {"decoder", "SAM prompt encoder + mask decoder: prompts/s for batched prompts"},
    {"train", "training samples/s with cached embeddings (SeqSAM, MCL)"},
    {"infer", "batch inference images/s (SAM, SimSAM, SQA-SAM)"},
    {"data", "dataset loader samples/s"},
    {"metrics", "evaluation metrics samples/s (GED, HM-IoU, NSD)"},
};

static BenchMode lookup(const char *name) {
  if (!strcmp(name, "kernels")) return samx_bench_kernels;
  if (!strcmp(name, "encoder")) return samx_bench_encoder;
  if (!strcmp(name, "decoder")) return samx_bench_decoder;
  if (!strcmp(name, "train")) return samx_bench_train;
  if (!strcmp(name, "infer")) return samx_bench_infer;
  if (!strcmp(name, "data")) return samx_bench_data;
  if (!strcmp(name, "metrics")) return samx_bench_metrics;
  return NULL;
}

int samx_cmd_bench(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    printf("usage: samx bench MODE [options]   (samx bench MODE --help for its options)\n\nmodes:\n");
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
      printf("  %-8s %s%s\n", modes[i].name, modes[i].help, lookup(modes[i].name) ? "" : " (not in this build yet)");
    printf("\nCommon options: --device auto|cpu|cuda[:N]  --precision auto|fp32|tf32|bf16  -r REPS  -o md|json\n"
           "  --quick  --compare-torch  --torch-compile   (--precision auto: bf16 on CUDA devices of compute\n"
           "  capability >= 8.0, fp32 on the CPU, which computes in fp32 only)\n"
           "Every mode prints a markdown table (or JSON with -o json): time, throughput, the fraction of the\n"
           "device's peak in the run's precision (bf16 and tf32: the tensor cores'; fp32: the CUDA cores'), and\n"
           "with --compare-torch the same work in PyTorch on the same device in the same precision: fp32 and\n"
           "tf32 as set, bf16 as segment-anything-fast runs SAM (bf16 modules and inputs, every attention\n"
           "through scaled_dot_product_attention with the rel-pos bias as its mask; training under\n"
           "torch.autocast). --torch-compile also puts PyTorch's side through torch.compile (PyTorch >= 2.0;\n"
           "eager, with the reason on stderr, where it fails). The table's PyTorch column names what ran.\n"
           "SAMX_PROFILE=1 samx bench ... adds where the kernel time went (per engine launch site) on stderr.\n");
    return argc < 2 ? 2 : 0;
  }
  BenchMode fn = lookup(argv[1]);
  if (!fn) {
    fprintf(stderr, "samx bench: mode '%s' is not available (see samx bench --help)\n", argv[1]);
    return 2;
  }
  return fn(argc - 1, argv + 1);
}
