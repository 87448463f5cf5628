// Tensors, dtypes, arenas and device selection.
#include <string.h>

#include "../harness.h"

static void test_half_conversions(void) {
  // Hand-computed bit patterns (IEEE 754 binary16 and bfloat16, round to nearest even).
  struct { float f; uint16_t h; } f16[] = {
      {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65520.0f, 0x7c00} /* rounds to inf */,
      {5.9604644775390625e-08f, 0x0001} /* smallest subnormal */, {2.98023223876953125e-08f, 0x0000} /* tie -> 0 */,
      {6.103515625e-05f, 0x0400} /* smallest normal */, {1.0009765625f, 0x3c01}, {1.00048828125f, 0x3c00} /* tie even */,
      {1.00146484375f, 0x3c02} /* tie -> even up */, {0.0f, 0x0000}, {-0.0f, 0x8000}};
  for (size_t i = 0; i < sizeof f16 / sizeof *f16; i++) {
    uint16_t h = samx_f32_to_f16(f16[i].f);
    CHECK(h == f16[i].h, "f16(%g) = 0x%04x, want 0x%04x", f16[i].f, h, f16[i].h);
  }
  for (uint32_t h = 0; h < 0x7c00; h++) {  // every finite positive half survives a round trip
    if (samx_f32_to_f16(samx_f16_to_f32((uint16_t)h)) != h) {
      CHECK(0, "f16 round trip broke at 0x%04x", h);
      break;
    }
  }
  struct { float f; uint16_t b; } bf[] = {{1.0f, 0x3f80}, {-2.5f, 0xc020}, {1.00390625f, 0x3f80} /* tie even */,
                                         {1.01171875f, 0x3f82} /* tie -> even up */, {3.0e38f, 0x7f62}};
  for (size_t i = 0; i < sizeof bf / sizeof *bf; i++) {
    uint16_t b = samx_f32_to_bf16(bf[i].f);
    CHECK(b == bf[i].b, "bf16(%g) = 0x%04x, want 0x%04x", bf[i].f, b, bf[i].b);
  }
  CHECK(samx_bf16_to_f32(0x3f80) == 1.0f, "bf16 0x3f80 != 1");
  float nan = NAN;
  CHECK((samx_f32_to_bf16(nan) & 0x7fff) > 0x7f80, "bf16(NaN) is not NaN");
  CHECK((samx_f32_to_f16(nan) & 0x7fff) > 0x7c00, "f16(NaN) is not NaN");
}

static void test_tensor_io(void) {
  SamxArena a;
  samx_arena_init(&a, "test", samx_cpu(), 1 << 20, 1 << 14);
  SamxTensor *t = samx_tensor_new(&a, SAMX_BF16, SHAPE(2, 3, 4));
  CHECK(t->numel == 24 && samx_nbytes(t) == 48 && t->ndim == 3, "bf16 tensor sizes");
  CHECK(((uintptr_t)t->data % SAMX_ARENA_ALIGN) == 0, "arena alignment");
  float in[24], out[24];
  for (int i = 0; i < 24; i++) in[i] = (float)i * 0.5f - 3;  // exactly representable in bf16
  uint32_t v0 = samx_version(t);
  samx_tensor_write_f32(t, in);
  CHECK(samx_version(t) == v0 + 1, "write did not bump the version");
  samx_tensor_read_f32(t, out);
  CHECK(memcmp(in, out, sizeof in) == 0, "bf16 write/read round trip");
  CHECK(samx_dim(t, -1) == 4 && samx_dim(t, 0) == 2, "samx_dim");
  char s[64];
  CHECK(strcmp(samx_shape_str(samx_shape_of(t), s, sizeof s), "[2, 3, 4]") == 0, "shape string %s", s);
  size_t used = a.used;
  samx_arena_reset(&a);
  CHECK(a.used == 0 && a.peak >= used, "arena reset keeps the peak");
  samx_arena_free(&a);
}

// The bytes-by-dtype accounting: live bytes per tag follow allocations and rewinds (LIFO), the split
// at the high-water mark is kept, a reset empties the live counts and keeps the peak's split.
static void test_arena_accounting(void) {
  SamxArena a;
  samx_arena_init(&a, "test", samx_cpu(), 1 << 20, 1 << 20);
  samx_tensor_new(&a, SAMX_F32, SHAPE(100));  // 400 bytes
  size_t mark = a.used;
  samx_tensor_new(&a, SAMX_BF16, SHAPE(300));  // 600 bytes, from the next 256-byte boundary
  samx_arena_alloc(&a, 1000);                  // raw
  CHECK(a.live[SAMX_F32] == 400 && a.live[SAMX_BF16] == 600 && a.live[SAMX_ARENA_RAW] == 1000,
        "live bytes by tag: F32 %zu, BF16 %zu, raw %zu", a.live[SAMX_F32], a.live[SAMX_BF16], a.live[SAMX_ARENA_RAW]);
  const size_t peak = a.used;
  samx_arena_rewind(&a, mark);
  CHECK(a.used == mark && a.live[SAMX_BF16] == 0 && a.live[SAMX_ARENA_RAW] == 0 && a.live[SAMX_F32] == 400,
        "rewind hands back what was carved above the mark");
  samx_tensor_new(&a, SAMX_I32, SHAPE(10));  // below the old peak: the peak's split stays
  CHECK(a.peak == peak && a.at_peak[SAMX_BF16] == 600 && a.at_peak[SAMX_ARENA_RAW] == 1000 && a.at_peak[SAMX_I32] == 0,
        "split at the peak: BF16 %zu, raw %zu, I32 %zu", a.at_peak[SAMX_BF16], a.at_peak[SAMX_ARENA_RAW],
        a.at_peak[SAMX_I32]);
  samx_arena_reset(&a);
  CHECK(a.used == 0 && a.live[SAMX_F32] == 0 && a.live[SAMX_I32] == 0 && a.peak == peak && a.at_peak[SAMX_F32] == 400,
        "reset empties the live counts, keeps the peak");
  for (int i = 0; i < 1000; i++) samx_tensor_new(&a, SAMX_BF16, SHAPE(1));  // the log grows past its first block
  CHECK(a.live[SAMX_BF16] == 2000 && a.log_len == 1000, "1000 carvings logged (%zu)", a.log_len);
  samx_arena_rewind(&a, 0);
  CHECK(a.live[SAMX_BF16] == 0 && a.log_len == 0, "rewound to the start");
  samx_arena_free(&a);
}

static void test_device_parse(void) {
  SamxDevice d;
  CHECK(samx_device_parse("cpu", &d) == 0 && d.type == SAMX_CPU, "cpu");
  CHECK(samx_device_parse("auto", &d) == 0, "auto always resolves");
  if (samx_cuda_device_count() == 0) {
    CHECK(d.type == SAMX_CPU, "auto without a GPU is the CPU");
    CHECK(samx_device_parse("cuda:0", &d) == -1, "cuda:0 without a GPU is an error");
  }
  CHECK(samx_device_parse("cuda:x", &d) == -1 && strstr(samx_last_error(), "cuda:N"), "malformed index");
  CHECK(samx_device_parse("tpu", &d) == -1, "unknown device");
}

int main(void) {
  test_half_conversions();
  test_tensor_io();
  test_arena_accounting();
  test_device_parse();
  return samx_test_summary();
}
