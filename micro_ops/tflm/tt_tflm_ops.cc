// The tt_op.h accessor API on TFLM's kernel API, and one TFLMRegistration per TT_* op that
// runs the C engine's glue (micro_ops/engine/ops/tt_op_train_*.c) unchanged.
//
// What maps to what:
//   init     → persistent node data: the tt_op_registration, the FlexBuffer options (TFLM
//              passes custom_options as the init buffer; validated here once)
//   prepare  → the glue's prepare() on tt_tensor views of temporary TfLiteTensors (the only
//              place TFLM exposes quantization, is_variable and allocation type); the views'
//              constant/variable flags are cached for eval
//   invoke   → the glue's eval() on views of TfLiteEvalTensors (type, dims, data only)
// Persistent allocations come from TFLM's arena (AllocatePersistentBuffer), scratch from
// RequestScratchBufferInArena; the training ops themselves request no online scratch (their
// scratch is a planned op output, docs/train-format.md).
#include <string.h>

#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tt_tflm.h"

extern "C" {
#include "tt_flexbuffer.h"
#include "tt_op.h"
}

namespace {

// Inputs + outputs of one node; the MAC gradient ops have the most (16 + 3).
constexpr int kMaxNodeTensors = 24;
enum : uint8_t { kFlagConstant = 1, kFlagVariable = 2 };

// Per node, in TFLM's persistent arena (allocated in init).
struct NodeData {
  const tt_op_registration* reg;
  const uint8_t* options;  // FlexBuffer map, validated in init; nullptr if none
  size_t options_len;
  const char* options_error;  // why the options are malformed (reported in prepare)
  void* op_data;              // tt_op_set_data
  int scratch_index;          // RequestScratchBufferInArena handle, -1 if none
  uint8_t flags[kMaxNodeTensors];  // per position (inputs, then outputs): kFlag*
};

}  // namespace

// The adapter's op context: lives on the stack for one prepare or invoke call.
struct tt_op_ctx {
  TfLiteContext* context;
  TfLiteNode* node;
  NodeData* data;
  bool preparing;
  const char* message;           // tt_op_fail
  const char* custom_malformed;  // key of a non-int32 custom option
  size_t alloc_failed;           // bytes of a failed persistent allocation
  TfLiteTensor* temp[kMaxNodeTensors];  // prepare: temporary TfLiteTensors to release
  tt_tensor view[kMaxNodeTensors];
  bool built[kMaxNodeTensors];
};

namespace {

int NumInputs(const tt_op_ctx* ctx) { return ctx->node->inputs->size; }
int NumOutputs(const tt_op_ctx* ctx) { return ctx->node->outputs->size; }

// TfLiteType → TFLite schema TensorType (tt_op.h's TT_TYPE_*): equal but for float32.
uint8_t TypeOf(TfLiteType type, size_t* element_size) {
  switch (type) {
    case kTfLiteFloat32: *element_size = 4; return TT_TYPE_FLOAT32;
    case kTfLiteInt32: *element_size = 4; return TT_TYPE_INT32;
    case kTfLiteUInt8: *element_size = 1; return TT_TYPE_UINT8;
    case kTfLiteInt64: *element_size = 8; return TT_TYPE_INT64;
    case kTfLiteInt16: *element_size = 2; return TT_TYPE_INT16;
    case kTfLiteInt8: *element_size = 1; return TT_TYPE_INT8;
    default: *element_size = 0; return 0xff;  // no TT_TYPE: every glue check rejects it
  }
}

// Shape, type and size of a view; false if the rank exceeds TT_MAX_RANK.
bool FillShape(tt_tensor* t, const TfLiteIntArray* dims, TfLiteType type) {
  const int rank = dims != nullptr ? dims->size : 0;
  if (rank > TT_MAX_RANK) return false;
  size_t element_size;
  t->type = TypeOf(type, &element_size);
  t->rank = static_cast<int8_t>(rank);
  uint64_t bytes = element_size;
  for (int d = 0; d < rank; ++d) {
    t->dims[d] = dims->data[d];
    bytes *= static_cast<uint64_t>(dims->data[d] > 0 ? dims->data[d] : 0);
  }
  t->bytes = bytes > 0x7fffffffu ? 0x7fffffffu : static_cast<uint32_t>(bytes);
  return true;
}

// The view of position k (inputs first, then outputs); nullptr for an absent (-1) tensor.
tt_tensor* View(tt_op_ctx* ctx, int k) {
  const int n_in = NumInputs(ctx);
  const int index = k < n_in ? ctx->node->inputs->data[k] : ctx->node->outputs->data[k - n_in];
  if (index < 0) return nullptr;
  tt_tensor* t = &ctx->view[k];
  if (ctx->built[k]) return t;
  memset(t, 0, sizeof *t);
  t->index = index;
  if (ctx->preparing) {
    TfLiteTensor* src = tflite::GetMicroContext(ctx->context)->AllocateTempTfLiteTensor(index);
    if (src == nullptr) return nullptr;
    ctx->temp[k] = src;
    if (!FillShape(t, src->dims, src->type)) {
      ctx->message = "a tensor has more than 5 dimensions";
      return nullptr;
    }
    t->data = src->data.data;
    t->is_constant = src->allocation_type == kTfLiteMmapRo;
    t->is_variable = src->is_variable;
    if (src->quantization.type == kTfLiteAffineQuantization &&
        src->quantization.params != nullptr) {
      const auto* q = static_cast<const TfLiteAffineQuantization*>(src->quantization.params);
      if (q->scale != nullptr && q->scale->size > 0) {
        t->num_quant = q->scale->size;
        // The adapter's representation: TfLiteFloatArray / TfLiteIntArray (tt_tensor_scale).
        t->scale_vec = reinterpret_cast<const uint8_t*>(q->scale);
        t->zero_point_vec = reinterpret_cast<const uint8_t*>(q->zero_point);
        t->quant_axis =
            static_cast<int8_t>(q->quantized_dimension < t->rank ? q->quantized_dimension : 0);
      }
    }
    ctx->data->flags[k] = static_cast<uint8_t>((t->is_constant ? kFlagConstant : 0) |
                                               (t->is_variable ? kFlagVariable : 0));
  } else {
    // Eval tensors carry no quantization (as in TFLM): prepare cached what eval needs.
    TfLiteEvalTensor* src = ctx->context->GetEvalTensor(ctx->context, index);
    if (src == nullptr || !FillShape(t, src->dims, src->type)) return nullptr;
    t->data = src->data.data;
    t->is_constant = (ctx->data->flags[k] & kFlagConstant) != 0;
    t->is_variable = (ctx->data->flags[k] & kFlagVariable) != 0;
  }
  ctx->built[k] = true;
  return t;
}

void ReleaseTemps(tt_op_ctx* ctx) {
  tflite::MicroContext* micro = tflite::GetMicroContext(ctx->context);
  for (int k = 0; k < kMaxNodeTensors; ++k) {
    if (ctx->temp[k] != nullptr) micro->DeallocateTempTfLiteTensor(ctx->temp[k]);
    ctx->temp[k] = nullptr;
  }
}

void StartCtx(tt_op_ctx* ctx, TfLiteContext* context, TfLiteNode* node, bool preparing) {
  memset(ctx, 0, sizeof *ctx);
  ctx->context = context;
  ctx->node = node;
  ctx->data = static_cast<NodeData*>(node->user_data);
  ctx->preparing = preparing;
}

// Reports a failed prepare/eval the way the C engine words it; TFLM adds the node number.
TfLiteStatus Report(const tt_op_ctx* ctx, tt_status s, const char* phase) {
  const char* name = ctx->data->reg->name;
  if (ctx->alloc_failed) {
    MicroPrintf("%s: arena too small: %d more persistent bytes needed", name,
                static_cast<int>(ctx->alloc_failed));
  } else if (ctx->custom_malformed != nullptr) {
    MicroPrintf("%s: custom option '%s' is not an int32 integer", name, ctx->custom_malformed);
  } else if (ctx->message != nullptr) {
    MicroPrintf("%s: %s", name, ctx->message);
  } else {
    MicroPrintf("%s: %s failed with status %d", name, phase, static_cast<int>(s));
  }
  return kTfLiteError;
}

template <const tt_op_registration* R>
void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  void* raw = context->AllocatePersistentBuffer(context, sizeof(NodeData));
  if (raw == nullptr) return nullptr;  // prepare reports it
  NodeData* d = static_cast<NodeData*>(raw);
  memset(d, 0, sizeof *d);
  d->reg = R;
  d->scratch_index = -1;
  if (buffer != nullptr && length > 0) {
    tt_flex_map m;
    if (tt_flex_map_open(&m, reinterpret_cast<const uint8_t*>(buffer), length)) {
      d->options = reinterpret_cast<const uint8_t*>(buffer);  // custom_options in the model
      d->options_len = length;
    } else {
      d->options_error = m.why;
    }
  }
  return d;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  if (node->user_data == nullptr) {
    MicroPrintf("training op: no persistent memory for its node data (arena too small)");
    return kTfLiteError;
  }
  tt_op_ctx ctx;
  StartCtx(&ctx, context, node, true);
  const tt_op_registration* reg = ctx.data->reg;
  if (ctx.data->options_error != nullptr) {
    MicroPrintf("%s: malformed custom options: %s", reg->name, ctx.data->options_error);
    return kTfLiteError;
  }
  const int total = NumInputs(&ctx) + NumOutputs(&ctx);
  if (total > kMaxNodeTensors) {
    MicroPrintf("%s: %d inputs and outputs; the adapter supports %d", reg->name, total,
                kMaxNodeTensors);
    return kTfLiteError;
  }
  tt_status s = reg->prepare != nullptr ? reg->prepare(&ctx) : TT_OK;
  // Cache the constant/variable flags of every position for eval, then release the
  // temporary tensors (TFLM requires it before the next node's prepare).
  for (int k = 0; s == TT_OK && k < total; ++k) {
    const int n_in = NumInputs(&ctx);
    const int index = k < n_in ? node->inputs->data[k] : node->outputs->data[k - n_in];
    if (index >= 0 && View(&ctx, k) == nullptr) s = TT_ERR_MODEL;
  }
  ReleaseTemps(&ctx);
  if (s != TT_OK || ctx.alloc_failed || ctx.custom_malformed != nullptr)
    return Report(&ctx, s, "prepare");
  return kTfLiteOk;
}

TfLiteStatus Invoke(TfLiteContext* context, TfLiteNode* node) {
  tt_op_ctx ctx;
  StartCtx(&ctx, context, node, false);
  const tt_status s = ctx.data->reg->eval(&ctx);
  return s == TT_OK ? kTfLiteOk : Report(&ctx, s, "eval");
}

// custom_name is the glue's own static TT_* code (so the two cannot disagree).
#define TT_TFLM_REGISTRATION(op) \
  {&Init<&op>, nullptr, &Prepare, &Invoke, nullptr, 32 /* CUSTOM */, op.custom_code}

// In the order of docs/train-format.md.
const TFLMRegistration kRegistrations[tflm_train::kNumTrainingOps] = {
    TT_TFLM_REGISTRATION(tt_op_act_mask),
    TT_TFLM_REGISTRATION(tt_op_save_slice),
    TT_TFLM_REGISTRATION(tt_op_softmax_xent),
    TT_TFLM_REGISTRATION(tt_op_conv_2d_grad),
    TT_TFLM_REGISTRATION(tt_op_depthwise_conv_2d_grad),
    TT_TFLM_REGISTRATION(tt_op_fully_connected_grad),
    TT_TFLM_REGISTRATION(tt_op_add_grad),
    TT_TFLM_REGISTRATION(tt_op_average_pool_2d_grad),
    TT_TFLM_REGISTRATION(tt_op_mean_grad),
    TT_TFLM_REGISTRATION(tt_op_max_pool_2d_grad),
    TT_TFLM_REGISTRATION(tt_op_pad_grad),
    TT_TFLM_REGISTRATION(tt_op_grad_accumulate),
    TT_TFLM_REGISTRATION(tt_op_fused_chain),
    TT_TFLM_REGISTRATION(tt_op_split_conv_2d),
    TT_TFLM_REGISTRATION(tt_op_split_depthwise_conv_2d),
    TT_TFLM_REGISTRATION(tt_op_split_fully_connected),
};

}  // namespace

namespace tflm_train {

const TFLMRegistration* TrainingOpRegistration(int i) {
  return i >= 0 && i < kNumTrainingOps ? &kRegistrations[i] : nullptr;
}

const TFLMRegistration* FindTrainingOp(const char* custom_code) {
  if (custom_code == nullptr) return nullptr;
  for (int i = 0; i < kNumTrainingOps; ++i)
    if (strcmp(kRegistrations[i].custom_name, custom_code) == 0) return &kRegistrations[i];
  return nullptr;
}

}  // namespace tflm_train

// ---- tt_op.h on TFLM (C linkage from the header's declarations) ----

float tt_tensor_scale(const tt_tensor* t, int32_t i) {
  if (t->num_quant == 0 || t->scale_vec == nullptr) return 0.0f;
  const auto* s = reinterpret_cast<const TfLiteFloatArray*>(t->scale_vec);
  return s->data[i >= 0 && i < s->size ? i : 0];
}

int32_t tt_tensor_zero_point(const tt_tensor* t, int32_t i) {
  if (t->num_quant == 0 || t->zero_point_vec == nullptr) return 0;
  const auto* z = reinterpret_cast<const TfLiteIntArray*>(t->zero_point_vec);
  if (z->size == 0) return 0;
  return z->data[i >= 0 && i < z->size ? i : 0];  // one zero point shared by all channels
}

// TFLM gives kernels no node index; it prints the node number itself when a kernel fails.
int32_t tt_op_index(const tt_op_ctx*) { return -1; }
int32_t tt_op_num_inputs(const tt_op_ctx* ctx) { return NumInputs(ctx); }
int32_t tt_op_num_outputs(const tt_op_ctx* ctx) { return NumOutputs(ctx); }

tt_tensor* tt_op_input(tt_op_ctx* ctx, int32_t i) {
  if (i < 0 || i >= NumInputs(ctx)) return nullptr;
  return View(ctx, i);
}

tt_tensor* tt_op_output(tt_op_ctx* ctx, int32_t i) {
  if (i < 0 || i >= NumOutputs(ctx)) return nullptr;
  return View(ctx, NumInputs(ctx) + i);
}

// Builtin options: the adapter registers only CUSTOM ops (TFLM runs the builtins), which
// have none.
int32_t tt_op_option_i8(const tt_op_ctx*, int32_t, int32_t dflt) { return dflt; }
int32_t tt_op_option_i32(const tt_op_ctx*, int32_t, int32_t dflt) { return dflt; }
float tt_op_option_f32(const tt_op_ctx*, int32_t, float dflt) { return dflt; }
int32_t tt_op_option_i32_vector(const tt_op_ctx*, int32_t, int32_t*, int32_t) { return -1; }

int tt_op_custom_find_i32(const tt_op_ctx* ctx, const char* key, int32_t* out) {
  const NodeData* d = ctx->data;
  if (d->options == nullptr) return 0;
  tt_flex_map m;
  // Validated in init: the header is all there is to re-read (eval reads options too).
  if (!tt_flex_map_reopen(&m, d->options, d->options_len)) return -1;
  int64_t v;
  const int r = tt_flex_map_int(&m, key, &v);
  if (r == 0) return 0;
  if (r < 0 || v < INT32_MIN || v > INT32_MAX) {
    if (ctx->custom_malformed == nullptr) const_cast<tt_op_ctx*>(ctx)->custom_malformed = key;
    return -1;
  }
  *out = static_cast<int32_t>(v);
  return 1;
}

int32_t tt_op_custom_i32(const tt_op_ctx* ctx, const char* key, int32_t dflt) {
  int32_t v = dflt;
  return tt_op_custom_find_i32(ctx, key, &v) == 1 ? v : dflt;
}

void* tt_op_alloc_persistent(tt_op_ctx* ctx, size_t bytes) {
  if (!ctx->preparing) return nullptr;
  void* p = ctx->context->AllocatePersistentBuffer(ctx->context, bytes);  // 16-byte aligned
  if (p == nullptr && ctx->alloc_failed == 0) ctx->alloc_failed = bytes ? bytes : 1;
  return p;
}

// Only the forward MAC glue asks (here: the split-filter ops TT_CONV_2D & co); the adapter
// does not read the model's metadata, so they compute their constants into the arena.
int tt_op_flash_quant(tt_op_ctx*, int32_t, const int32_t**, const int32_t**) { return 0; }

void tt_op_set_data(tt_op_ctx* ctx, void* data) { ctx->data->op_data = data; }
void* tt_op_data(const tt_op_ctx* ctx) { return ctx->data->op_data; }

tt_status tt_op_request_scratch(tt_op_ctx* ctx, size_t bytes) {
  if (!ctx->preparing) return tt_op_fail(ctx, TT_ERR_ARG, "scratch can only be requested in prepare");
  int index = -1;
  if (ctx->context->RequestScratchBufferInArena(ctx->context, bytes, &index) != kTfLiteOk)
    return tt_op_fail(ctx, TT_ERR_ARENA, "TFLM refused the scratch request");
  ctx->data->scratch_index = index;
  return TT_OK;
}

void* tt_op_scratch(const tt_op_ctx* ctx) {
  if (ctx->preparing || ctx->data->scratch_index < 0) return nullptr;
  return ctx->context->GetScratchBuffer(ctx->context, ctx->data->scratch_index);
}

tt_status tt_op_fail(tt_op_ctx* ctx, tt_status code, const char* message) {
  ctx->message = message;
  return code;
}
