/* Backward of ADD. Broadcast inputs are done first, so a same-shape input's gradient may
 * alias output_grad (masking in place is idempotent, so the order does not matter either). */
#include "tt_add_backward.h"

#include "tt_gradient.h"

static int32_t tt_add_bwd_elements(const tt_dims *d) { return d->n * d->h * d->w * d->c; }

static int tt_add_bwd_same(const tt_dims *a, const tt_dims *b) {
  return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

static int32_t tt_add_bwd_keep(const uint8_t *mask, int32_t i) {
  return mask == NULL || ((mask[i >> 3] >> (i & 7)) & 1u);
}

/* Each element of the broadcast input `in`, in order, sums the masked output gradient over
 * the broadcast dims (gather form) and streams the sum to int8 through tt_pow2_stream. */
static tt_status tt_add_bwd_reduce(const tt_dims *output_dims, const int8_t *output_grad,
                                   int32_t e, const uint8_t *mask, const tt_dims *in,
                                   int8_t *grad, int32_t *grad_exponent, int32_t *scratch) {
  const int32_t in_d[4] = {in->n, in->h, in->w, in->c};
  const int32_t out_d[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
  int32_t stride[4], span[4], i[4], r[4], d;
  int32_t keep_stride[4], sum_stride[4]; /* output strides of the kept / summed dims, else 0 */
  tt_pow2_stream st;
  for (d = 0; d < 4; ++d) {
    if (in_d[d] != out_d[d] && in_d[d] != 1) return TT_ERR_SHAPE;
  }
  if ((long)tt_add_bwd_elements(output_dims) > TT_ADD_BACKWARD_MAX_BROADCAST_ELEMENTS) {
    return TT_ERR_SHAPE;
  }
  stride[3] = 1;
  for (d = 2; d >= 0; --d) stride[d] = stride[d + 1] * out_d[d + 1];
  for (d = 0; d < 4; ++d) {
    const int summed = in_d[d] != out_d[d];
    span[d] = summed ? out_d[d] : 1;
    keep_stride[d] = summed ? 0 : stride[d];
    sum_stride[d] = summed ? stride[d] : 0;
  }
  tt_pow2_stream_init(&st, grad, scratch);
  for (i[0] = 0; i[0] < in_d[0]; ++i[0]) {
    for (i[1] = 0; i[1] < in_d[1]; ++i[1]) {
      for (i[2] = 0; i[2] < in_d[2]; ++i[2]) {
        for (i[3] = 0; i[3] < in_d[3]; ++i[3]) {
          const int32_t base = i[0] * keep_stride[0] + i[1] * keep_stride[1] +
                               i[2] * keep_stride[2] + i[3] * keep_stride[3];
          int32_t acc = 0; /* |acc| <= 127 * 2^24 */
          for (r[0] = 0; r[0] < span[0]; ++r[0]) {
            for (r[1] = 0; r[1] < span[1]; ++r[1]) {
              for (r[2] = 0; r[2] < span[2]; ++r[2]) {
                const int32_t row =
                    base + r[0] * sum_stride[0] + r[1] * sum_stride[1] + r[2] * sum_stride[2];
                for (r[3] = 0; r[3] < span[3]; ++r[3]) {
                  const int32_t o = row + r[3] * sum_stride[3];
                  if (tt_add_bwd_keep(mask, o)) acc += output_grad[o];
                }
              }
            }
          }
          tt_pow2_stream_push(&st, acc);
        }
      }
    }
  }
  tt_pow2_stream_finish(&st, e, grad_exponent);
  return TT_OK;
}

static void tt_add_bwd_copy(const tt_dims *output_dims, const int8_t *output_grad, int32_t e,
                            const uint8_t *mask, int8_t *grad, int32_t *grad_exponent) {
  const int32_t n = tt_add_bwd_elements(output_dims);
  int32_t i;
  for (i = 0; i < n; ++i) grad[i] = tt_add_bwd_keep(mask, i) ? output_grad[i] : 0;
  *grad_exponent = e;
}

int32_t tt_add_backward_scratch_size(const tt_dims *input1_dims, const tt_dims *input2_dims,
                                     const tt_dims *output_dims) {
  int32_t elements = 0;
  if (!tt_add_bwd_same(input1_dims, output_dims)) elements = tt_add_bwd_elements(input1_dims);
  if (!tt_add_bwd_same(input2_dims, output_dims) && tt_add_bwd_elements(input2_dims) > elements) {
    elements = tt_add_bwd_elements(input2_dims);
  }
  return tt_pow2_stream_scratch_size(elements);
}

tt_status tt_add_backward(const tt_dims *output_dims, const int8_t *output_grad,
                          int32_t output_grad_exponent, const uint8_t *output_mask,
                          const tt_dims *input1_dims, int8_t *input1_grad,
                          int32_t *input1_grad_exponent, const tt_dims *input2_dims,
                          int8_t *input2_grad, int32_t *input2_grad_exponent, int32_t *scratch) {
  const tt_dims *dims[2] = {input1_dims, input2_dims};
  int8_t *grads[2] = {input1_grad, input2_grad};
  int32_t *exponents[2] = {input1_grad_exponent, input2_grad_exponent};
  int pass, k;
  for (pass = 0; pass < 2; ++pass) { /* broadcast inputs first, then same-shape copies */
    for (k = 0; k < 2; ++k) {
      const int same = tt_add_bwd_same(dims[k], output_dims);
      if (grads[k] == NULL || same != pass) continue;
      if (same) {
        tt_add_bwd_copy(output_dims, output_grad, output_grad_exponent, output_mask, grads[k],
                        exponents[k]);
      } else {
        const tt_status status =
            tt_add_bwd_reduce(output_dims, output_grad, output_grad_exponent, output_mask,
                              dims[k], grads[k], exponents[k], scratch);
        if (status != TT_OK) return status;
      }
    }
  }
  return TT_OK;
}
