/* FUSED_CHAIN: a chain of int8 convolutions (CONV_2D / DEPTHWISE_CONV_2D) run row by row.
 *
 * Each stage reads only the previous stage's output. Output rows are produced in order; a
 * stage keeps only the rows of its output the next stage's window still reads (line buffers
 * in the scratch), so no intermediate map is ever whole. The output may overlap the input:
 * a row is written only once the inputs it needs are in the line buffers, and only if it
 * clobbers no input row the schedule still reads (else TT_ERR_ARG, before the write). Same bits as the stages run
 * one by one (each row is the conv kernels' own arithmetic on a window of rows).
 * Numpy twin: tflm_train/kernels/fused_chain.py (fused_chain, fused_chain_scratch_size,
 * fused_chain_in_place). */
#ifndef TT_FUSED_CHAIN_H
#define TT_FUSED_CHAIN_H

#include "tt_common.h"
#include "tt_conv_2d.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_FUSED_CHAIN_MAX_STAGES 5 /* 1 + 4 * 5 inputs + 2 outputs fit the engine's 24 views per op */

enum { TT_FUSED_CONV = 0, TT_FUSED_DEPTHWISE = 1 };

typedef struct {
  int32_t kind;              /* TT_FUSED_CONV or TT_FUSED_DEPTHWISE */
  tt_conv_2d_params params;  /* offsets, strides, dilations, leading padding, clamp */
  int32_t depth_multiplier;  /* depthwise only */
  tt_per_channel_quant quant;
  tt_dims filter_dims;       /* conv [c_out, kh, kw, c_in]; depthwise [1, kh, kw, c_out] */
  const int8_t *filter;
  const int32_t *bias;       /* NULL if none */
  tt_dims output_dims;       /* [1, h, w, c] */
} tt_fused_stage;

typedef struct {
  int32_t num_stages;
  tt_fused_stage stage[TT_FUSED_CHAIN_MAX_STAGES];
} tt_fused_chain_params;

/* TT_OK if the stages are well formed for this input: strides and dilations >= 1, padding
 * >= 0, and every output row and column reads at least one input row and column. */
tt_status tt_fused_chain_validate(const tt_fused_chain_params *params, const tt_dims *input_dims);

/* Bytes of scratch: stage k < n-1 keeps (dilated kernel height of stage k+1) rows of its
 * output, each part 4-byte aligned; a one-stage chain needs one output row instead. */
int32_t tt_fused_chain_scratch_size(const tt_fused_chain_params *params);

/* 1 if the output may start at the input's address (the row schedule never writes over an
 * input row it still reads), else 0. */
int tt_fused_chain_in_place(const tt_fused_chain_params *params, const tt_dims *input_dims);

/* input [1, H, W, C] → output [1, h, w, c] of the last stage. The geometry must give every
 * output row and column at least one input tap (checked: TT_ERR_SHAPE). */
tt_status tt_fused_chain(const tt_fused_chain_params *params, const tt_dims *input_dims,
                         const int8_t *input, const tt_dims *output_dims, int8_t *output,
                         int8_t *scratch);

#ifdef __cplusplus
}
#endif
#endif /* TT_FUSED_CHAIN_H */
