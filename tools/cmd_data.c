// samx data: inspect (info), check (validate) and look at (show) dataset and prediction files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/h5io.h"
#include "data/predictions.h"
#include "engine/error.h"
#include "engine/fileio.h"
#include "figures/figures.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx data info FILE.h5       schema summary: N, H, W, K, splits, per-annotator empty rates, sizes\n"
          "       samx data validate FILE.h5   full check; exit status 0 when the file follows its schema\n"
          "       samx data check FILE.h5      the same as validate (nnU-Net's integrity check)\n"
          "       samx data show FILE.h5 --index I --out grid.png\n"
          "                                    the image with each annotator's contour in its own colour\n"
          "                                    (PNG, or SVG when OUT ends in .svg)\n\n"
          "FILE is a dataset (schema samx-dataset) or a prediction file (schema samx-predictions).\n"
          "validate reads every sample: masks strictly 0/1, no case in two splits, finite images,\n"
          "positive spacing, empty masks where annotator_valid is 0 (datasets); indices and shapes\n"
          "(prediction files).\n");
}

static void print_attr(const char *name, const char *value, void *user) { printf("  %-26s %s\n", name, value); }

static void print_problem(const char *msg, void *user) { fprintf(stderr, "problem: %s\n", msg); }

static const char *dtype_name(SamxImageDtype d) { return d == SAMX_IMAGE_U8 ? "uint8" : "float32"; }

static void print_dataset(SamxDataset *ds, const SamxDatasetStats *st) {
  SamxDatasetInfo in = samx_dataset_info(ds);
  struct stat sb;
  double mb = stat(samx_dataset_path(ds), &sb) == 0 ? (double)sb.st_size / (1 << 20) : 0;
  printf("%s: samx-dataset v%d, %.1f MiB\n", samx_dataset_path(ds), SAMX_DATASET_VERSION, mb);
  printf("  samples N %lld, image %lld x %lld (H x W), %d channel%s, %s", (long long)in.n, (long long)in.h,
         (long long)in.w, in.channels, in.channels > 1 ? "s" : "", dtype_name(in.dtype));
  if (in.dtype == SAMX_IMAGE_F32) printf(" (display range %g .. %g)", in.display_lo, in.display_hi);
  printf("\n  annotators K %lld\n", (long long)in.k);
  for (int s = 0; s < SAMX_SPLIT_COUNT; s++)
    printf("  %-6s %6lld samples, %5lld cases\n", samx_split_name(s), (long long)st->split_rows[s],
           (long long)st->split_cases[s]);
  printf("  annotator  read  empty  empty%%  mean foreground (non-empty)\n");
  for (int64_t k = 0; k < in.k; k++) {
    double rate = st->valid_count[k] ? 100.0 * (double)st->empty_count[k] / (double)st->valid_count[k] : 0;
    printf("  %9lld %5lld %6lld %6.1f%%  %.2f%% of the image\n", (long long)k, (long long)st->valid_count[k],
           (long long)st->empty_count[k], rate, 100 * st->fg_fraction[k]);
  }
  printf("root attributes:\n");
  samx_dataset_each_attr(ds, print_attr, NULL);
}

static int dataset_command(const char *path, int validate) {
  SamxDataset *ds = samx_dataset_open(path);
  if (!ds) {
    fprintf(stderr, "samx data: %s\n", samx_last_error());
    return 1;
  }
  SamxDatasetStats st;
  int rc = samx_dataset_scan(ds, &st, print_problem, NULL);
  if (rc != 0) fprintf(stderr, "samx data: %s\n", samx_last_error());
  if (rc == 0 && !validate) print_dataset(ds, &st);
  if (rc == 0 && validate) {
    if (st.problems)
      fprintf(stderr, "%s: %lld problem%s\n", path, (long long)st.problems, st.problems > 1 ? "s" : "");
    else
      printf("%s: valid samx-dataset v%d (N %lld, %lld x %lld, K %lld)\n", path, SAMX_DATASET_VERSION,
             (long long)samx_dataset_n(ds), (long long)samx_dataset_h(ds), (long long)samx_dataset_w(ds),
             (long long)samx_dataset_k(ds));
  }
  int failed = rc != 0 || (validate && st.problems);
  samx_dataset_stats_free(&st);
  samx_dataset_close(ds);
  return failed;
}

static int predictions_command(const char *path, int validate) {
  SamxPredictions *p = samx_predictions_open(path);
  if (!p) {
    fprintf(stderr, "samx data: %s\n", samx_last_error());
    return 1;
  }
  int64_t n = samx_predictions_n(p), m = samx_predictions_m(p), hw = samx_predictions_h(p) * samx_predictions_w(p);
  int problems = 0;
  uint8_t *masks = (uint8_t *)malloc((size_t)(m * hw));
  for (int64_t i = 0; i < n && validate; i++) {
    if (samx_predictions_read_masks(p, i, masks) != 0) {
      fprintf(stderr, "samx data: %s\n", samx_last_error());
      problems++;
      break;
    }
    for (int64_t j = 0; j < m * hw; j++)
      if (masks[j] > 1) {
        fprintf(stderr, "problem: %s: /pred_masks[%lld] holds value %d (masks are 0/1)\n", path, (long long)i, masks[j]);
        problems++;
        break;
      }
  }
  free(masks);
  const char *dpath = samx_predictions_dataset_path(p);
  SamxDataset *ds = validate && dpath[0] ? samx_dataset_open(dpath) : NULL;
  if (ds && samx_predictions_check_dataset(p, ds) != 0) {
    fprintf(stderr, "problem: %s\n", samx_last_error());
    problems++;
  }
  if (!validate) {
    printf("%s: samx-predictions v%d\n  N' %lld, M %lld hypotheses, %lld x %lld\n", path, SAMX_PREDICTIONS_VERSION,
           (long long)n, (long long)m, (long long)samx_predictions_h(p), (long long)samx_predictions_w(p));
    printf("  method %s, split %s\n  checkpoint %s (sha256 %s)\n  dataset %s (sha256 %s)\n",
           samx_predictions_method(p), samx_predictions_split(p), samx_predictions_checkpoint_path(p),
           samx_predictions_checkpoint_sha256(p), dpath, samx_predictions_dataset_sha256(p));
    printf("  pred_scores %s, quality %s\n", samx_predictions_scores(p) ? "yes" : "no",
           samx_predictions_quality(p) ? "yes" : "no");
  } else if (!problems) {
    printf("%s: valid samx-predictions v%d (N' %lld, M %lld)%s\n", path, SAMX_PREDICTIONS_VERSION, (long long)n,
           (long long)m, ds ? ", fits its dataset" : "");
  }
  samx_dataset_close(ds);
  samx_predictions_close(p);
  return problems != 0;
}

// The schema attribute decides which reader checks the file; anything else goes to the dataset
// reader, whose message says what is wrong.
static int is_predictions_file(const char *path) {
  hid_t f = samx_h5_open_read(path);
  if (f < 0) return 0;
  char schema[64] = "";
  samx_h5_attr_text(f, "schema", schema, sizeof schema);
  H5Fclose(f);
  return !strcmp(schema, SAMX_PREDICTIONS_SCHEMA);
}

// samx data show FILE --index I --out OUT
static int show_command(int argc, char **argv) {
  const char *path = NULL, *out = NULL;
  long long index = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--index") && i + 1 < argc) {
      char *end;
      index = strtoll(argv[++i], &end, 10);
      if (*end || index < 0) {
        fprintf(stderr, "samx data show: --index takes a non-negative integer, not %s\n", argv[i]);
        return 2;
      }
    } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] != '-' && !path) {
      path = argv[i];
    } else {
      fprintf(stderr, "samx data show: unexpected argument %s (see samx data --help)\n", argv[i]);
      return 2;
    }
  }
  if (!path || !out || index < 0) {
    fprintf(stderr, "usage: samx data show FILE.h5 --index I --out grid.png\n");
    return 2;
  }
  if (samx_check_output_not_input("samx data show: --out", out, (const char *const[]){path}, 1)) {
    fprintf(stderr, "%s\n", samx_last_error());
    return 2;
  }
  if (samx_figure_data_show(path, (int64_t)index, out) != 0) {
    fprintf(stderr, "samx data show: %s\n", samx_last_error());
    return 1;
  }
  return 0;
}

int samx_cmd_data(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "show")) return show_command(argc - 1, argv + 1);
  int validate = !strcmp(sub, "validate") || !strcmp(sub, "check");
  if (!validate && strcmp(sub, "info") != 0) {
    fprintf(stderr, "samx data: unknown subcommand '%s' (info, validate, check, show)\n", sub);
    return 2;
  }
  if (argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
    usage(stdout);
    return 0;
  }
  if (argc != 3) {
    fprintf(stderr, "usage: samx data %s FILE.h5\n", sub);
    return 2;
  }
  return is_predictions_file(argv[2]) ? predictions_command(argv[2], validate) : dataset_command(argv[2], validate);
}
