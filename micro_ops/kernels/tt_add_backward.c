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

/* Sum the masked output gradient over the broadcast dims of `in`, then requantize. */
static tt_status tt_add_bwd_reduce(const tt_dims *output_dims, const int8_t *output_grad,
                                   int32_t e, const uint8_t *mask, const tt_dims *in,
                                   int8_t *grad, int32_t *grad_exponent, int32_t *scratch) {
  const int32_t in_d[4] = {in->n, in->h, in->w, in->c};
  const int32_t out_d[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
  int32_t stride[4], o[4], d, i = 0;
  for (d = 0; d < 4; ++d) {
    if (in_d[d] != out_d[d] && in_d[d] != 1) return TT_ERR_SHAPE;
  }
  if ((long)tt_add_bwd_elements(output_dims) > TT_ADD_BACKWARD_MAX_BROADCAST_ELEMENTS) {
    return TT_ERR_SHAPE;
  }
  stride[3] = 1;
  for (d = 2; d >= 0; --d) stride[d] = stride[d + 1] * in_d[d + 1];
  for (d = 0; d < 4; ++d) {
    if (in_d[d] != out_d[d]) stride[d] = 0; /* broadcast dim: all outputs add to one input */
  }
  for (d = 0; d < tt_add_bwd_elements(in); ++d) scratch[d] = 0;
  for (o[0] = 0; o[0] < out_d[0]; ++o[0]) {
    for (o[1] = 0; o[1] < out_d[1]; ++o[1]) {
      for (o[2] = 0; o[2] < out_d[2]; ++o[2]) {
        int32_t *acc = scratch + (ptrdiff_t)o[0] * stride[0] + (ptrdiff_t)o[1] * stride[1] +
                       (ptrdiff_t)o[2] * stride[2];
        for (o[3] = 0; o[3] < out_d[3]; ++o[3], ++i) {
          if (tt_add_bwd_keep(mask, i)) acc[o[3] * stride[3]] += output_grad[i];
        }
      }
    }
  }
  tt_requantize_pow2(scratch, tt_add_bwd_elements(in), e, grad, grad_exponent);
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
  int32_t bytes = 0;
  if (!tt_add_bwd_same(input1_dims, output_dims)) bytes = tt_add_bwd_elements(input1_dims);
  if (!tt_add_bwd_same(input2_dims, output_dims) && tt_add_bwd_elements(input2_dims) > bytes) {
    bytes = tt_add_bwd_elements(input2_dims);
  }
  return bytes * (int32_t)sizeof(int32_t);
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
