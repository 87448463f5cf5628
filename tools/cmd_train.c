// `samx train CONFIG`: SeqSAM, MCL and single-mask fine-tuning (train/trainer.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "train/config.h"
#include "train/fewshot_train.h"
#include "train/trainer.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx train CONFIG.ini [--set section.key=value]... [--resume auto|PATH] [--force]\n"
          "                  [--device auto|cpu|cuda[:N]] [--precision P] [--quiet] [--print-config]\n"
          "                  [--help-config]\n\n"
          "Trains SeqSAM, MCL or single-mask SAM fine-tuning as CONFIG says (configs/*.ini; every key:\n"
          "--help-config). The run directory ([run] dir) receives config.ini (the resolved configuration),\n"
          "log.jsonl, checkpoints/{latest,best,final}.safetensors, sam.safetensors and curves.svg.\n\n"
          "  --set s.k=v     override one key (repeatable; applied after the file)\n"
          "  --resume auto   continue from the newest complete checkpoint of the run directory (a fresh\n"
          "                  run when there is none); --resume PATH: from that checkpoint\n"
          "  --force         start over in a directory that holds a run (its files are replaced)\n"
          "  --device D      overrides [run] device\n"
          "  --precision P   overrides [run] precision: auto, fp32, tf32 or bf16\n"
          "  --quiet         no progress output\n"
          "  --print-config  print the resolved configuration and exit\n\n"
          "A directory that already holds a run is refused without --resume or --force.\n"
          "Progress: a bar on a terminal, else one line every [log] print_seconds; NO_COLOR is honoured.\n\n"
          "exit status: 0 done; 1 error (configuration, data, checkpoint); 2 usage;\n"
          "  3 stopped after [train] max_bad_steps non-finite steps in a row (no checkpoint written);\n"
          "  143 SIGTERM, 138 SIGUSR1, 130 SIGINT, 129 SIGHUP: a checkpoint was saved at the step boundary\n"
          "  and `--resume auto` continues with the same losses (requeue on 143 / 138). `--resume` also\n"
          "  removes the temporary files of a checkpoint save that was killed (SIGKILL).\n\n");
  fputs(samx_launch_help, f);
  fprintf(f, "  W ranks with optim.batch_size b compute what one rank computes with b and accum_steps x W;\n"
             "  rank 0 writes checkpoints and logs; optim.zero = 1 shards the optimizer state (ZeRO-1).\n");
}

int samx_cmd_train(int argc, char **argv) {
  const char *config = NULL;
  SamxTrainOptions opts = {0};
  SamxLaunchArgs launch = SAMX_LAUNCH_ARGS_NONE;
  opts.launch = &launch;
  int print_config = 0, n_sets = 0;
  const char **sets = (const char **)calloc((size_t)argc + 1, sizeof(char *));
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    int took = samx_launch_take_arg(argc, argv, &i, &launch);
    if (took < 0) {
      fprintf(stderr, "samx train: %s\n", samx_last_error());
      free(sets);
      return SAMX_TRAIN_EXIT_USAGE;
    }
    if (took) continue;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      free(sets);
      return 0;
    } else if (!strcmp(a, "--help-config")) {
      samx_train_config_help(stdout);
      free(sets);
      return 0;
    } else if (!strcmp(a, "--set") && has_value) {
      sets[n_sets++] = argv[++i];
    } else if (!strcmp(a, "--resume") && has_value) {
      opts.resume = argv[++i];
    } else if (!strcmp(a, "--device") && has_value) {
      opts.device = argv[++i];
    } else if (!strcmp(a, "--precision") && has_value) {
      opts.precision = argv[++i];
    } else if (!strcmp(a, "--force")) {
      opts.force = 1;
    } else if (!strcmp(a, "--quiet")) {
      opts.quiet = 1;
    } else if (!strcmp(a, "--print-config")) {
      print_config = 1;
    } else if (a[0] == '-' || config) {
      fprintf(stderr, "samx train: unexpected argument '%s' (see samx train --help)\n", a);
      free(sets);
      return SAMX_TRAIN_EXIT_USAGE;
    } else {
      config = a;
    }
  }
  if (!config) {
    usage(stderr);
    free(sets);
    return SAMX_TRAIN_EXIT_USAGE;
  }
  if (opts.resume && opts.force) {
    fprintf(stderr, "samx train: --resume and --force exclude each other\n");
    free(sets);
    return SAMX_TRAIN_EXIT_USAGE;
  }
  SamxTrainConfig cfg;
  samx_train_config_defaults(&cfg);
  int rc = samx_train_config_load(&cfg, config);
  for (int i = 0; rc == 0 && i < n_sets; i++) rc = samx_train_config_set(&cfg, sets[i]);
  if (rc == 0) rc = samx_train_config_validate(&cfg);
  free(sets);
  if (rc) {
    fprintf(stderr, "samx train: %s\n", samx_last_error());
    return SAMX_TRAIN_EXIT_ERROR;
  }
  if (print_config) {
    char *ini = samx_train_config_ini(&cfg);
    fputs(ini, stdout);
    free(ini);
    return 0;
  }
  if (cfg.method == SAMX_METHOD_FEWSHOT) return samx_fewshot_train(&cfg, &opts);
  return samx_train_run(&cfg, &opts);
}
