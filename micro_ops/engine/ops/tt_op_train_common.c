/* Helpers of the training ops' glue, and the shared glue of the three MAC gradient ops. */
#include "tt_op_train_common.h"

#include <string.h>

#include "tt_conv_2d_backward.h"
#include "tt_depthwise_conv_2d_backward.h"
#include "tt_fully_connected_backward.h"
#include "tt_mask.h"

tt_status tt_train_opt(tt_op_ctx *ctx, const char *key, int32_t *out, const char *message) {
  int r = tt_op_custom_find_i32(ctx, key, out);
  if (r == 0) return tt_op_fail(ctx, TT_ERR_MODEL, message);
  return r > 0 ? TT_OK : TT_ERR_MODEL; /* a bad value is reported by the engine */
}

tt_status tt_train_input(tt_op_ctx *ctx, int32_t i, int32_t type, const char *message,
                         tt_tensor **out) {
  *out = tt_op_input(ctx, i);
  if (*out == NULL || (*out)->type != type) return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, message);
  return TT_OK;
}

int tt_train_is_exp(const tt_tensor *t) {
  return t != NULL && t->type == TT_TYPE_INT32 && tt_tensor_elements(t) == 1;
}

tt_status tt_train_scratch_output(tt_op_ctx *ctx, int32_t k, int32_t type, int64_t need) {
  const tt_tensor *t = k < tt_op_num_outputs(ctx) ? tt_op_output(ctx, k) : NULL;
  if (t == NULL)
    return tt_op_fail(ctx, TT_ERR_MODEL, "the scratch output is missing (the training compiler "
                      "plans every scratch as an op output; recompile the model)");
  if (t->type != type || (int64_t)t->bytes < need)
    return tt_op_fail(ctx, TT_ERR_MODEL, "the scratch output has the wrong type or is smaller "
                      "than the kernel's *_scratch_size");
  return TT_OK;
}

void tt_train_no_gradient(tt_op_ctx *ctx) {
  for (int32_t k = 0; k < tt_op_num_outputs(ctx); ++k) {
    tt_tensor *t = tt_op_output(ctx, k);
    if (t->data == NULL) continue;
    if (t->type == TT_TYPE_INT32) {
      int32_t *p = (int32_t *)t->data;
      for (int64_t i = 0, n = tt_tensor_elements(t); i < n; ++i) p[i] = TT_GRAD_NONE;
    } else {
      memset(t->data, 0, t->bytes);
    }
  }
}

/* ---- TT_CONV_2D_GRAD / TT_DEPTHWISE_CONV_2D_GRAD / TT_FULLY_CONNECTED_GRAD ---- */

enum {
  IN_GRAD = 0, IN_GRAD_EXP, IN_MASK, IN_Y, IN_WEIGHTS, IN_BIAS, IN_SAVED_X, IN_W_MULT, IN_W_SHIFT,
  IN_B_MULT, IN_B_SHIFT, IN_R, IN_STATE, IN_W_VELOCITY, IN_B_VELOCITY, MAC_GRAD_INPUTS,
  /* optional 16th input: the frozen rest of a split filter, whose `weights` are then the
   * trainable slice only (the forward op is TT_CONV_2D & co) */
  IN_W_REST = MAC_GRAD_INPUTS
};

/* The op's constants: integers from its custom options, re-read in each eval
 * (mac_grad_constants) rather than kept in the arena; the op's persistent data is its kind.
 * Dims are re-read from the tensors, the per-channel constants in place from the model. */
typedef struct {
  union {
    tt_conv_2d_params conv;
    tt_depthwise_conv_2d_params dw;
    tt_fully_connected_params fc;
  } p;
  int32_t s_e, p_shift;  /* backward-input constants */
  int16_t momentum_q15;  /* 0: plain SGD; < 2^15 */
  int8_t kind;
  uint8_t update_weights, update_bias;
} mac_grad_data;

/* NHWC view; FC tensors [batches, depth] become n = batches, c = depth. */
static tt_dims mac_dims(int32_t kind, const tt_tensor *t) {
  if (kind != TT_TRAIN_FULLY_CONNECTED) return tt_tensor_dims4(t);
  tt_dims d = {1, 1, 1, t->rank > 0 ? t->dims[t->rank - 1] : 1};
  d.n = d.c > 0 ? (int32_t)(tt_tensor_elements(t) / d.c) : 0;
  return d;
}

/* The kernels' dims, re-read from the tensors (prepare and eval): grad_out, the whole filter,
 * the weights tensor (the part the update writes: the whole filter unless split), saved_x
 * (bias-only: no input channels) and grad_in (when the op has outputs). */
typedef struct {
  tt_dims grad, filter, weights, saved, x;
} mac_geometry;

static tt_dims mac_filter_dims(int32_t kind, const tt_tensor *w) {
  if (kind != TT_TRAIN_FULLY_CONNECTED) return tt_tensor_dims4(w);
  tt_dims f = {w->rank == 2 ? w->dims[0] : 0, 1, 1, w->rank == 2 ? w->dims[1] : 0};
  return f;
}

static const tt_tensor *mac_rest(tt_op_ctx *ctx) {
  return tt_op_num_inputs(ctx) > IN_W_REST ? tt_op_input(ctx, IN_W_REST) : NULL;
}

static void mac_geometry_of(tt_op_ctx *ctx, int32_t kind, int update_weights, mac_geometry *geo) {
  const tt_tensor *w = tt_op_input(ctx, IN_WEIGHTS), *rest = mac_rest(ctx);
  const tt_tensor *sx = update_weights ? tt_op_input(ctx, IN_SAVED_X) : NULL;
  geo->grad = mac_dims(kind, tt_op_input(ctx, IN_GRAD));
  geo->weights = mac_filter_dims(kind, w);
  geo->filter = geo->weights;
  if (rest != NULL) geo->filter.c += mac_filter_dims(kind, rest).c;
  if (sx != NULL) {
    geo->saved = mac_dims(kind, sx);
  } else {
    tt_dims none = {geo->grad.n, 1, 1, 0};
    geo->saved = none;
  }
  if (tt_op_num_outputs(ctx) > 0) {
    geo->x = mac_dims(kind, tt_op_output(ctx, 0));
  } else {
    tt_dims none = {0, 0, 0, 0};
    geo->x = none;
  }
}

static const tt_activation *mac_act(const mac_grad_data *d) {
  return d->kind == TT_TRAIN_CONV_2D ? &d->p.conv.activation
         : d->kind == TT_TRAIN_DEPTHWISE_CONV_2D ? &d->p.dw.activation
                                                 : &d->p.fc.activation;
}

static tt_status per_channel(tt_op_ctx *ctx, int32_t i, int32_t n, int required) {
  const tt_tensor *t = tt_op_input(ctx, i);
  if (t == NULL) {
    return required ? tt_op_fail(ctx, TT_ERR_MODEL, "a per-channel constant the update needs "
                                 "(w_mult / b_mult) is absent") : TT_OK;
  }
  if (t->type != TT_TYPE_INT32 || !t->is_constant || tt_tensor_elements(t) != n)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "per-channel constants (w_mult, w_shift, b_mult, "
                      "b_shift, r_q15) must be constant int32 with one entry per output channel");
  return TT_OK;
}

/* The op's constants from its custom options (docs/train-format.md), in prepare and again in
 * every eval. TT_ERR_MODEL if one is missing or out of range (prepare reports it). */
static tt_status mac_grad_constants(tt_op_ctx *ctx, int32_t kind, mac_grad_data *d) {
  memset(d, 0, sizeof *d);
  d->kind = (int8_t)kind;
  tt_activation act;
  int32_t update_weights, update_bias;
  int32_t input_offset, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1,
                        depth_multiplier = 1;
  TT_TRAIN_OPT(ctx, "input_offset", &input_offset);
  TT_TRAIN_OPT(ctx, "act_min", &act.min);
  TT_TRAIN_OPT(ctx, "act_max", &act.max);
  TT_TRAIN_OPT(ctx, "update_weights", &update_weights);
  TT_TRAIN_OPT(ctx, "update_bias", &update_bias);
  d->update_weights = update_weights != 0;
  d->update_bias = update_bias != 0;
  if (kind != TT_TRAIN_FULLY_CONNECTED) {
    TT_TRAIN_OPT(ctx, "stride_h", &stride_h);
    TT_TRAIN_OPT(ctx, "stride_w", &stride_w);
    TT_TRAIN_OPT(ctx, "pad_h", &pad_h);
    TT_TRAIN_OPT(ctx, "pad_w", &pad_w);
    TT_TRAIN_OPT(ctx, "dilation_h", &dil_h);
    TT_TRAIN_OPT(ctx, "dilation_w", &dil_w);
  }
  if (kind == TT_TRAIN_DEPTHWISE_CONV_2D) TT_TRAIN_OPT(ctx, "depth_multiplier", &depth_multiplier);
  if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1 || depth_multiplier < 1 ||
      pad_h < 0 || pad_w < 0)
    return tt_op_fail(ctx, TT_ERR_MODEL, "strides, dilations and depth_multiplier must be >= 1, "
                      "pads >= 0");
  if (kind == TT_TRAIN_CONV_2D) {
    tt_conv_2d_params p = {input_offset, 0, stride_w, stride_h, dil_w, dil_h, pad_w, pad_h, act};
    d->p.conv = p;
  } else if (kind == TT_TRAIN_DEPTHWISE_CONV_2D) {
    tt_depthwise_conv_2d_params p = {input_offset, 0, stride_w, stride_h, dil_w, dil_h,
                                     pad_w, pad_h, depth_multiplier, act};
    d->p.dw = p;
  } else {
    tt_fully_connected_params p = {input_offset, 0, 1, act};
    d->p.fc = p;
  }
  if (tt_op_input(ctx, IN_R) != NULL) {
    int32_t exp_offset;
    TT_TRAIN_OPT(ctx, "grad_pre_shift", &d->p_shift);
    TT_TRAIN_OPT(ctx, "grad_exp_offset", &exp_offset);
    /* grad_exp_offset = s_e - 15 + p (numpy: BackwardInputQuant(r, offset + 15 - p, p)) */
    d->s_e = exp_offset + 15 - d->p_shift;
  }
  const int32_t momentum_q15 = tt_op_custom_i32(ctx, "momentum_q15", 0);
  if (momentum_q15 < 0 || momentum_q15 >= TT_MOMENTUM_ONE)
    return tt_op_fail(ctx, TT_ERR_MODEL, "momentum_q15 must be in [0, 32768)");
  d->momentum_q15 = (int16_t)momentum_q15;
  return TT_OK;
}

tt_status tt_train_mac_grad_prepare(tt_op_ctx *ctx, int32_t kind) {
  tt_tensor *g, *ge, *w, *state;
  const int32_t n_in = tt_op_num_inputs(ctx);
  if (n_in != MAC_GRAD_INPUTS && n_in != MAC_GRAD_INPUTS + 1)
    return tt_op_fail(ctx, TT_ERR_MODEL, "expects 15 or 16 inputs (docs/train-format.md)");
  if (tt_train_input(ctx, IN_GRAD, TT_TYPE_INT8, "grad_out must be int8", &g) != TT_OK ||
      tt_train_input(ctx, IN_WEIGHTS, TT_TYPE_INT8, "weights must be int8", &w) != TT_OK ||
      tt_train_input(ctx, IN_STATE, TT_TYPE_INT32, "state must be int32", &state) != TT_OK)
    return TT_ERR_UNSUPPORTED;
  ge = tt_op_input(ctx, IN_GRAD_EXP);
  if (!tt_train_is_exp(ge))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "grad_out_exp must be int32 [1]");
  if (!state->is_variable || tt_tensor_elements(state) != 8)
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "state must be the variable int32 [8] tt_state");
  /* persistent: the kind, which eval cannot tell from the tensors */
  int8_t *kind_data = (int8_t *)tt_op_alloc_persistent(ctx, 1);
  if (kind_data == NULL) return TT_ERR_ARENA;
  *kind_data = (int8_t)kind;
  tt_op_set_data(ctx, kind_data);
  mac_grad_data dd, *d = &dd;
  if (mac_grad_constants(ctx, kind, d) != TT_OK) return TT_ERR_MODEL;
  mac_geometry geo;
  mac_geometry_of(ctx, kind, d->update_weights, &geo);
  if (w->rank != (kind == TT_TRAIN_FULLY_CONNECTED ? 2 : 4))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "weights must be [c_out, kh, kw, c_in] (conv), "
                      "[1, kh, kw, c] (depthwise) or [units, depth] (fully connected)");
  const tt_tensor *rest = mac_rest(ctx);
  if (rest != NULL) {
    /* a split filter: weights [..., k] is the slice the update writes, rest [..., c - k] */
    const tt_dims rd = mac_filter_dims(kind, rest);
    if (rest->type != TT_TYPE_INT8 || rest->rank != w->rank || rd.n != geo.weights.n ||
        rd.h != geo.weights.h || rd.w != geo.weights.w || rd.c < 1)
      return tt_op_fail(ctx, TT_ERR_SHAPE, "the weights' frozen rest must be int8 and differ "
                        "from the weights only in the last dimension");
    if (!d->update_weights)
      return tt_op_fail(ctx, TT_ERR_MODEL, "a split filter (weights + frozen rest) needs "
                        "update_weights");
  }
  const int32_t channels = kind == TT_TRAIN_DEPTHWISE_CONV_2D ? geo.filter.c : geo.filter.n;
  if (geo.grad.c != channels)
    return tt_op_fail(ctx, TT_ERR_SHAPE, "grad_out channels differ from the weights' outputs");

  const tt_tensor *mask = tt_op_input(ctx, IN_MASK), *y = tt_op_input(ctx, IN_Y);
  int64_t n = tt_tensor_elements(g);
  if (mask != NULL && (mask->type != TT_TYPE_UINT8 ||
                       tt_tensor_elements(mask) != tt_activation_mask_size((int32_t)n)))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "mask must be uint8 [ceil(n/8)] of grad_out");
  if (mask == NULL && y != NULL && (y->type != TT_TYPE_INT8 || tt_tensor_elements(y) != n))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "y must be int8 with grad_out's element count");
  /* The mask is applied to grad_out in place: the compiler gives every gradient tensor one
   * consumer (this op), so nothing reads the unmasked value later and no copy is needed. */
  if ((mask != NULL || y != NULL) && (g->is_constant || g->is_variable))
    return tt_op_fail(ctx, TT_ERR_MODEL, "grad_out is masked in place: it must be a planned "
                      "tensor, not a constant or variable");

  const tt_tensor *bias = tt_op_input(ctx, IN_BIAS), *sx = tt_op_input(ctx, IN_SAVED_X);
  if (bias != NULL && (bias->type != TT_TYPE_INT32 || tt_tensor_elements(bias) != channels))
    return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "bias must be int32 [c_out]");
  if (d->update_weights) {
    if (!w->is_variable)
      return tt_op_fail(ctx, TT_ERR_MODEL, "update_weights needs variable (writable) weights");
    if (sx == NULL || sx->type != TT_TYPE_INT8)
      return tt_op_fail(ctx, TT_ERR_MODEL, "update_weights needs the saved int8 input saved_x");
    if (geo.saved.n != geo.grad.n)
      return tt_op_fail(ctx, TT_ERR_SHAPE, "saved_x batch differs from grad_out's");
  }
  if (d->update_bias && (bias == NULL || !bias->is_variable))
    return tt_op_fail(ctx, TT_ERR_MODEL, "update_bias needs a variable (writable) bias");
  if (per_channel(ctx, IN_W_MULT, channels, d->update_weights) != TT_OK ||
      per_channel(ctx, IN_W_SHIFT, channels, 0) != TT_OK ||
      per_channel(ctx, IN_B_MULT, channels, d->update_bias) != TT_OK ||
      per_channel(ctx, IN_B_SHIFT, channels, 0) != TT_OK ||
      per_channel(ctx, IN_R, channels, 0) != TT_OK)
    return TT_ERR_MODEL;

  int32_t outs = tt_op_num_outputs(ctx);
  if (tt_op_input(ctx, IN_R) != NULL) {
    if (outs != 3)
      return tt_op_fail(ctx, TT_ERR_MODEL, "with r_q15 the op has 3 outputs: grad_in, "
                        "grad_in_exp and its int32 scratch");
    const tt_tensor *gx = tt_op_output(ctx, 0), *ex = tt_op_output(ctx, 1);
    if (gx->type != TT_TYPE_INT8 || !tt_train_is_exp(ex))
      return tt_op_fail(ctx, TT_ERR_UNSUPPORTED, "outputs must be int8 grad_in, int32 [1] "
                        "grad_in_exp, int32 scratch");
    int32_t need = kind == TT_TRAIN_CONV_2D ? tt_conv_2d_backward_input_scratch_size(&geo.x)
                   : kind == TT_TRAIN_DEPTHWISE_CONV_2D
                       ? tt_depthwise_conv_2d_backward_input_scratch_size(&geo.x)
                       : tt_fully_connected_backward_input_scratch_size(&geo.x);
    if (tt_train_scratch_output(ctx, 2, TT_TYPE_INT32, need) != TT_OK) return TT_ERR_MODEL;
  } else if (outs != 0) {
    return tt_op_fail(ctx, TT_ERR_MODEL, "without r_q15 the op has no outputs");
  }
  if (d->momentum_q15 > 0) {
    /* one Q16.16 velocity per updated element: the compact weight slice, then every bias */
    const int64_t slice = d->update_weights
                              ? (int64_t)geo.saved.c * (kind == TT_TRAIN_DEPTHWISE_CONV_2D
                                                            ? geo.filter.h * geo.filter.w *
                                                                  d->p.dw.depth_multiplier
                                                            : (int64_t)geo.filter.n *
                                                                  geo.filter.h * geo.filter.w)
                              : 0;
    const tt_tensor *wv = tt_op_input(ctx, IN_W_VELOCITY), *bv = tt_op_input(ctx, IN_B_VELOCITY);
    if (d->update_weights && (wv == NULL || wv->type != TT_TYPE_INT32 || !wv->is_variable ||
                              tt_tensor_elements(wv) != slice))
      return tt_op_fail(ctx, TT_ERR_MODEL, "momentum needs a variable int32 weight velocity with "
                        "one entry per trainable weight");
    if (d->update_bias && (bv == NULL || bv->type != TT_TYPE_INT32 || !bv->is_variable ||
                           tt_tensor_elements(bv) != channels))
      return tt_op_fail(ctx, TT_ERR_MODEL, "momentum needs a variable int32 bias velocity with "
                        "one entry per output channel");
  }
  return TT_OK;
}

tt_status tt_train_mac_grad_eval(tt_op_ctx *ctx) {
  const tt_tensor *g = tt_op_input(ctx, IN_GRAD);
  const int32_t e = tt_train_exp(tt_op_input(ctx, IN_GRAD_EXP));
  if (e == TT_GRAD_NONE) {
    tt_train_no_gradient(ctx);
    return TT_OK;
  }
  mac_grad_data dd;
  const mac_grad_data *d = &dd;
  /* validated in prepare: the same options read the same way */
  if (mac_grad_constants(ctx, *(const int8_t *)tt_op_data(ctx), &dd) != TT_OK) return TT_ERR_MODEL;
  const int32_t n = (int32_t)tt_tensor_elements(g);
  int8_t *grad = (int8_t *)g->data;
  const tt_tensor *mask = tt_op_input(ctx, IN_MASK), *y = tt_op_input(ctx, IN_Y);
  /* in place (see prepare): grad_out has no other reader */
  if (mask != NULL) tt_apply_activation_mask(grad, n, (const uint8_t *)mask->data);
  else if (y != NULL)
    tt_apply_activation_mask_from_output(grad, n, (const int8_t *)y->data, mac_act(d));
  tt_tensor *w = tt_op_input(ctx, IN_WEIGHTS);
  mac_geometry geo;
  mac_geometry_of(ctx, d->kind, d->update_weights, &geo);
  tt_status st = TT_OK;
  /* the input gradient first: it needs the weights of the forward pass */
  const tt_tensor *r = tt_op_input(ctx, IN_R);
  if (r != NULL) {
    tt_tensor *gx = tt_op_output(ctx, 0), *ex = tt_op_output(ctx, 1), *acc = tt_op_output(ctx, 2);
    const tt_backward_input_quant q = {(const int32_t *)r->data, d->s_e, d->p_shift};
    int8_t *gxd = (int8_t *)gx->data;
    int32_t *exd = (int32_t *)ex->data, *accd = (int32_t *)acc->data;
    const tt_tensor *rest = mac_rest(ctx);
    const tt_split_filter filter = {(const int8_t *)w->data,
                                    rest ? (const int8_t *)rest->data : NULL, geo.weights.c};
    if (d->kind == TT_TRAIN_CONV_2D)
      st = tt_conv_2d_backward_input_split(&d->p.conv, &q, &geo.grad, grad, e, &geo.filter,
                                           &filter, &geo.x, accd, gxd, exd);
    else if (d->kind == TT_TRAIN_DEPTHWISE_CONV_2D)
      st = tt_depthwise_conv_2d_backward_input_split(&d->p.dw, &q, &geo.grad, grad, e,
                                                     &geo.filter, &filter, &geo.x, accd, gxd,
                                                     exd);
    else
      st = tt_fully_connected_backward_input_split(&d->p.fc, &q, &geo.grad, grad, e,
                                                   &geo.filter, &filter, &geo.x, accd, gxd,
                                                   exd);
    if (st != TT_OK) return tt_op_fail(ctx, st, "input-gradient kernel rejected its arguments");
  }
  if (!d->update_weights && !d->update_bias) return TT_OK;
  int32_t *state = (int32_t *)tt_op_input(ctx, IN_STATE)->data;
  const tt_tensor *wm = tt_op_input(ctx, IN_W_MULT), *ws = tt_op_input(ctx, IN_W_SHIFT);
  const tt_tensor *bm = tt_op_input(ctx, IN_B_MULT), *bs = tt_op_input(ctx, IN_B_SHIFT);
  tt_update_params upd;
  /* Constants read in place from the model; an absent shift vector is all zeros (NULL) and
   * an absent multiplier belongs to a tensor that is not updated (checked in prepare). */
  upd.weight_factor.multiplier = wm ? (const int32_t *)wm->data : NULL;
  upd.weight_factor.shift = ws ? (const int32_t *)ws->data : NULL;
  upd.bias_factor.multiplier = bm ? (const int32_t *)bm->data : NULL;
  upd.bias_factor.shift = bs ? (const int32_t *)bs->data : NULL;
  upd.lr.multiplier = state[0];
  upd.lr.shift = state[1];
  upd.update_weights = d->update_weights;
  upd.update_bias = d->update_bias;
  upd.momentum_q15 = d->momentum_q15;
  const tt_tensor *wv = tt_op_input(ctx, IN_W_VELOCITY), *bv = tt_op_input(ctx, IN_B_VELOCITY);
  int32_t *w_vel = d->momentum_q15 && wv != NULL ? (int32_t *)wv->data : NULL;
  int32_t *b_vel = d->momentum_q15 && bv != NULL ? (int32_t *)bv->data : NULL;
  uint64_t prng = (uint64_t)(uint32_t)state[2] | ((uint64_t)(uint32_t)state[3] << 32);
  const tt_tensor *sx = tt_op_input(ctx, IN_SAVED_X), *b = tt_op_input(ctx, IN_BIAS);
  /* bias-only: no input channels are read (a non-NULL placeholder pointer) */
  const int8_t *x = sx != NULL && d->update_weights ? (const int8_t *)sx->data : grad;
  int32_t *bias = b != NULL ? (int32_t *)b->data : NULL;
  if (d->kind == TT_TRAIN_CONV_2D)
    st = tt_conv_2d_update(&d->p.conv, &upd, &geo.saved, x, &geo.grad, grad, e,
                           &geo.weights, (int8_t *)w->data, bias, w_vel, b_vel, &prng);
  else if (d->kind == TT_TRAIN_DEPTHWISE_CONV_2D)
    st = tt_depthwise_conv_2d_update(&d->p.dw, &upd, &geo.saved, x, &geo.grad, grad, e,
                                     &geo.weights, (int8_t *)w->data, bias, w_vel, b_vel, &prng);
  else
    st = tt_fully_connected_update(&d->p.fc, &upd, &geo.saved, x, &geo.grad, grad, e,
                                   &geo.weights, (int8_t *)w->data, bias, w_vel, b_vel, &prng);
  if (st != TT_OK) return tt_op_fail(ctx, st, "update kernel rejected its arguments");
  state[2] = (int32_t)(uint32_t)prng;
  state[3] = (int32_t)(uint32_t)(prng >> 32);
  return TT_OK;
}
