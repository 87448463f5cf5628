// Memory of SAM inference as `samx segment` runs it (models/sam/sam_memory.c sizes the arenas; run_sam
// in tools/cmd_segment.c is mirrored here): the encoder's arena, then the decoder's, with the image
// embedding moved across before the encoder's is freed. Plain entry: a small model on the CPU, whole
// path computed, every arena's high-water mark within its size. cuda entry: ViT-B at 1024x1024, batch
// 1, in fp32 and bf16; the GPU memory the process holds at its peak (parameters, in bf16 their kept
// bf16 GEMM operands, both arenas, cuBLAS and cuBLASLt state) must stay under 2 GiB in bf16 (issue: "ViT-B inference at batch 1 under 2 GB").
// On the CUDA emulator the ViT-B runs are a dry run (SAMX_CUDA_EMU_DRY_RUN: every allocation and copy
// is real, no kernel computes), which measures exactly what is allocated; on a GPU they compute.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness.h"
#include "../test_util.h"
#include "engine/precision.h"
#include "models/sam/sam.h"
#include "models/sam/sam_image.h"

#define MiB (1024.0 * 1024.0)

typedef struct {
  size_t enc_size, enc_peak, dec_size, dec_peak;
  size_t device_base, device_peak;  // GPU memory in use before the first arena and at the peak
} Measured;

static size_t device_used(SamxDevice d) {
  size_t used, total;
  samx_device_memory(d, &used, &total);
  return used;
}

static Measured segment_once(SamModel *m, SamxPrecision precision, int side) {
  const SamConfig *c = &m->cfg;
  Measured r = {0};
  r.device_base = device_used(m->device);
  uint8_t *rgb = (uint8_t *)calloc((size_t)3 * side * side, 1);
  for (size_t i = 0; i < (size_t)3 * side * side; i++) rgb[i] = (uint8_t)(i * 37 % 251);
  r.enc_size = sam_encoder_arena_bytes(c, 1, precision);
  SamxCtx enc;
  samx_ctx_init(&enc, m->device, r.enc_size, 4096 + 512 * c->enc_depth);
  samx_ctx_set_recording(&enc, 0);
  enc.precision = precision;
  SamImageInfo info;
  SamxTensor *emb_enc = sam_encode(&enc, m, sam_preprocess(&enc, m, rgb, side, side, &info));
  r.dec_size = sam_decoder_arena_bytes(c, side, side);
  SamxCtx dec;
  samx_ctx_init(&dec, m->device, r.dec_size, 4096);
  samx_ctx_set_recording(&dec, 0);
  dec.precision = precision;
  SamxTensor *emb = samx_new(&dec, SAMX_F32, samx_shape_of(emb_enc));
  samx_tensor_copy(emb, emb_enc);
  samx_device_sync(m->device);
  r.device_peak = device_used(m->device);  // both arenas and the model: the process's peak
  r.enc_peak = enc.act.peak;
  samx_ctx_free(&enc);
  SamPrompt p;
  memset(&p, 0, sizeof p);
  p.has_box = 1;
  float box[4] = {side * 0.2f, side * 0.3f, side * 0.6f, side * 0.7f};
  memcpy(p.box, box, sizeof box);
  sam_prompt_to_input(&info, &p);
  SamxTensor *sparse, *dense, *low, *iou;
  sam_prompt_encode(&dec, m, &p, 1, NULL, &sparse, &dense);
  sam_decode(&dec, m, emb, NULL, sparse, dense, 1, &low, &iou);
  sam_postprocess(&dec, m, low, &info);
  samx_device_sync(m->device);
  size_t after = device_used(m->device);
  if (after > r.device_peak) r.device_peak = after;
  r.dec_peak = dec.act.peak;
  samx_ctx_free(&dec);
  free(rgb);
  return r;
}

// The parameters and, in bf16, their kept GEMM operands (samx_params_shadow_bf16: a process that
// computes in bf16 on the GPU allocates them with the parameters).
static double param_mib(const SamModel *m) { return (double)samx_params_value_bytes(&m->params) / MiB; }

static void report(const char *what, const SamModel *m, const Measured *r) {
  printf("%-22s params %7.1f MiB | encoder arena %7.1f MiB, peak %7.1f | decoder arena %7.1f MiB, peak %7.1f",
         what, param_mib(m), r->enc_size / MiB, r->enc_peak / MiB, r->dec_size / MiB, r->dec_peak / MiB);
  if (m->device.type == SAMX_CUDA)
    printf(" | GPU memory at the peak %.1f MiB (%.1f before the arenas)", r->device_peak / MiB, r->device_base / MiB);
  printf("\n");
}

static void check_fits(const char *what, const Measured *r) {
  // An arena that overflows dies in samx_arena_alloc; this states it, and that the sizing is not
  // several times what is used (memory a GPU would hold for nothing) beyond the fixed 48 MiB for
  // cuBLASLt's workspace and small tensors.
  const size_t fixed = (size_t)48 << 20;
  CHECK(r->enc_peak <= r->enc_size && r->dec_peak <= r->dec_size, "%s: an arena's peak exceeds its size", what);
  CHECK(r->enc_peak * 3 + fixed >= r->enc_size && r->dec_peak * 3 + fixed >= r->dec_size,
        "%s: arenas sized at more than 3x their peak + 48 MiB (encoder %.1f of %.1f MiB, decoder %.1f of %.1f MiB)", what,
        r->enc_peak / MiB, r->enc_size / MiB, r->dec_peak / MiB, r->dec_size / MiB);
}

int main(int argc, char **argv) {
  SamxDevice dev;
  if (argc > 1 && !strcmp(argv[1], "cuda")) setenv("SAMX_CUDA_EMU_DRY_RUN", "1", 1);  // read by the emulator only
  if (samx_test_device_arg(argc, argv, &dev) == SAMX_TEST_SKIP) return SAMX_TEST_SKIP;
  SamConfig c;
  SamModel m;
  if (dev.type == SAMX_CPU) {
    // The CPU computes everything: a 4-block model at 256 px with ViT-B's widths of the decoder.
    sam_config_preset("tiny", &c);
    sam_init_random(&m, &c, dev, 0, 5);
    Measured r = segment_once(&m, SAMX_PRECISION_FP32, 300);
    report("tiny, cpu, fp32", &m, &r);
    check_fits("tiny on the CPU", &r);
    sam_free(&m);
    return samx_test_summary();
  }
  sam_config_preset("vit_b", &c);
  sam_init_random(&m, &c, dev, 0, 5);
  CHECK(!m.params.shadowed, "an fp32 process keeps no bf16 operands");
  Measured r32 = segment_once(&m, SAMX_PRECISION_FP32, 1024);
  report("vit_b, cuda, fp32", &m, &r32);
  sam_free(&m);
  samx_precision_set_default(SAMX_PRECISION_BF16);  // as `samx segment --precision bf16` sets it
  sam_init_random(&m, &c, dev, 0, 5);
  CHECK(m.params.shadowed, "a bf16 process keeps the parameters' bf16 operands");
  Measured r16 = segment_once(&m, SAMX_PRECISION_BF16, 1024);
  report("vit_b, cuda, bf16", &m, &r16);
  check_fits("vit_b fp32", &r32);
  check_fits("vit_b bf16", &r16);
  CHECK(r16.device_peak - r16.device_base + (size_t)(param_mib(&m) * MiB) < ((size_t)2 << 30),
        "ViT-B bf16 inference holds %.1f MiB of GPU memory (parameters included), over 2 GiB",
        (r16.device_peak - r16.device_base) / MiB + param_mib(&m));
  sam_free(&m);
  return samx_test_summary();
}
