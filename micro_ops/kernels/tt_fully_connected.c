/* FULLY_CONNECTED int8 kernel. Same bits as TFLite's FullyConnected (per-tensor) and
 * FullyConnectedPerChannel (weights symmetric: no filter offset in either). */
#include "tt_fully_connected.h"

#include "tt_fixedpoint.h"

tt_status tt_fully_connected(const tt_fully_connected_params *params,
                             const tt_per_channel_quant *quant, const tt_dims *input_dims,
                             const int8_t *input, const tt_dims *filter_dims,
                             const int8_t *filter, const int32_t *bias,
                             const tt_dims *output_dims, int8_t *output) {
  if (!filter_dims) return TT_ERR_ARG;
  const tt_split_filter whole = {filter, NULL, filter_dims->c};
  return tt_fully_connected_split(params, quant, input_dims, input, filter_dims, &whole, bias,
                                  output_dims, output);
}

tt_status tt_fully_connected_split(const tt_fully_connected_params *params,
                                   const tt_per_channel_quant *quant, const tt_dims *input_dims,
                                   const int8_t *input, const tt_dims *filter_dims,
                                   const tt_split_filter *filter, const int32_t *bias,
                                   const tt_dims *output_dims, int8_t *output) {
  if (!params || !quant || !input_dims || !input || !filter_dims || !filter || !filter->slice ||
      !output_dims || !output) {
    return TT_ERR_ARG;
  }
  const int32_t batches = output_dims->n, units = output_dims->c, depth = filter_dims->c;
  if (input_dims->n != batches || input_dims->c != depth || filter_dims->n != units) {
    return TT_ERR_SHAPE;
  }
  const int32_t split = filter->split, rest = depth - split;
  if (split < 1 || split > depth || (rest > 0 && !filter->rest)) return TT_ERR_ARG;
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t *x = input + (size_t)b * depth;
    for (int32_t u = 0; u < units; ++u) {
      const int8_t *w = filter->slice + (size_t)u * split;
      int32_t acc = 0;
      for (int32_t d = 0; d < split; ++d) {
        acc += (int32_t)w[d] * ((int32_t)x[d] + params->input_offset);
      }
      if (rest > 0) {
        const int8_t *wr = filter->rest + (size_t)u * rest;
        for (int32_t d = 0; d < rest; ++d) {
          acc += (int32_t)wr[d] * ((int32_t)x[split + d] + params->input_offset);
        }
      }
      if (bias) acc += bias[u];
      const int32_t q = params->per_channel ? u : 0;
      output[(size_t)b * units + u] = tt_requantize_output(
          acc, quant->multiplier[q], quant->shift[q], params->output_offset, params->activation);
    }
  }
  return TT_OK;
}

void tt_fully_connected_multiplier(float input_scale, float filter_scale, float output_scale,
                                   int32_t *multiplier, int32_t *shift) {
  const double real = (double)input_scale * (double)filter_scale / (double)output_scale;
  tt_quantize_multiplier(real, multiplier, shift);
}
