// samx: the command-line entry point. Each subcommand lives in its own file (tools/cmd_*.c,
// bench/*.c); a subcommand whose file is not part of this build says so instead of failing to link.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/dist.h"
#include "engine/samx.h"

typedef int (*CmdFn)(int argc, char **argv);
#define SAMX_WEAK __attribute__((weak))
SAMX_WEAK int samx_cmd_bench(int argc, char **argv);
SAMX_WEAK int samx_cmd_segment(int argc, char **argv);
SAMX_WEAK int samx_cmd_convert(int argc, char **argv);
SAMX_WEAK int samx_cmd_pack(int argc, char **argv);
SAMX_WEAK int samx_cmd_data(int argc, char **argv);
SAMX_WEAK int samx_cmd_embed(int argc, char **argv);
SAMX_WEAK int samx_cmd_train(int argc, char **argv);
SAMX_WEAK int samx_cmd_infer(int argc, char **argv);
SAMX_WEAK int samx_cmd_eval(int argc, char **argv);
SAMX_WEAK int samx_cmd_compare(int argc, char **argv);
SAMX_WEAK int samx_cmd_figure(int argc, char **argv);
int samx_cmd_info(int argc, char **argv);

static const struct {
  const char *name;
  const char *help;
} commands[] = {
    {"info", "build, devices and versions"},
    {"bench", "kernel, encoder, decoder and training throughput (markdown or json)"},
    {"segment", "segment one image with SAM from a box / points / mask prompt"},
    {"convert", "convert a .pth or safetensors checkpoint to samx's safetensors"},
    {"pack", "pack a dataset (LIDC, QUBIQ, BraTS, folders, synthetic) into HDF5"},
    {"data", "inspect and validate a dataset file"},
    {"embed", "cache encoder embeddings of a dataset"},
    {"train", "train SeqSAM, MCL or single-mask fine-tuning"},
    {"infer", "batch inference (SAM, SimSAM, SQA-SAM, trained models)"},
    {"eval", "score predictions against a dataset"},
    {"compare", "compare eval results of several methods with paired tests"},
    {"figure", "mask overlays, hypothesis grids, training curves"},
};

static CmdFn lookup(const char *name) {
  if (!strcmp(name, "info")) return samx_cmd_info;
  if (!strcmp(name, "bench")) return samx_cmd_bench;
  if (!strcmp(name, "segment")) return samx_cmd_segment;
  if (!strcmp(name, "convert")) return samx_cmd_convert;
  if (!strcmp(name, "pack")) return samx_cmd_pack;
  if (!strcmp(name, "data")) return samx_cmd_data;
  if (!strcmp(name, "embed")) return samx_cmd_embed;
  if (!strcmp(name, "train")) return samx_cmd_train;
  if (!strcmp(name, "infer")) return samx_cmd_infer;
  if (!strcmp(name, "eval")) return samx_cmd_eval;
  if (!strcmp(name, "compare")) return samx_cmd_compare;
  if (!strcmp(name, "figure")) return samx_cmd_figure;
  return NULL;
}

static void usage(FILE *f) {
  fprintf(f, "samx %s (%s): SAM-based ambiguous medical image segmentation, CPU and CUDA\n\n", SAMX_VERSION,
          SAMX_GIT_COMMIT);
  fprintf(f, "usage: samx COMMAND [options]   (samx COMMAND --help for its options)\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    int built = lookup(commands[i].name) != NULL;
    fprintf(f, "  %-9s %s%s\n", commands[i].name, commands[i].help, built ? "" : " (not in this build yet)");
  }
  fprintf(f, "\nevery command takes --device auto|cpu|cuda[:N] where it computes (auto: a GPU when present)\n");
  fprintf(f, "environment: SAMX_PROFILE=1 prints a kernel-time profile to stderr at exit; OMP_NUM_THREADS sets\n"
             "the CPU threads (OMP_WAIT_POLICY defaults to PASSIVE); SAMX_MAX_IMAGE_PIXELS raises the image\n"
             "size limit (default 178956970 pixels, 0: none)\n"
             "outputs: written to a temporary file and renamed; a symlink keeps pointing at the new file, a\n"
             "FIFO or device (/dev/stdout) is written into; an output that is one of the inputs is refused\n");
}

int samx_info_ranks(int argc, char **argv);

int samx_cmd_info(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--ranks")) return samx_info_ranks(argc, argv);
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: samx info [--ranks [--rank R --world-size W --local-rank L --rendezvous HOST:PORT|FILE]]\n\n"
           "Build, devices and versions; --ranks: what this process detected about its launch (mpirun, srun,\n"
           "torchrun, explicit flags), one line per rank (run it the way the job will be launched).\n\n%s",
           samx_launch_help);
    return 0;
  }
  char buf[256];
  printf("samx %s, commit %s\n", SAMX_VERSION, SAMX_GIT_COMMIT);
#ifdef SAMX_CUDA_EMULATOR
  printf("cuda backend: built on the CUDA host emulator (kernels run on the CPU; --device cuda selects it, "
         "auto keeps to the CPU)\n");
#else
  printf("cuda backend: %s\n", samx_built_with_cuda() ? "built" : "not built");
#endif
  printf("cpu: %s\n", (samx_device_describe(samx_cpu(), buf, sizeof buf), buf));
  int n = samx_cuda_device_count();
  printf("cuda devices: %d\n", n);
  for (int i = 0; i < n; i++) {
    samx_device_describe((SamxDevice){SAMX_CUDA, i}, buf, sizeof buf);
    printf("  cuda:%d: %s\n", i, buf);
  }
  return 0;
}

// OpenMP threads that busy-wait between parallel regions starve everything else on a small or
// shared machine (measured: small-op workloads 5-20x slower on 2 busy cores). libgomp reads its
// settings when it loads, so the default is applied by re-executing once with it set; a user's
// own OMP_WAIT_POLICY always wins.
static void default_passive_openmp(char **argv) {
  if (getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on with the active default
}

int main(int argc, char **argv) {
  default_passive_openmp(argv);
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("samx %s (%s)\n", SAMX_VERSION, SAMX_GIT_COMMIT);
    return 0;
  }
  CmdFn fn = lookup(argv[1]);
  if (!fn) {
    int known = 0;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) known |= !strcmp(commands[i].name, argv[1]);
    fprintf(stderr, known ? "samx: '%s' is not part of this build yet\n" : "samx: unknown command '%s' (see samx --help)\n",
            argv[1]);
    return 2;
  }
  return fn(argc - 1, argv + 1);
}
