// defines: samx_conv2d, samx_conv_transpose2d (groups 1, dilation 1, torch.nn.functional semantics),
// samx_conv_transpose2d_act (the same with its activation fused, for inference; _nhwc on a
// channels-last x),
// samx_avg_pool2_ceil, samx_resize_bilinear (F.interpolate(mode="bilinear", align_corners=False), no antialiasing).
#ifndef SAMX_OPS_CONV_H
#define SAMX_OPS_CONV_H

#include <stdint.h>

#include "../kernels/activation.h"
#include "tape.h"

// x [B, Cin, H, W], w [Cout, Cin, kh, kw], b [Cout] or NULL -> [B, Cout, Ho, Wo] with
// Ho = (H + 2 pad - kh) / stride + 1 (likewise Wo).
SamxTensor *samx_conv2d(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride, int pad);
// x [B, Cin, H, W], w [Cin, Cout, kh, kw], b [Cout] or NULL -> [B, Cout, Ho, Wo] with
// Ho = (H - 1) stride - 2 pad + kh (no output padding): the adjoint of conv2d.
SamxTensor *samx_conv_transpose2d(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride, int pad);
// Inference only (no backward): act(conv_transpose2d(x, w, b)) with act a SamxAct or -1 for none, x F32
// or BF16, y in out (F32 or BF16), rounded once from fp32 (kernels/conv.h samx_conv_bias_act). On CUDA in
// bf16 a kernel the size of its stride (SAM's upscaling) makes it one implicit GEMM with the bias and act
// in its store: neither the f32 output nor the activation's copy is written.
SamxTensor *samx_conv_transpose2d_act(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride, int pad,
                                      int act, SamxDType out);
// The same on a channels-last x [B, H, W, Cin] (SAM's decoder image stream [P, h*w, C] as it lies, no
// permute): on CUDA in bf16 the implicit GEMM reads it through its strides; otherwise a scratch copy
// permuted to [B, Cin, H, W]. Either way the results are samx_conv_transpose2d_act's on the permuted x.
SamxTensor *samx_conv_transpose2d_act_nhwc(SamxCtx *ctx, SamxTensor *x, SamxTensor *w, SamxTensor *b, int stride,
                                           int pad, int act, SamxDType out);
// On CUDA in bf16, convolutions run as implicit GEMMs on tensor cores (no column buffer); 0 makes
// them im2col + cuBLASLt instead, as in fp32 (for benchmarks that compare the two; default 1).
void samx_conv_set_implicit(int on);
// x [B, C, H, W] -> [B, C, out_h, out_w].
SamxTensor *samx_resize_bilinear(SamxCtx *ctx, SamxTensor *x, int64_t out_h, int64_t out_w);
// F.avg_pool2d(x, 2, 2, ceil_mode=True) of x [B, C, H, W] -> [B, C, ceil(H/2), ceil(W/2)]: a partial
// last row / column window is the mean of its elements inside x (kernels/conv.h samx_avg_pool2_at).
SamxTensor *samx_avg_pool2_ceil(SamxCtx *ctx, SamxTensor *x);

#endif
