// All engine ops. Each family has its header (forward API), an implementation in engine/ops_<family>.c
// (shape checks, dispatch, tape record, backward), its kernels in kernels/<family>.h (shared
// __host__ __device__ math and launcher declarations), kernels/cpu/<family>.c and kernels/cuda/<family>.cu,
// and its tests in tests/engine/test_ops_<family>.c.
//
// Conventions: ops take and return f32 tensors unless stated; outputs are fresh activations;
// backward ADDS into input gradients.
#ifndef SAMX_OPS_H
#define SAMX_OPS_H

#include "ops_activation.h"   // defines: samx_relu, samx_gelu, samx_sigmoid
#include "ops_attention.h"    // defines: multi-head attention with decomposed relative-position bias
#include "ops_conv.h"         // defines: conv2d, conv_transpose2d, bilinear resize
#include "ops_elementwise.h"  // defines: add/sub/mul with broadcasting, scale, softmax, sum/mean, cast
#include "ops_fewshot.h"      // defines: few-shot target embeddings (masked averages over label regions)
#include "ops_linalg.h"       // defines: matmul, linear, lora_linear, embedding
#include "ops_loss.h"         // defines: soft dice, bce_with_logits, sigmoid focal, mse
#include "ops_norm.h"         // defines: layernorm, layernorm2d
#include "ops_lora.h"         // defines: LoRA on the q/v slices of a fused qkv, merging into qkv
#include "ops_xent.h"         // defines: cross_entropy (class-index targets), sqrt, l2_norm
#include "ops_random.h"       // defines: Philox counter RNG, gaussian reparameterised sampling (drawn or given eps)
#include "ops_shape.h"        // defines: reshape, permute, concat, slice, window partition/unpartition

#endif
