// samx infer: batch inference over a dataset file with SAM (box prompt), SimSAM or SQA-SAM, writing a
// prediction file (docs: contracts §4). The work itself is infer/infer.h; this file reads the data,
// batches it, streams the results out and reports progress.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "data/dataset.h"
#include "data/embed_cache.h"
#include "data/predictions.h"
#include "data/prompts.h"
#include "engine/dist.h"
#include "engine/safetensors.h"
#include "engine/samx.h"
#include "infer/infer.h"
#include "models/p2sam/p2sam.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx infer --method sam|simsam|sqa|seqsam|mcl|sam-ft|p2sam --checkpoint W --data D.h5 --out P.h5 [options]\n"
          "\n"
          "Zero-shot inference over a dataset file (contracts §3), one prediction file out (contracts §4).\n"
          "\n"
          "  --method sam        SAM with a box prompt, single mask (pred_scores: predicted IoU)\n"
          "  --method simsam     SimSAM: K simulated clicks around SAM's uncertain pixels, K candidates,\n"
          "                      the one most compatible (mean IoU) with all others\n"
          "  --method sqa        SQA-SAM: scores the quality of --segmentation; pred_masks is that\n"
          "                      segmentation, /quality the score (NaN for an empty segmentation)\n"
          "  --checkpoint W      SAM weights (.pth, safetensors; see samx segment --help)\n"
          "  --data D.h5         the dataset: images, and the ground truth the box prompts come from\n"
          "  --out P.h5          the prediction file\n"
          "  --split S           train, val, test (default) or all\n"
          "  --annotator A       the ground-truth mask whose box is the prompt (default 0): [x_min, y_min,\n"
          "                      x_max, y_max] of its pixel indices. Rows where it is empty (or not read)\n"
          "                      have no prompt and are left out of the output (counted at the end)\n"
          "  --prompts F         boxes from a CSV file instead: lines 'row,x0,y0,x1,y1' (dataset row,\n"
          "                      original pixels; '#' starts a comment); only the rows listed are run\n"
          "  --limit N           at most N rows\n"
          "  --device D          auto (default), cpu, cuda or cuda:N\n"
          SAMX_PRECISION_HELP
          "  --batch B           images per encoder call (default 4 on CUDA, 1 on CPU)\n"
          "  --decode-batch P    prompts per decoder call (default: from a memory budget)\n"
          "  -q, --quiet         no progress lines\n"
          "\n"
          "SimSAM (defaults are the authors' code):\n"
          "  --k K               clicks and candidates (default 50; 1 is the K = 1 ablation)\n"
          "  --clicks C          topk (default: the K highest-error pixels, ties to the lower row-major\n"
          "                      index), sample (K pixels drawn from the error map), random (uniform)\n"
          "  --seed S            for --clicks sample / random (default 0)\n"
          "  --aggregate A       iou (default: highest mean IoU, diagonal included) or pixel (mean logits)\n"
          "  --mask-prompt P     binary (default: initial low-res logits > 0 as 0/1) or logits\n"
          "  --candidates F.h5   also write all K candidates and their union (M = K + 1) to F.h5\n"
          "\n"
          "SQA-SAM:\n"
          "  --segmentation S.h5 the segmentation to score: a prediction file (hypothesis --hypothesis,\n"
          "                      default 0) or a dataset file with the same rows (annotator\n"
          "                      --seg-annotator, default 0)\n"
          "  --point P           edt (default: the object pixel farthest from the background, ties to the\n"
          "                      lower row-major index) or centroid\n"
          "  --weighting W       mean (default) or area: how object scores make the image score\n"
          "  --connectivity C    8 (default) or 4\n"
          "  --allow-dataset-mismatch  score a prediction file that records another dataset's sha256 (a\n"
          "                      warning instead of the error)\n"
          "\n"
          "Trained models (samx train checkpoints; box prompts as for sam, pred_masks holds M hypotheses):\n"
          "  --method seqsam|mcl|sam-ft   the checkpoint must hold that method\n"
          "  --per-component     with --method sam --prompt point|box: one prompt per connected component\n"
          "                      of each label (samx infer --per-component --help)\n"
          "  --method atlas      the few-shot shots' atlas (samx infer --per-component --help)\n"
          "  --method fewshot    the few-shot decoder (contracts §7): no prompt, every row of the split;\n"
          "                      hypothesis l is label l of the checkpoint (fg beats bg)\n"
          "  --embeddings E.h5   with --method fewshot: the images' embeddings from `samx embed` instead of\n"
          "                      running the encoder (the same predictions); refused unless E.h5 was made\n"
          "                      by the checkpoint's encoder (its base SAM) from --data and holds every row\n"
          "  --masks M           hypotheses per image (default: the checkpoint's; SeqSAM: rollout steps)\n"
          "\n"
          "P2SAM (--method p2sam; no prompt, every row runs; pred_masks holds snapshots x samples hypotheses,\n"
          "hypothesis j S + k being sample j of snapshot k):\n"
          "  --checkpoint W      a samx P2SAM checkpoint (stage 2: its snapshots are checkpoints/snapshot_epoch_N\n"
          "                      files beside it), or the authors' final_weights.pth / X_model_epoch_N.pth\n"
          "  --snapshots LIST    epochs of the snapshots to ensemble (default 10,50,70,100, evaluate.py's),\n"
          "                      or snapshot names (step_120: samx train's p2sam.snapshot_steps); none: the\n"
          "                      model as loaded\n"
          "  --samples N         z draws per snapshot (default 4: 16 hypotheses)\n"
          "  --seed S            eps of row r: normal draws of stream hash(S, r) (default 0)\n"
          "  --mask-weights W.pt, --base SAM.pth, --img-size N   the authors' files, as for samx segment\n"
          "  --crop N            the model sees the N x N window centred on the centroid of the union of the\n"
          "                      row's annotator masks (p2sam.crop) and its masks are pasted back (0 outside);\n"
          "                      default: the checkpoint's p2sam.crop (0: the whole image)\n"
          "Exit status 0 on success; otherwise one line on stderr says what is wrong.\n\n"
          "On several ranks each runs every W-th batch (every rank reads the data to form the same batches)\n"
          "and rank 0 writes the file, the same predictions one process writes.\n");
  fputs(samx_launch_help, f);
}

typedef struct {
  const char *method_name, *checkpoint, *data, *out, *split, *prompts, *device, *precision, *candidates, *segmentation;
  const char *snapshots, *mask_weights, *base;  // P2SAM
  const char *embeddings;                        // fewshot: cached embeddings instead of the encoder
  int annotator, hypothesis, seg_annotator, batch, decode_batch, quiet, trained, p2sam, img_size, allow_dataset_mismatch;
  int64_t limit;
  int64_t crop;  // P2SAM: side of the lesion-centred window (-1: the checkpoint's p2sam.crop)
  SamxInferOpts o;
  SamxLaunchArgs launch;
} InferArgs;

static int parse_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (end == s || *end || errno || x < lo || x > hi) return samx_fail("%s '%s': expected an integer in [%lld, %lld]", opt, s, (long long)lo, (long long)hi);
  *v = x;
  return 0;
}

static int parse_args(int argc, char **argv, InferArgs *a) {
  memset(a, 0, sizeof *a);
  a->split = "test", a->device = "auto", a->limit = -1, a->crop = -1;
  a->o = samx_infer_defaults(SAMX_INFER_SAM);
  static const char *with_value[] = {"--method", "--checkpoint", "--data", "--out", "--split", "--annotator", "--prompts",
                                     "--limit", "--device", "--batch", "--decode-batch", "--k", "--clicks", "--seed",
                                     "--aggregate", "--mask-prompt", "--candidates", "--segmentation", "--hypothesis",
                                     "--seg-annotator", "--point", "--weighting", "--connectivity", "--masks",
                                     "--snapshots", "--samples", "--mask-weights", "--base", "--img-size", "--precision",
                                     "--crop", "--embeddings"};
  a->launch = SAMX_LAUNCH_ARGS_NONE;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i];
    if (!strcmp(opt, "-q") || !strcmp(opt, "--quiet")) {
      a->quiet = 1;
      continue;
    }
    if (!strcmp(opt, "--allow-dataset-mismatch")) {
      a->allow_dataset_mismatch = 1;
      continue;
    }
    int took = samx_launch_take_arg(argc, argv, &i, &a->launch);
    if (took < 0) return -1;
    if (took) continue;
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(opt, with_value[k]);
    if (!known) return samx_fail("unknown option '%s' (see samx infer --help)", opt);
    if (i + 1 >= argc) return samx_fail("%s needs a value (see samx infer --help)", opt);
    const char *v = argv[++i];
    int64_t x;
    if (!strcmp(opt, "--method")) a->method_name = v;
    else if (!strcmp(opt, "--checkpoint")) a->checkpoint = v;
    else if (!strcmp(opt, "--data")) a->data = v;
    else if (!strcmp(opt, "--out")) a->out = v;
    else if (!strcmp(opt, "--split")) a->split = v;
    else if (!strcmp(opt, "--prompts")) a->prompts = v;
    else if (!strcmp(opt, "--device")) a->device = v;
    else if (!strcmp(opt, "--precision")) a->precision = v;
    else if (!strcmp(opt, "--candidates")) a->candidates = v;
    else if (!strcmp(opt, "--segmentation")) a->segmentation = v;
    else if (!strcmp(opt, "--snapshots")) a->snapshots = v;
    else if (!strcmp(opt, "--mask-weights")) a->mask_weights = v;
    else if (!strcmp(opt, "--base")) a->base = v;
    else if (!strcmp(opt, "--embeddings")) a->embeddings = v;
    else if (!strcmp(opt, "--samples")) {
      if (parse_int(opt, v, 1, 64, &x)) return -1;
      a->o.p2sam_samples = (int)x;
    } else if (!strcmp(opt, "--crop")) {
      if (parse_int(opt, v, 0, 1 << 20, &x)) return -1;
      a->crop = x;
    } else if (!strcmp(opt, "--img-size")) {
      if (parse_int(opt, v, 16, 4096, &x)) return -1;
      a->img_size = (int)x;
    }
    else if (!strcmp(opt, "--annotator")) {
      if (parse_int(opt, v, 0, 1 << 20, &x)) return -1;
      a->annotator = (int)x;
    } else if (!strcmp(opt, "--hypothesis")) {
      if (parse_int(opt, v, 0, 1 << 20, &x)) return -1;
      a->hypothesis = (int)x;
    } else if (!strcmp(opt, "--seg-annotator")) {
      if (parse_int(opt, v, 0, 1 << 20, &x)) return -1;
      a->seg_annotator = (int)x;
    } else if (!strcmp(opt, "--limit")) {
      if (parse_int(opt, v, 0, INT64_MAX, &a->limit)) return -1;
    } else if (!strcmp(opt, "--masks")) {
      if (parse_int(opt, v, 1, 64, &x)) return -1;
      a->o.n_masks = (int)x;
    } else if (!strcmp(opt, "--batch")) {
      if (parse_int(opt, v, 1, 1024, &x)) return -1;
      a->batch = (int)x;
    } else if (!strcmp(opt, "--decode-batch")) {
      if (parse_int(opt, v, 1, 1 << 16, &x)) return -1;
      a->o.decode_chunk = (int)x;
    } else if (!strcmp(opt, "--k")) {
      if (parse_int(opt, v, 1, 1 << 16, &x)) return -1;
      a->o.simsam.k = (int)x;
    } else if (!strcmp(opt, "--seed")) {
      if (parse_int(opt, v, 0, INT64_MAX, &x)) return -1;
      a->o.simsam.seed = (uint64_t)x;
    } else if (!strcmp(opt, "--clicks")) {
      if (samx_simsam_clicks_parse(v, &a->o.simsam.clicks)) return samx_fail("--clicks '%s': expected topk, sample or random", v);
    } else if (!strcmp(opt, "--aggregate")) {
      if (samx_simsam_aggregate_parse(v, &a->o.simsam.aggregate)) return samx_fail("--aggregate '%s': expected iou or pixel", v);
    } else if (!strcmp(opt, "--mask-prompt")) {
      if (strcmp(v, "binary") && strcmp(v, "logits")) return samx_fail("--mask-prompt '%s': expected binary or logits", v);
      a->o.simsam.raw_mask_prompt = !strcmp(v, "logits");
    } else if (!strcmp(opt, "--point")) {
      if (strcmp(v, "edt") && strcmp(v, "centroid")) return samx_fail("--point '%s': expected edt or centroid", v);
      a->o.sqa.centroid = !strcmp(v, "centroid");
    } else if (!strcmp(opt, "--weighting")) {
      if (strcmp(v, "mean") && strcmp(v, "area")) return samx_fail("--weighting '%s': expected mean or area", v);
      a->o.sqa.area_weighted = !strcmp(v, "area");
    } else {  // --connectivity
      if (strcmp(v, "4") && strcmp(v, "8")) return samx_fail("--connectivity '%s': expected 4 or 8", v);
      a->o.sqa.connectivity = atoi(v);
    }
  }
  if (!a->method_name) return samx_fail("--method is required (sam, simsam or sqa; see samx infer --help)");
  SamMethod trained;
  if (sam_method_parse(a->method_name, &trained) == 0) a->o.method = SAMX_INFER_TRAINED, a->trained = 1;
  else if (!strcmp(a->method_name, "sam")) a->o.method = SAMX_INFER_SAM;
  else if (!strcmp(a->method_name, "simsam")) a->o.method = SAMX_INFER_SIMSAM;
  else if (!strcmp(a->method_name, "sqa")) a->o.method = SAMX_INFER_SQA;
  else return samx_fail("--method '%s': expected sam, simsam, sqa, seqsam, mcl, sam-ft or p2sam", a->method_name);
  a->p2sam = a->trained && trained == SAM_METHOD_P2SAM;
  a->o.p2sam_seed = a->o.simsam.seed;
  if (!a->p2sam && (a->snapshots || a->mask_weights || a->base || a->img_size || a->o.p2sam_samples || a->crop >= 0))
    return samx_fail("--snapshots, --samples, --mask-weights, --base, --img-size and --crop are for --method p2sam");
  if (a->p2sam && a->o.n_masks) return samx_fail("--masks: P2SAM gives --snapshots x --samples hypotheses");
  if (a->embeddings && strcmp(a->method_name, "fewshot"))
    return samx_fail("--embeddings is for --method fewshot (the other methods run the encoder)");
  if (!a->checkpoint) return samx_fail("--checkpoint is required (see samx infer --help)");
  if (!a->data) return samx_fail("--data is required (see samx infer --help)");
  if (!a->out) return samx_fail("--out is required (see samx infer --help)");
  if (a->o.method == SAMX_INFER_SQA && !a->segmentation) return samx_fail("--method sqa needs --segmentation S.h5");
  if (a->o.method != SAMX_INFER_SQA && a->segmentation) return samx_fail("--segmentation is for --method sqa");
  if (a->o.method == SAMX_INFER_SQA && a->prompts) return samx_fail("--prompts is for --method sam and simsam");
  if (a->candidates && a->o.method != SAMX_INFER_SIMSAM) return samx_fail("--candidates is for --method simsam");
  if (a->o.n_masks && !a->trained) return samx_fail("--masks is for trained models (seqsam, mcl, sam-ft)");
  if (strcmp(a->split, "all") && samx_split_parse(a->split) < 0)
    return samx_fail("--split '%s': expected train, val, test or all", a->split);
  const char *inputs[] = {a->data, a->checkpoint, a->segmentation, a->prompts, a->mask_weights, a->base, a->embeddings};
  if (samx_check_output_not_input("--out", a->out, inputs, 7) ||
      samx_check_output_not_input("--candidates", a->candidates, inputs, 7))
    return -1;
  if (a->candidates && !strcmp(a->candidates, a->out)) return samx_fail("--candidates and --out name the same file");
  return 0;
}

// ---- inputs: rows, prompts, segmentations ----

typedef struct {
  int64_t n;         // dataset rows
  uint8_t *has;      // [n]
  float (*box)[4];   // [n]
} PromptFile;

static int read_prompts(const char *path, int64_t n, int64_t h, int64_t w, PromptFile *pf) {
  FILE *f = fopen(path, "r");
  if (!f) return samx_fail("%s: cannot open: %s", path, strerror(errno));
  pf->n = n;
  pf->has = (uint8_t *)calloc((size_t)n, 1);
  pf->box = (float(*)[4])calloc((size_t)n, sizeof *pf->box);
  char line[512];
  int rc = 0;
  for (int ln = 1; fgets(line, sizeof line, f); ln++) {
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    if (!*s) continue;
    long long row;
    double b[4];
    char tail;
    if (sscanf(s, "%lld , %lf , %lf , %lf , %lf %c", &row, &b[0], &b[1], &b[2], &b[3], &tail) != 5) {
      rc = samx_fail("%s line %d: expected 'row,x0,y0,x1,y1'", path, ln);
      break;
    }
    if (row < 0 || row >= n) {
      rc = samx_fail("%s line %d: row %lld is outside the dataset (%lld rows)", path, ln, row, (long long)n);
      break;
    }
    if (!(b[0] >= 0 && b[1] >= 0 && b[2] <= w && b[3] <= h && b[0] <= b[2] && b[1] <= b[3])) {
      rc = samx_fail("%s line %d: box %g,%g,%g,%g is not a box inside the %lldx%lld image", path, ln, b[0], b[1], b[2], b[3],
                     (long long)w, (long long)h);
      break;
    }
    pf->has[row] = 1;
    for (int k = 0; k < 4; k++) pf->box[row][k] = (float)b[k];
  }
  fclose(f);
  return rc;
}

// The segmentation SQA-SAM scores: a prediction file or a dataset file.
typedef struct {
  SamxPredictions *pred;
  SamxDataset *ds;
  int64_t *row_of;  // dataset row -> prediction row (-1: none), prediction files only
  uint8_t *buf;
  int channel, channels;
} Segmentation;

static int open_segmentation(const InferArgs *a, SamxDataset *data, Segmentation *s) {
  memset(s, 0, sizeof *s);
  int64_t n = samx_dataset_n(data), h = samx_dataset_h(data), w = samx_dataset_w(data);
  s->pred = samx_predictions_open(a->segmentation);
  if (s->pred) {
    if (samx_predictions_check_dataset(s->pred, data) ||
        samx_predictions_check_dataset_sha256(s->pred, a->data, a->allow_dataset_mismatch, "samx infer"))
      return -1;
    int64_t m = samx_predictions_m(s->pred);
    if (a->hypothesis >= m) return samx_fail("%s: --hypothesis %d, the file has %lld", a->segmentation, a->hypothesis, (long long)m);
    s->row_of = (int64_t *)malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) s->row_of[i] = -1;
    const int64_t *idx = samx_predictions_index(s->pred);
    for (int64_t j = 0; j < samx_predictions_n(s->pred); j++) s->row_of[idx[j]] = j;
    s->channel = a->hypothesis, s->channels = (int)m;
  } else {
    char why[512];
    snprintf(why, sizeof why, "%s", samx_last_error());
    s->ds = samx_dataset_open(a->segmentation);
    if (!s->ds) return samx_fail("%s is neither a prediction file (%s) nor a dataset file (%s)", a->segmentation, why, samx_last_error());
    if (samx_dataset_n(s->ds) != n || samx_dataset_h(s->ds) != h || samx_dataset_w(s->ds) != w)
      return samx_fail("%s: %lld rows of %lldx%lld, %s has %lld of %lldx%lld", a->segmentation, (long long)samx_dataset_n(s->ds),
                       (long long)samx_dataset_h(s->ds), (long long)samx_dataset_w(s->ds), a->data, (long long)n, (long long)h,
                       (long long)w);
    if (a->seg_annotator >= samx_dataset_k(s->ds))
      return samx_fail("%s: --seg-annotator %d, the file has %lld", a->segmentation, a->seg_annotator, (long long)samx_dataset_k(s->ds));
    s->channel = a->seg_annotator, s->channels = (int)samx_dataset_k(s->ds);
  }
  s->buf = (uint8_t *)malloc((size_t)(s->channels * h * w));
  return 0;
}

static int has_segmentation(const Segmentation *s, int64_t row) { return s->ds || s->row_of[row] >= 0; }

// Row's segmentation (h*w) into out.
static int read_segmentation(Segmentation *s, int64_t row, int64_t hw, uint8_t *out) {
  int rc = s->pred ? samx_predictions_read_masks(s->pred, s->row_of[row], s->buf) : samx_dataset_read_masks(s->ds, row, s->buf);
  if (rc == 0) memcpy(out, s->buf + s->channel * hw, (size_t)hw);
  return rc;
}

static void close_segmentation(Segmentation *s) {
  if (s->pred) samx_predictions_close(s->pred);
  if (s->ds) samx_dataset_close(s->ds);
  free(s->row_of), free(s->buf);
}

// ---- the run ----

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
  SamxDataset *ds;
  int64_t h, w, k;
  int channels;
  PromptFile prompts;
  Segmentation seg;
  uint8_t *masks;  // K*h*w scratch
} Source;

// Loads row into in (image, box or segmentation). Returns 1 when the row has a prompt, 0 when it has
// none (empty ground truth / segmentation rows of SQA always run), -1 on a read error.
static int load_row(const InferArgs *a, Source *src, int64_t row, SamxInferInput *in, uint8_t *rgb, uint8_t *seg) {
  int64_t hw = src->h * src->w;
  if (samx_dataset_read_image_u8(src->ds, row, src->channels == 3 ? rgb : seg ? seg : rgb + 2 * hw)) return -1;
  if (src->channels == 1) {
    const uint8_t *grey = seg ? seg : rgb + 2 * hw;  // expanded in place, front to back, from a copy
    uint8_t *tmp = (uint8_t *)malloc((size_t)hw);
    memcpy(tmp, grey, (size_t)hw);
    for (int64_t q = 0; q < hw; q++) rgb[3 * q] = rgb[3 * q + 1] = rgb[3 * q + 2] = tmp[q];
    free(tmp);
  }
  memset(in, 0, sizeof *in);
  in->rgb = rgb, in->h = (int)src->h, in->w = (int)src->w, in->key = (uint64_t)row;
  if (a->o.method == SAMX_INFER_SQA) {
    if (read_segmentation(&src->seg, row, hw, seg)) return -1;
    in->seg = seg, in->n_classes = 1;
    return 1;
  }
  if (a->o.method == SAMX_INFER_TRAINED && !strcmp(a->method_name, "fewshot")) return 1;  // no prompt: target embeddings
  if (a->prompts) {
    if (!src->prompts.has[row]) return 0;
    memcpy(in->box, src->prompts.box[row], sizeof in->box);
    return 1;
  }
  if (a->p2sam && a->crop > 0) {  // the lesion-centred window, as p2sam.crop in training
    if (a->crop > src->h || a->crop > src->w)
      return samx_fail("--crop %lld: larger than the %lldx%lld images of %s", (long long)a->crop, (long long)src->h,
                       (long long)src->w, a->data);
    if (samx_dataset_read_masks(src->ds, row, src->masks)) return -1;
    int64_t at[2];
    samx_prompt_crop_window(src->masks, samx_dataset_annotator_valid(src->ds) + row * src->k, src->k, src->h, src->w, a->crop, at);
    in->crop[0] = (int)at[0], in->crop[1] = (int)at[1], in->crop[2] = (int)a->crop;
  }
  if (a->p2sam) return 1;  // no prompt: every row runs (evaluate.py scores all test images)
  if (!samx_dataset_annotator_valid(src->ds)[row * src->k + a->annotator]) return 0;
  if (samx_dataset_read_masks(src->ds, row, src->masks)) return -1;
  return samx_mask_box(src->masks + a->annotator * hw, src->h, src->w, in->box) == 0;
}

static void progress(const InferArgs *a, int64_t done, int64_t total, double t0, double *last, int final) {
  if (a->quiet) return;
  double t = now_s();
  int tty = isatty(2);
  if (!final && t - *last < (tty ? 0.5 : 10.0)) return;
  *last = t;
  double rate = done / fmax(t - t0, 1e-9), eta = rate > 0 ? (total - done) / rate : 0;
  if (tty) {
    int bar = total ? (int)(30 * done / total) : 30;
    fprintf(stderr, "\rsamx infer [%.*s%*s] %lld/%lld  %.2f img/s  eta %.0fs ", bar, "==============================", 30 - bar, "",
            (long long)done, (long long)total, rate, eta);
    if (final) fputc('\n', stderr);
  } else {
    fprintf(stderr, "samx infer: %lld/%lld images, %.2f img/s, eta %.0f s\n", (long long)done, (long long)total, rate, eta);
  }
}

static SamxPredictionsWriter *create_writer(const InferArgs *a, const char *path, int64_t m, int64_t h, int64_t w,
                                            const char *ck_sha, const char *data_sha) {
  SamxPredictionsSpec spec = {.m = m, .h = h, .w = w, .method = a->method_name, .checkpoint_path = a->checkpoint,
                              .checkpoint_sha256 = ck_sha, .dataset_path = a->data, .dataset_sha256 = data_sha,
                              .split = a->split, .with_scores = a->o.method == SAMX_INFER_SAM || a->o.method == SAMX_INFER_SIMSAM,
                              .with_quality = a->o.method == SAMX_INFER_SQA};
  return samx_predictions_create(path, &spec);
}

// Candidates file: the K candidates then their union.
static int append_candidates(SamxPredictionsWriter *w, int64_t row, const SamxInferOutput *o, int64_t hw) {
  uint8_t *m = (uint8_t *)malloc((size_t)((o->k + 1) * hw));
  float *s = (float *)malloc(sizeof(float) * (size_t)(o->k + 1));
  memcpy(m, o->candidates, (size_t)(o->k * hw));
  memset(m + o->k * hw, 0, (size_t)hw);
  for (int k = 0; k < o->k; k++) {
    s[k] = o->cand_iou[k];
    for (int64_t q = 0; q < hw; q++) m[o->k * hw + q] |= o->candidates[k * hw + q];
  }
  s[o->k] = NAN;
  int rc = samx_predictions_append(w, row, m, s, NAN);
  free(m), free(s);
  return rc;
}

int samx_is_samx_p2sam(const char *path);     // tools/cmd_segment_p2sam.c

// P2SAM: a samx checkpoint or the authors' files, and the snapshots to ensemble: --snapshots
// 10,50,70,100 (default; evaluate.py's) names epoch_N snapshots; "none" uses the model as loaded.
static int load_p2sam(InferArgs *a, SamxDevice device, SamMethodModel *model, P2samSnapshots *snaps) {
  const char *list = a->snapshots ? a->snapshots : "10,50,70,100";
  char names[16][64];
  const char *ptrs[16];
  int n = 0;
  if (strcmp(list, "none")) {
    for (const char *p = list; *p && n < 16;) {
      // an epoch number names epoch_N; anything else (step_120) is the snapshot's name itself
      size_t len = strcspn(p, ",");
      if (len == 0 || len >= 48) return samx_fail("--snapshots '%s': expected epochs like 10,50,70,100, names, or none", list);
      int digits = strspn(p, "0123456789") == len;
      snprintf(names[n], sizeof names[n], "%s%.*s", digits ? "epoch_" : "", (int)len, p);
      ptrs[n] = names[n];
      n++;
      p += len + (p[len] == ',');
    }
  }
  int samx_ckpt = samx_is_samx_p2sam(a->checkpoint), stage1 = 0;
  int rc = samx_ckpt ? sam_method_load(model, a->checkpoint, device, 0)
                     : p2sam_load_authors(model, a->checkpoint, a->base, a->mask_weights, n ? ptrs[0] : NULL, a->img_size, device, 0, &stage1);
  if (samx_ckpt) stage1 = p2sam_samx_config_key(a->checkpoint, "stage") == 1;
  if (a->crop < 0) a->crop = samx_ckpt ? p2sam_samx_config_key(a->checkpoint, "crop") : 0;  // as it was trained
  a->o.p2sam_stage1 = stage1;  // no prompt-generation network: one hypothesis, no snapshots
  if (rc == 0 && n && stage1 && a->snapshots)
    rc = samx_fail("--snapshots: %s is a stage-1 P2SAM model (no prompt-generation network, one hypothesis)", a->checkpoint);
  if (rc == 0 && n && !stage1) rc = p2sam_snapshots_load(snaps, model, a->checkpoint, ptrs, n);
  if (rc && model->sam.params.list) sam_method_free(model);
  return rc;
}


// One prediction into the file, with the run's statistics.
static int append_one(const InferArgs *a, SamxPredictionsWriter *w, int64_t row, const uint8_t *masks, float score,
                      float quality, int64_t *written, int64_t *empty_seg, double *quality_sum) {
  int rc;
  if (a->o.method == SAMX_INFER_SQA) {
    rc = samx_predictions_append(w, row, masks, NULL, quality);
    if (isnan(quality))
      ++*empty_seg;
    else
      *quality_sum += quality;
  } else {
    rc = samx_predictions_append(w, row, masks, &score, NAN);
  }
  ++*written;
  return rc;
}

// Several ranks: batch k of the one-process sequence runs on rank k mod W; after each round of W
// batches every rank's results travel to rank 0 (a broadcast from each), which appends them in batch
// order, so the file is the one a single process writes. Slot layout per rank: int64 count, then per
// prediction int64 row, float score, float quality and `payload` mask bytes.
typedef struct {
  SamxDist *dist;
  int W, me;
  int64_t payload, slot_bytes;
  uint8_t *slots;  // W slots
} Round;

static size_t item_bytes(const Round *r) { return 16 + (size_t)r->payload; }

static void round_init(Round *r, SamxDist *d, int batch, int64_t payload) {
  r->dist = d, r->W = d->world, r->me = d->rank, r->payload = payload;
  r->slot_bytes = 8 + (int64_t)batch * (int64_t)item_bytes(r);
  r->slots = r->W > 1 ? (uint8_t *)calloc((size_t)r->W, (size_t)r->slot_bytes) : NULL;
}

static void round_free(Round *r) { free(r->slots); }

static void round_pack(Round *r, const InferArgs *a, const SamxInferInput *in, const SamxInferOutput *out,
                       const int64_t *rows, int b) {
  uint8_t *s = r->slots + (size_t)r->me * (size_t)r->slot_bytes;
  int64_t n = b;
  memcpy(s, &n, 8);
  for (int i = 0; i < b; i++) {
    uint8_t *it = s + 8 + (size_t)i * item_bytes(r);
    memcpy(it, &rows[i], 8);
    memcpy(it + 8, &out[i].score, 4);
    memcpy(it + 12, &out[i].quality, 4);
    memcpy(it + 16, a->o.method == SAMX_INFER_SQA ? in[i].seg : out[i].mask, (size_t)r->payload);
  }
}

// Exchanges and writes the round; a failure on any rank (rc) fails every rank.
static int round_flush(Round *r, const InferArgs *a, SamxPredictionsWriter *w, int rc, int64_t *written,
                       int64_t *empty_seg, double *quality_sum) {
  double bad = rc != 0;
  if (samx_dist_allreduce_host_f64(r->dist, &bad, 1) != 0) return -1;
  if (bad) return rc ? rc : samx_fail("another rank failed (its message is above)");
  for (int q = 0; q < r->W && rc == 0; q++) {
    uint8_t *s = r->slots + (size_t)q * (size_t)r->slot_bytes;
    if (samx_dist_broadcast(r->dist, s, (size_t)r->slot_bytes, q) != 0) return -1;
    int64_t n;
    memcpy(&n, s, 8);
    for (int64_t i = 0; i < n && rc == 0; i++) {
      const uint8_t *it = s + 8 + (size_t)i * item_bytes(r);
      int64_t row;
      float score, quality;
      memcpy(&row, it, 8), memcpy(&score, it + 8, 4), memcpy(&quality, it + 12, 4);
      if (r->me == 0) rc = append_one(a, w, row, it + 16, score, quality, written, empty_seg, quality_sum);
    }
    memset(s, 0, 8);  // an empty slot until its rank fills it again
  }
  return rc;
}

static int run_ranks(InferArgs *a, SamxDist *dist);

// --embeddings: the cache must come from the encoder of the few-shot checkpoint (the base SAM its
// metadata records by sha256: the encoder is frozen in training), from --data (unless
// --allow-dataset-mismatch), with the model's embedding shape, and hold every row to run.
static int open_embeddings(const InferArgs *a, const SamModel *m, const char *data_sha, const int64_t *rows, int64_t n,
                           SamxEmbedCache **out) {
  SamxSafetensors st;
  if (samx_st_open(&st, a->checkpoint) != 0) return -1;
  const char *text = samx_st_meta(&st, "meta");
  json_t *meta = text ? json_loads(text, 0, NULL) : NULL;
  const char *enc = json_string_value(json_object_get(json_object_get(meta, "fewshot"), "encoder_sha256"));
  char want[65] = "";
  if (enc) snprintf(want, sizeof want, "%s", enc);
  json_decref(meta);
  samx_st_close(&st);
  if (strlen(want) != 64)
    return samx_fail("%s: its metadata does not record the encoder of its training embeddings (fewshot.encoder_sha256; "
                     "trained before --embeddings existed?): run without --embeddings",
                     a->checkpoint);
  SamxEmbedCache *c = samx_embed_open(a->embeddings, want);
  if (!c) return samx_fail("--embeddings: %s (the few-shot checkpoint %s was trained on that encoder's embeddings)",
                           samx_last_error(), a->checkpoint);
  *out = c;
  int64_t ch, h, w, g = sam_embed_grid(&m->cfg);
  samx_embed_shape(c, &ch, &h, &w);
  if (ch != m->cfg.out_chans || h != g || w != g || samx_embed_input_size(c) != m->cfg.img_size)
    return samx_fail("%s: embeddings [%lld, %lld, %lld] at input size %lld, the model's are [%d, %lld, %lld] at %d",
                     a->embeddings, (long long)ch, (long long)h, (long long)w, (long long)samx_embed_input_size(c),
                     m->cfg.out_chans, (long long)g, (long long)g, m->cfg.img_size);
  if (!a->allow_dataset_mismatch && strcmp(samx_embed_dataset_sha256(c), data_sha))
    return samx_fail("%s: the embeddings were computed from dataset %s (sha256 %s), not from %s (sha256 %s); run "
                     "`samx embed` on it again (or pass --allow-dataset-mismatch)",
                     a->embeddings, samx_embed_dataset_path(c), samx_embed_dataset_sha256(c), a->data, data_sha);
  for (int64_t i = 0; i < n; i++)
    if (samx_embed_find(c, rows[i]) < 0)
      return samx_fail("%s: dataset row %lld of %s (split %s) has no embedding; run `samx embed` for this split",
                       a->embeddings, (long long)rows[i], a->data, a->split);
  return 0;
}

static int run(InferArgs *a) {
  SamxLaunch launch;
  SamxDist dist;
  SamxDevice device;
  if (samx_device_parse(a->device, &device) != 0 || samx_launch_detect(&a->launch, NULL, NULL, &launch) != 0 ||
      samx_dist_init(&dist, &launch, device) != 0)
    return -1;
  if (dist.world > 1 && a->candidates) {
    samx_dist_finalize(&dist);
    return samx_fail("--candidates is written by one process only (run without several ranks)");
  }
  int rc = samx_precision_setup(a->precision, dist.device);
  if (rc == 0) rc = run_ranks(a, &dist);
  samx_dist_finalize(&dist);
  return rc;
}

static int run_ranks(InferArgs *a, SamxDist *dist) {
  Source src = {0};
  src.ds = samx_dataset_open(a->data);
  if (!src.ds) return -1;
  src.h = samx_dataset_h(src.ds), src.w = samx_dataset_w(src.ds), src.k = samx_dataset_k(src.ds);
  src.channels = samx_dataset_channels(src.ds);
  int64_t n = samx_dataset_n(src.ds), hw = src.h * src.w;
  int rc = 0;
  SamMethodModel model;  // plain SAM methods use model.sam only
  P2samSnapshots snaps = {0};  // before any goto done
  int model_loaded = 0;
  SamxInferer *inf = NULL;
  SamxEmbedCache *cache = NULL;
  SamxPredictionsWriter *writer = NULL, *cand_writer = NULL;
  int64_t *rows = (int64_t *)malloc(sizeof(int64_t) * (size_t)(n + 1)), nrows;
  if (a->annotator >= src.k) {
    rc = samx_fail("--annotator %d: %s has %lld annotators", a->annotator, a->data, (long long)src.k);
    goto done;
  }
  if (!strcmp(a->split, "all")) {
    for (int64_t i = 0; i < n; i++) rows[i] = i;
    nrows = n;
  } else {
    nrows = samx_dataset_split_rows(src.ds, samx_split_parse(a->split), rows, n);
  }
  if (a->prompts && (rc = read_prompts(a->prompts, n, src.h, src.w, &src.prompts))) goto done;
  if (a->o.method == SAMX_INFER_SQA && (rc = open_segmentation(a, src.ds, &src.seg))) goto done;
  // Rows that can run at all: listed in the prompt file / present in the segmentation file.
  int64_t kept = 0;
  for (int64_t i = 0; i < nrows; i++) {
    int64_t r = rows[i];
    if ((a->prompts && !src.prompts.has[r]) || (a->o.method == SAMX_INFER_SQA && !has_segmentation(&src.seg, r))) continue;
    rows[kept++] = r;
  }
  nrows = a->limit >= 0 && a->limit < kept ? a->limit : kept;
  SamxDevice device = dist->device;
  if (a->p2sam) {
    if ((rc = load_p2sam(a, device, &model, &snaps))) goto done;
    model_loaded = 2;
    a->o.p2sam_snapshots = snaps.n ? &snaps : NULL;
  } else if (a->trained) {
    if ((rc = sam_method_load(&model, a->checkpoint, device, 0))) goto done;
    model_loaded = 2;
    if (strcmp(sam_method_name(model.method), a->method_name)) {
      rc = samx_fail("%s holds a %s model, not %s", a->checkpoint, sam_method_name(model.method), a->method_name);
      goto done;
    }
  } else {
    if ((rc = sam_load(&model.sam, a->checkpoint, device, 0, NULL))) goto done;
    model_loaded = 1;
  }
  if (a->o.method == SAMX_INFER_SIMSAM && a->o.simsam.k > hw) {
    rc = samx_fail("--k %d: more clicks than the %lldx%lld images have pixels", a->o.simsam.k, (long long)src.h, (long long)src.w);
    goto done;
  }
  char ck_sha[65], data_sha[65];
  if ((rc = samx_sha256_file(a->checkpoint, ck_sha)) || (rc = samx_sha256_file(a->data, data_sha))) goto done;
  if (a->embeddings && (rc = open_embeddings(a, &model.sam, data_sha, rows, nrows, &cache))) goto done;
  int batch = a->batch ? a->batch : device.type == SAMX_CUDA ? 4 : 1;
  a->o.max_batch = batch;
  a->o.keep_candidates = a->candidates != NULL;
  inf = a->trained ? samx_inferer_new_trained(&model, &a->o, (int)src.h, (int)src.w)
                   : samx_inferer_new(&model.sam, &a->o, (int)src.h, (int)src.w);
  if (!inf) {
    rc = -1;
    goto done;
  }
  int64_t n_masks = a->trained ? (a->o.n_masks ? a->o.n_masks : model.n_masks) : 1;
  if (a->p2sam)  // snapshots x samples (the checkpoint's method.masks is its validation count, not this)
    n_masks = a->o.p2sam_stage1 ? 1 : (int64_t)(snaps.n ? snaps.n : 1) * (a->o.p2sam_samples > 0 ? a->o.p2sam_samples : 4);
  if (!(writer = create_writer(a, a->out, n_masks, src.h, src.w, ck_sha, data_sha))) {
    rc = -1;
    goto done;
  }
  if (a->candidates && !(cand_writer = create_writer(a, a->candidates, a->o.simsam.k + 1, src.h, src.w, ck_sha, data_sha))) {
    rc = -1;
    goto done;
  }
  uint8_t *rgb = (uint8_t *)malloc((size_t)(batch * 3 * hw)), *seg = (uint8_t *)malloc((size_t)(batch * hw));
  src.masks = (uint8_t *)malloc((size_t)(src.k * hw));
  SamxInferInput *in = (SamxInferInput *)calloc((size_t)batch, sizeof *in);
  SamxInferOutput *out = (SamxInferOutput *)calloc((size_t)batch, sizeof *out);
  int64_t *batch_rows = (int64_t *)malloc(sizeof(int64_t) * (size_t)batch);
  int64_t per_emb = 0, emb_c = 0, emb_h = 0, emb_w = 0;
  if (cache) samx_embed_shape(cache, &emb_c, &emb_h, &emb_w), per_emb = emb_c * emb_h * emb_w;
  float *emb_buf = cache ? (float *)malloc(sizeof(float) * (size_t)(batch * per_emb)) : NULL;
  int64_t *emb_info = cache ? (int64_t *)malloc(sizeof(int64_t) * 4 * (size_t)batch) : NULL;
  int64_t done = 0, written = 0, no_prompt = 0, empty_seg = 0, next = 0;
  double t0 = now_s(), last = t0, quality_sum = 0;
  Round rd;
  round_init(&rd, dist, batch, a->o.method == SAMX_INFER_SQA ? hw : n_masks * hw);
  int64_t k_batch = 0;  // batches formed so far: batch k runs on rank k mod W
  while (rc == 0 && next < nrows) {
    int b = 0;
    while (b < batch && next < nrows) {
      int64_t r = rows[next++];
      int got = load_row(a, &src, r, &in[b], rgb + b * 3 * hw, a->o.method == SAMX_INFER_SQA ? seg + b * hw : NULL);
      if (got < 0) {
        rc = -1;
        break;
      }
      done += got == 0, no_prompt += got == 0;
      if (got && cache) {
        if (samx_embed_read_row(cache, r, emb_buf + b * per_emb, emb_info + 4 * b) != 0) {
          rc = -1;
          break;
        }
        in[b].embedding = emb_buf + b * per_emb, in[b].embed_info = emb_info + 4 * b;
      }
      if (got) batch_rows[b++] = r;
    }
    if (rc || b == 0) break;
    if (k_batch++ % rd.W == rd.me) {
      samx_inferer_run(inf, in, b, out);
      if (samx_inferer_nonfinite(inf))
        rc = samx_fail("the model produced %lld non-finite (NaN/inf) mask logits by dataset row %lld: the checkpoint's "
                       "weights or the inputs hold NaN/inf; no prediction file written",
                       (long long)samx_inferer_nonfinite(inf), (long long)batch_rows[b - 1]);
      if (rd.W == 1) {  // one process writes as it goes (SimSAM's candidates file too)
        for (int i = 0; i < b && rc == 0; i++) {
          SamxInferOutput *o = &out[i];
          rc = append_one(a, writer, batch_rows[i], a->o.method == SAMX_INFER_SQA ? in[i].seg : o->mask, o->score,
                          o->quality, &written, &empty_seg, &quality_sum);
          if (rc == 0 && cand_writer) rc = append_candidates(cand_writer, batch_rows[i], o, hw);
        }
      } else {
        round_pack(&rd, a, in, out, batch_rows, b);
      }
      for (int i = 0; i < b; i++) samx_infer_output_free(&out[i]);
    }
    done += b;
    if (rd.W > 1 && k_batch % rd.W == 0) rc = round_flush(&rd, a, writer, rc, &written, &empty_seg, &quality_sum);
    if (rd.me == 0) progress(a, done, nrows, t0, &last, 0);
  }
  if (rd.W > 1) rc = round_flush(&rd, a, writer, rc, &written, &empty_seg, &quality_sum);  // a short last round
  round_free(&rd);
  if (rc == 0 && rd.me != 0) {  // rank 0 writes the file
    samx_predictions_abort(writer);
    writer = NULL;
  } else if (rc == 0) {
    progress(a, done, nrows, t0, &last, 1);
    rc = samx_predictions_finish(writer);
    writer = NULL;
    if (rc == 0 && cand_writer) rc = samx_predictions_finish(cand_writer), cand_writer = NULL;
  }
  if (rc == 0 && !a->quiet && rd.me == 0) {
    double dt = now_s() - t0;
    fprintf(stderr, "samx infer: %s, %lld predictions written to %s in %.1f s (%.2f img/s, %.1f ms/img)", a->method_name,
            (long long)written, a->out, dt, written / fmax(dt, 1e-9), 1e3 * dt / fmax((double)written, 1));
    if (no_prompt) fprintf(stderr, "; %lld rows without a prompt left out", (long long)no_prompt);
    if (a->o.method == SAMX_INFER_SQA)
      fprintf(stderr, "; mean quality %.4f over %lld, %lld empty segmentations (NaN)", quality_sum / fmax((double)(written - empty_seg), 1),
              (long long)(written - empty_seg), (long long)empty_seg);
    fputc('\n', stderr);
  }
  free(rgb), free(seg), free(src.masks), free(in), free(out), free(batch_rows), free(emb_buf), free(emb_info);
done:
  if (cache) samx_embed_close(cache);
  if (writer) samx_predictions_abort(writer);
  if (cand_writer) samx_predictions_abort(cand_writer);
  samx_inferer_free(inf);
  if (model_loaded == 1) sam_free(&model.sam);
  if (model_loaded == 2) sam_method_free(&model);
  p2sam_snapshots_free(&snaps);
  if (a->o.method == SAMX_INFER_SQA) close_segmentation(&src.seg);
  free(src.prompts.has), free(src.prompts.box);
  free(rows);
  samx_dataset_close(src.ds);
  return rc;
}

int samx_cmd_infer_components(int argc, char **argv);  // tools/cmd_infer_components.c

int samx_cmd_infer(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--per-component") || (!strcmp(argv[i], "--method") && i + 1 < argc && !strcmp(argv[i + 1], "atlas")))
      return samx_cmd_infer_components(argc, argv);
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
  InferArgs a;
  if (parse_args(argc, argv, &a)) {
    fprintf(stderr, "samx infer: %s\n", samx_last_error());
    return 2;
  }
  if (run(&a)) {
    fprintf(stderr, "samx infer: %s\n", samx_last_error());
    return 1;
  }
  return 0;
}
