/* Backward of AVERAGE_POOL_2D / MAX_POOL_2D in gather form: each input pixel sums, channel by
 * channel, what the windows covering it send it (int32, one pixel's channels in scratch), and
 * streams the sums to int8 through tt_pow2_stream, so no accumulator per input element. */
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

/* Outputs [*lo, *hi] along one axis whose window covers input coordinate i: output o covers
 * it when i + pad - filter < o * stride <= i + pad. */
static void tt_pool_bwd_cover(int32_t i, int32_t pad, int32_t filter, int32_t stride,
                              int32_t out_size, int32_t *lo, int32_t *hi) {
  const int32_t t = i + pad - filter;
  *lo = t < 0 ? 0 : t / stride + 1;
  *hi = (i + pad) / stride < out_size - 1 ? (i + pad) / stride : out_size - 1;
}

/* No window lies entirely in the padding (checked whenever the output is not empty). */
static int tt_pool_bwd_windows_ok(const tt_pool_params *p, const tt_dims *out,
                                  const tt_dims *in) {
  int32_t o;
  if (out->n == 0 || out->h == 0 || out->w == 0) return 1;
  for (o = 0; o < out->h; ++o) {
    const tt_pool_bwd_window win = tt_pool_bwd_clip(p, in, o, 0);
    if (win.y1 <= win.y0) return 0;
  }
  for (o = 0; o < out->w; ++o) {
    const tt_pool_bwd_window win = tt_pool_bwd_clip(p, in, 0, o);
    if (win.x1 <= win.x0) return 0;
  }
  return 1;
}

int32_t tt_average_pool_recip_bits(const tt_pool_params *params) {
  const int32_t windows = ((params->filter_h + params->stride_h - 1) / params->stride_h) *
                          ((params->filter_w + params->stride_w - 1) / params->stride_w);
  int32_t bits = 0;
  while ((windows >> bits) != 0) ++bits;
  return 24 - bits;
}

int32_t tt_average_pool_2d_backward_scratch_size(const tt_dims *input_dims) {
  return input_dims->c * (int32_t)sizeof(int32_t) +
         tt_pow2_stream_scratch_size(input_dims->n * input_dims->h * input_dims->w *
                                     input_dims->c);
}

int32_t tt_max_pool_2d_backward_scratch_size(const tt_dims *input_dims) {
  return tt_average_pool_2d_backward_scratch_size(input_dims);
}

tt_status tt_average_pool_2d_backward(const tt_pool_params *params, const tt_dims *output_dims,
                                      const int8_t *output_grad, int32_t output_grad_exponent,
                                      const tt_dims *input_dims, int8_t *input_grad,
                                      int32_t *input_grad_exponent, int32_t *scratch) {
  const int32_t depth = input_dims->c, out_h = output_dims->h, out_w = output_dims->w;
  const int32_t k = tt_average_pool_recip_bits(params);
  int32_t *acc = scratch; /* one input pixel's sums */
  int32_t n, y, x, oy, ox, oy0, oy1, ox0, ox1, c;
  tt_pow2_stream st;
  if (input_dims->n != output_dims->n || depth != output_dims->c) return TT_ERR_SHAPE;
  if (k < 0) return TT_ERR_UNSUPPORTED; /* 2^24 or more windows over one input */
  if (!tt_pool_bwd_windows_ok(params, output_dims, input_dims)) return TT_ERR_SHAPE;
  tt_pow2_stream_init(&st, input_grad, scratch + depth);
  for (n = 0; n < input_dims->n; ++n) {
    for (y = 0; y < input_dims->h; ++y) {
      tt_pool_bwd_cover(y, params->pad_h, params->filter_h, params->stride_h, out_h, &oy0, &oy1);
      for (x = 0; x < input_dims->w; ++x) {
        tt_pool_bwd_cover(x, params->pad_w, params->filter_w, params->stride_w, out_w, &ox0,
                          &ox1);
        for (c = 0; c < depth; ++c) acc[c] = 0;
        for (oy = oy0; oy <= oy1; ++oy) {
          for (ox = ox0; ox <= ox1; ++ox) {
            const tt_pool_bwd_window win = tt_pool_bwd_clip(params, input_dims, oy, ox);
            const int32_t count = (win.y1 - win.y0) * (win.x1 - win.x0);
            const int32_t recip = (((int32_t)1 << k) + count / 2) / count;
            const int8_t *g = output_grad + (((ptrdiff_t)n * out_h + oy) * out_w + ox) * depth;
            for (c = 0; c < depth; ++c) acc[c] += g[c] * recip;
          }
        }
        for (c = 0; c < depth; ++c) tt_pow2_stream_push(&st, acc[c]);
      }
    }
  }
  tt_pow2_stream_finish(&st, output_grad_exponent - k, input_grad_exponent);
  return TT_OK;
}

/* Whether the first maximum (row-major) of channel c of window win is the pixel (y, x). */
static int tt_max_pool_bwd_first_max_at(const int8_t *image, const tt_dims *in,
                                        tt_pool_bwd_window win, int32_t y, int32_t x,
                                        int32_t c) {
  const int8_t *col = image + c;
  const int32_t v = col[((ptrdiff_t)y * in->w + x) * in->c];
  int32_t yy, xx;
  for (yy = win.y0; yy < win.y1; ++yy) {
    for (xx = win.x0; xx < win.x1; ++xx) {
      const int32_t u = col[((ptrdiff_t)yy * in->w + xx) * in->c];
      const int before = yy < y || (yy == y && xx < x);
      if (u > v || (before && u == v)) return 0; /* ties keep the first */
    }
  }
  return 1;
}

tt_status tt_max_pool_2d_backward(const tt_pool_params *params, const tt_dims *output_dims,
                                  const int8_t *output_grad, int32_t output_grad_exponent,
                                  const tt_dims *input_dims, const int8_t *input,
                                  int8_t *input_grad, int32_t *input_grad_exponent,
                                  int32_t *scratch) {
  const int32_t depth = input_dims->c, out_h = output_dims->h, out_w = output_dims->w;
  int32_t *acc = scratch; /* one input pixel's sums */
  int32_t n, y, x, oy, ox, oy0, oy1, ox0, ox1, c;
  tt_pow2_stream st;
  if (input_dims->n != output_dims->n || depth != output_dims->c) return TT_ERR_SHAPE;
  tt_pow2_stream_init(&st, input_grad, scratch + depth);
  for (n = 0; n < input_dims->n; ++n) {
    const int8_t *image = input + (ptrdiff_t)n * input_dims->h * input_dims->w * depth;
    for (y = 0; y < input_dims->h; ++y) {
      tt_pool_bwd_cover(y, params->pad_h, params->filter_h, params->stride_h, out_h, &oy0, &oy1);
      for (x = 0; x < input_dims->w; ++x) {
        tt_pool_bwd_cover(x, params->pad_w, params->filter_w, params->stride_w, out_w, &ox0,
                          &ox1);
        for (c = 0; c < depth; ++c) acc[c] = 0;
        for (oy = oy0; oy <= oy1; ++oy) {
          for (ox = ox0; ox <= ox1; ++ox) {
            const tt_pool_bwd_window win = tt_pool_bwd_clip(params, input_dims, oy, ox);
            const int8_t *g = output_grad + (((ptrdiff_t)n * out_h + oy) * out_w + ox) * depth;
            for (c = 0; c < depth; ++c) {
              if (g[c] != 0 && tt_max_pool_bwd_first_max_at(image, input_dims, win, y, x, c)) {
                acc[c] += g[c];
              }
            }
          }
        }
        for (c = 0; c < depth; ++c) tt_pow2_stream_push(&st, acc[c]);
      }
    }
  }
  tt_pow2_stream_finish(&st, output_grad_exponent, input_grad_exponent);
  return TT_OK;
}
