/* Backward of AVERAGE_POOL_2D / MAX_POOL_2D: scatter each output gradient into an int32
 * accumulator per input element, then one power-of-two requantization. */
#include "tt_pooling_backward.h"

#include "tt_gradient.h"

/* Clipped window of output (oy, ox): input rows [y0, y1), columns [x0, x1). */
typedef struct {
  int32_t y0, y1, x0, x1;
} tt_pool_bwd_window;

static tt_pool_bwd_window tt_pool_bwd_clip(const tt_pool_params *p, const tt_dims *in,
                                           int32_t oy, int32_t ox) {
  tt_pool_bwd_window win;
  const int32_t in_y = oy * p->stride_h - p->pad_h;
  const int32_t in_x = ox * p->stride_w - p->pad_w;
  win.y0 = in_y < 0 ? 0 : in_y;
  win.x0 = in_x < 0 ? 0 : in_x;
  win.y1 = in_y + p->filter_h < in->h ? in_y + p->filter_h : in->h;
  win.x1 = in_x + p->filter_w < in->w ? in_x + p->filter_w : in->w;
  return win;
}

static int32_t tt_pool_bwd_elements(const tt_dims *d) { return d->n * d->h * d->w * d->c; }

static void tt_pool_bwd_zero(int32_t *acc, int32_t n) {
  int32_t i;
  for (i = 0; i < n; ++i) acc[i] = 0;
}

int32_t tt_average_pool_recip_bits(const tt_pool_params *params) {
  const int32_t windows = ((params->filter_h + params->stride_h - 1) / params->stride_h) *
                          ((params->filter_w + params->stride_w - 1) / params->stride_w);
  int32_t bits = 0;
  while ((windows >> bits) != 0) ++bits;
  return 24 - bits;
}

int32_t tt_average_pool_2d_backward_scratch_size(const tt_dims *input_dims) {
  return tt_pool_bwd_elements(input_dims) * (int32_t)sizeof(int32_t);
}

int32_t tt_max_pool_2d_backward_scratch_size(const tt_dims *input_dims) {
  return tt_pool_bwd_elements(input_dims) * (int32_t)sizeof(int32_t);
}

tt_status tt_average_pool_2d_backward(const tt_pool_params *params, const tt_dims *output_dims,
                                      const int8_t *output_grad, int32_t output_grad_exponent,
                                      const tt_dims *input_dims, int8_t *input_grad,
                                      int32_t *input_grad_exponent, int32_t *scratch) {
  const int32_t depth = input_dims->c;
  const int32_t k = tt_average_pool_recip_bits(params);
  int32_t n, oy, ox, c, y, x;
  if (input_dims->n != output_dims->n || depth != output_dims->c) return TT_ERR_SHAPE;
  if (k < 0) return TT_ERR_UNSUPPORTED; /* 2^24 or more windows over one input */
  tt_pool_bwd_zero(scratch, tt_pool_bwd_elements(input_dims));
  for (n = 0; n < output_dims->n; ++n) {
    int32_t *image = scratch + (ptrdiff_t)n * input_dims->h * input_dims->w * depth;
    for (oy = 0; oy < output_dims->h; ++oy) {
      for (ox = 0; ox < output_dims->w; ++ox) {
        const tt_pool_bwd_window win = tt_pool_bwd_clip(params, input_dims, oy, ox);
        const int32_t count = (win.y1 - win.y0) * (win.x1 - win.x0);
        int32_t recip;
        if (win.y1 <= win.y0 || win.x1 <= win.x0) return TT_ERR_SHAPE;
        recip = (((int32_t)1 << k) + count / 2) / count;
        for (c = 0; c < depth; ++c) {
          const int32_t contrib = *output_grad++ * recip;
          if (contrib == 0) continue;
          for (y = win.y0; y < win.y1; ++y) {
            int32_t *row = image + (ptrdiff_t)y * input_dims->w * depth + c;
            for (x = win.x0; x < win.x1; ++x) row[x * depth] += contrib;
          }
        }
      }
    }
  }
  tt_requantize_pow2(scratch, tt_pool_bwd_elements(input_dims), output_grad_exponent - k,
                     input_grad, input_grad_exponent);
  return TT_OK;
}

tt_status tt_max_pool_2d_backward(const tt_pool_params *params, const tt_dims *output_dims,
                                  const int8_t *output_grad, int32_t output_grad_exponent,
                                  const tt_dims *input_dims, const int8_t *input,
                                  int8_t *input_grad, int32_t *input_grad_exponent,
                                  int32_t *scratch) {
  const int32_t depth = input_dims->c;
  int32_t n, oy, ox, c, y, x;
  if (input_dims->n != output_dims->n || depth != output_dims->c) return TT_ERR_SHAPE;
  tt_pool_bwd_zero(scratch, tt_pool_bwd_elements(input_dims));
  for (n = 0; n < output_dims->n; ++n) {
    const ptrdiff_t image = (ptrdiff_t)n * input_dims->h * input_dims->w * depth;
    for (oy = 0; oy < output_dims->h; ++oy) {
      for (ox = 0; ox < output_dims->w; ++ox) {
        const tt_pool_bwd_window win = tt_pool_bwd_clip(params, input_dims, oy, ox);
        for (c = 0; c < depth; ++c) {
          const int32_t g = *output_grad++;
          ptrdiff_t best_at = -1;
          int32_t best = 0;
          if (g == 0) continue;
          for (y = win.y0; y < win.y1; ++y) {
            for (x = win.x0; x < win.x1; ++x) {
              const ptrdiff_t at = image + ((ptrdiff_t)y * input_dims->w + x) * depth + c;
              if (best_at < 0 || input[at] > best) { /* strict: ties keep the first */
                best = input[at];
                best_at = at;
              }
            }
          }
          if (best_at >= 0) scratch[best_at] += g; /* an empty window has no input */
        }
      }
    }
  }
  tt_requantize_pow2(scratch, tt_pool_bwd_elements(input_dims), output_grad_exponent,
                     input_grad, input_grad_exponent);
  return TT_OK;
}
