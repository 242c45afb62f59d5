/* AVERAGE_POOL_2D / MAX_POOL_2D, int8: TFLite reference_integer_ops pooling arithmetic.
 * The window is clipped to the input, so padding taps never contribute. */
#include "tt_pooling.h"

#include "tt_fixedpoint.h"

/* Clipped window [y0, y1) x [x0, x1) of output (oy, ox), in filter coordinates. */
typedef struct {
  int32_t in_y, in_x, y0, y1, x0, x1;
} tt_pool_window;

static tt_pool_window tt_pool_clip(const tt_pool_params *p, const tt_dims *in, int32_t oy,
                                   int32_t ox) {
  tt_pool_window win;
  win.in_y = oy * p->stride_h - p->pad_h;
  win.in_x = ox * p->stride_w - p->pad_w;
  win.y0 = win.in_y < 0 ? -win.in_y : 0;
  win.x0 = win.in_x < 0 ? -win.in_x : 0;
  win.y1 = in->h - win.in_y < p->filter_h ? in->h - win.in_y : p->filter_h;
  win.x1 = in->w - win.in_x < p->filter_w ? in->w - win.in_x : p->filter_w;
  return win;
}

static int tt_pool_dims_ok(const tt_dims *in, const tt_dims *out) {
  return in->n == out->n && in->c == out->c;
}

tt_status tt_average_pool_2d(const tt_pool_params *params, const tt_dims *input_dims,
                             const int8_t *input, const tt_dims *output_dims, int8_t *output) {
  const int32_t depth = input_dims->c;
  int32_t n, oy, ox, c, fy, fx;
  if (!tt_pool_dims_ok(input_dims, output_dims)) return TT_ERR_SHAPE;
  for (n = 0; n < output_dims->n; ++n) {
    const int8_t *image = input + (ptrdiff_t)n * input_dims->h * input_dims->w * depth;
    for (oy = 0; oy < output_dims->h; ++oy) {
      for (ox = 0; ox < output_dims->w; ++ox) {
        const tt_pool_window win = tt_pool_clip(params, input_dims, oy, ox);
        const int32_t count = (win.y1 - win.y0) * (win.x1 - win.x0);
        if (win.y1 <= win.y0 || win.x1 <= win.x0) return TT_ERR_SHAPE;
        for (c = 0; c < depth; ++c) {
          int32_t acc = 0;
          for (fy = win.y0; fy < win.y1; ++fy) {
            const int8_t *row = image + ((ptrdiff_t)(win.in_y + fy) * input_dims->w) * depth;
            for (fx = win.x0; fx < win.x1; ++fx) acc += row[(win.in_x + fx) * depth + c];
          }
          /* Round half away from zero (C division truncates toward zero). */
          acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          *output++ = (int8_t)tt_clamp(acc, params->activation.min, params->activation.max);
        }
      }
    }
  }
  return TT_OK;
}

tt_status tt_max_pool_2d(const tt_pool_params *params, const tt_dims *input_dims,
                         const int8_t *input, const tt_dims *output_dims, int8_t *output) {
  const int32_t depth = input_dims->c;
  int32_t n, oy, ox, c, fy, fx;
  if (!tt_pool_dims_ok(input_dims, output_dims)) return TT_ERR_SHAPE;
  for (n = 0; n < output_dims->n; ++n) {
    const int8_t *image = input + (ptrdiff_t)n * input_dims->h * input_dims->w * depth;
    for (oy = 0; oy < output_dims->h; ++oy) {
      for (ox = 0; ox < output_dims->w; ++ox) {
        const tt_pool_window win = tt_pool_clip(params, input_dims, oy, ox);
        for (c = 0; c < depth; ++c) {
          int32_t max = -128; /* the reference starts from int8's lowest value */
          for (fy = win.y0; fy < win.y1; ++fy) {
            const int8_t *row = image + ((ptrdiff_t)(win.in_y + fy) * input_dims->w) * depth;
            for (fx = win.x0; fx < win.x1; ++fx) {
              const int32_t v = row[(win.in_x + fx) * depth + c];
              if (v > max) max = v;
            }
          }
          *output++ = (int8_t)tt_clamp(max, params->activation.min, params->activation.max);
        }
      }
    }
  }
  return TT_OK;
}
