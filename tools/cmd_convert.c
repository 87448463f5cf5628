// samx convert: any checkpoint sam_load reads -> samx's safetensors (config JSON in the metadata),
// so that later runs need neither the pickle reader nor shape inference.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/samx.h"
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
          "  --dec-heads N   attention heads of the mask decoder, which shapes cannot tell (default: SAM's 8)\n");
}

int samx_cmd_convert(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  SamConfig override;
  memset(&override, 0, sizeof override);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
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
  if (samx_check_output_not_input("samx convert: OUT", out, (const char *const[]){in}, 1)) {
    fprintf(stderr, "%s\n", samx_last_error());
    return 2;
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
