// samx convert: any checkpoint sam_load reads -> samx's safetensors (config JSON in the metadata),
// so that later runs need neither the pickle reader nor shape inference.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/samx.h"
#include "models/p2sam/p2sam.h"
#include "models/sam/sam.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: samx convert IN OUT.safetensors [--dec-heads N]\n"
          "\n"
          "Reads a SAM checkpoint (torch.save .pth such as sam_vit_b_01ec64.pth or medsam_vit_b.pth, plain or\n"
          "nested under \"model\"/\"state_dict\"; safetensors with original or Hugging Face SamModel names;\n"
          "samx's own format) and writes samx's safetensors: every tensor in F32 under the original key\n"
          "names, the architecture as JSON in the metadata (key samx_config). The file is written atomically.\n"
          "\n"
          "  --dec-heads N   attention heads of the mask decoder, which shapes cannot tell (default: SAM's 8)\n"
          "\n"
          "usage: samx convert --p2sam IN OUT.safetensors [--mask-weights W.pt] [--base SAM.pth] [--img-size N]\n"
          "\n"
          "The authors' P2SAM files (contracts §6) to a samx P2SAM checkpoint (what samx train writes; samx infer\n"
          "and samx segment read it): IN is final_weights.pth (every snapshot epoch_N is also written beside OUT\n"
          "as snapshot_epoch_N.safetensors; the model holds the first) or a stage-1 X_model_epoch_N.pth over\n"
          "--base (resized to --img-size, default 128); --mask-weights the [8, 1] assembling weights.\n");
}

// The authors' P2SAM files -> a samx P2SAM checkpoint (+ its snapshots).
static int convert_p2sam(const char *in, const char *out, const char *mw, const char *base, int img_size) {
  SamMethodModel mm;
  int stage1 = 0;
  if (p2sam_load_authors(&mm, in, base, mw, NULL, img_size, samx_cpu(), 0, &stage1)) return -1;
  char *meta = sam_method_meta_json(&mm, "");
  SamxCheckpoint ck = {.params = &mm.sam.params};
  int rc = samx_checkpoint_save(out, &ck, meta);
  free(meta);
  int n = 0;
  char **names = NULL;
  if (rc == 0 && !stage1 && p2sam_snapshots(in, &names, &n) == 0) {
    const char *slash = strrchr(out, '/');
    for (int k = 0; k < n && rc == 0; k++) {
      P2samSnapshots s;
      const char *one[1] = {names[k]};
      rc = p2sam_snapshots_load(&s, &mm, in, one, 1);
      if (rc) break;
      SamxSTWriter *w = samx_st_writer_new();
      const float *v = s.values[0];
      for (int i = 0; i < s.n_params; i++) {
        int64_t shape[SAMX_MAX_DIMS];
        for (int d = 0; d < s.dst[i]->ndim; d++) shape[d] = s.dst[i]->shape[d];
        samx_st_writer_add(w, s.dst[i]->name, SAMX_F32, s.dst[i]->ndim, shape, v);
        v += s.dst[i]->numel;
      }
      samx_st_writer_meta(w, "format", "samx-p2sam-snapshot");
      char path[1200];
      snprintf(path, sizeof path, "%.*ssnapshot_%s.safetensors", slash ? (int)(slash - out + 1) : 0, out, names[k]);
      rc = samx_st_writer_save(w, path);
      samx_st_writer_free(w);
      p2sam_snapshots_free(&s);
      if (rc == 0) printf("snapshot %s -> %s\n", names[k], path);
    }
  }
  for (int k = 0; k < n; k++) free(names[k]);
  free(names);
  if (rc == 0)
    printf("%s -> %s: P2SAM (%s), %.1f M parameters, input %d px\n", in, out, stage1 ? "stage 1" : "stage 2",
           mm.sam.params.n_values / 1e6, mm.sam.cfg.img_size);
  sam_method_free(&mm);
  return rc;
}

int samx_cmd_convert(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *mw = NULL, *base = NULL;
  int p2 = 0, img_size = 0;
  SamConfig override;
  memset(&override, 0, sizeof override);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--p2sam")) {
      p2 = 1;
      continue;
    }
    if ((!strcmp(argv[i], "--mask-weights") || !strcmp(argv[i], "--base") || !strcmp(argv[i], "--img-size")) && i + 1 < argc) {
      if (!strcmp(argv[i], "--mask-weights")) mw = argv[i + 1];
      else if (!strcmp(argv[i], "--base")) base = argv[i + 1];
      else img_size = atoi(argv[i + 1]);
      p2 = 1, i++;
      continue;
    }
    if (!strcmp(argv[i], "--dec-heads")) {
      char *end = NULL;
      long n = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
      if (!end || *end || n <= 0 || n > 1024) {
        fprintf(stderr, "samx convert: --dec-heads needs a positive integer\n");
        return 2;
      }
      override.dec_heads = (int)n;
      i++;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "samx convert: unknown option '%s' (see samx convert --help)\n", argv[i]);
      return 2;
    } else if (!in) {
      in = argv[i];
    } else if (!out) {
      out = argv[i];
    } else {
      fprintf(stderr, "samx convert: too many arguments (see samx convert --help)\n");
      return 2;
    }
  }
  if (!in || !out) {
    fprintf(stderr, "samx convert: needs IN and OUT.safetensors (see samx convert --help)\n");
    return 2;
  }
  if (samx_check_output_not_input("samx convert: OUT", out, (const char *const[]){in, mw, base}, 3)) {
    fprintf(stderr, "%s\n", samx_last_error());
    return 2;
  }
  if (p2) {
    if (convert_p2sam(in, out, mw, base, img_size)) {
      fprintf(stderr, "samx convert: %s\n", samx_last_error());
      return 1;
    }
    return 0;
  }
  SamModel m;
  if (sam_load(&m, in, samx_cpu(), 0, &override)) {
    fprintf(stderr, "samx convert: %s\n", samx_last_error());
    return 1;
  }
  if (sam_save(&m, out)) {
    fprintf(stderr, "samx convert: %s\n", samx_last_error());
    sam_free(&m);
    return 1;
  }
  const SamConfig *c = &m.cfg;
  printf("%s -> %s: %d tensors, %.1f M parameters; encoder %d px, width %d, depth %d, %d heads; "
         "decoder depth %d, %d heads\n",
         in, out, m.params.n, m.params.n_values / 1e6, c->img_size, c->enc_dim, c->enc_depth, c->enc_heads, c->dec_depth,
         c->dec_heads);
  sam_free(&m);
  return 0;
}
