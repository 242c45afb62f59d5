/* Op dispatch: the registrations this engine supports, looked up by builtin code, and the
 * names of all TFLite builtin operators (for error messages). */
#include <string.h>

#include "tt_engine_internal.h"

/* BuiltinOptions union values (schema.fbs) of the options each op reads. */
enum {
  OPTIONS_CONV_2D = 1,
  OPTIONS_DEPTHWISE_CONV_2D = 2,
  OPTIONS_POOL_2D = 5,
  OPTIONS_FULLY_CONNECTED = 8,
  OPTIONS_SOFTMAX = 9,
  OPTIONS_ADD = 11,
  OPTIONS_RESHAPE = 17,
  OPTIONS_PAD = 22,
  OPTIONS_REDUCER = 27,
  OPTIONS_DEQUANTIZE = 38,
  OPTIONS_QUANTIZE = 89
};

typedef struct {
  const tt_op_registration *reg;
  uint8_t options_type;
} resolver_entry;

static const resolver_entry kOps[] = {
    {&tt_op_conv_2d, OPTIONS_CONV_2D},
    {&tt_op_depthwise_conv_2d, OPTIONS_DEPTHWISE_CONV_2D},
    {&tt_op_fully_connected, OPTIONS_FULLY_CONNECTED},
    {&tt_op_add, OPTIONS_ADD},
    {&tt_op_average_pool_2d, OPTIONS_POOL_2D},
    {&tt_op_max_pool_2d, OPTIONS_POOL_2D},
    {&tt_op_mean, OPTIONS_REDUCER},
    {&tt_op_reshape, OPTIONS_RESHAPE},
    {&tt_op_softmax, OPTIONS_SOFTMAX},
    {&tt_op_pad, OPTIONS_PAD},
    {&tt_op_quantize, OPTIONS_QUANTIZE},
    {&tt_op_dequantize, OPTIONS_DEQUANTIZE},
};

/* CUSTOM ops (builtin code 32), found by custom_code. */
static const tt_op_registration *const kCustomOps[] = {
    &tt_op_act_mask,
    &tt_op_save_slice,
    &tt_op_softmax_xent,
    &tt_op_conv_2d_grad,
    &tt_op_depthwise_conv_2d_grad,
    &tt_op_fully_connected_grad,
    &tt_op_add_grad,
    &tt_op_average_pool_2d_grad,
    &tt_op_mean_grad,
    &tt_op_max_pool_2d_grad,
    &tt_op_pad_grad,
    &tt_op_grad_accumulate,
    &tt_op_fused_chain,
    &tt_op_split_conv_2d,
    &tt_op_split_depthwise_conv_2d,
    &tt_op_split_fully_connected,
};

void tt_supported_custom_ops(char *buf, size_t n) {
  size_t used = 0;
  if (n == 0) return;
  buf[0] = 0;
  for (size_t i = 0; i < sizeof kCustomOps / sizeof kCustomOps[0]; ++i) {
    const char *name = kCustomOps[i]->custom_code;
    size_t len = strlen(name) + (i ? 2 : 0);
    if (used + len + 1 > n) break;
    if (i) memcpy(buf + used, ", ", 2);
    memcpy(buf + used + (i ? 2 : 0), name, strlen(name) + 1);
    used += len;
  }
}

#define NUM_BUILTIN (sizeof kOps / sizeof kOps[0])
#define NUM_CUSTOM (sizeof kCustomOps / sizeof kCustomOps[0])

/* Ids: 1 .. NUM_BUILTIN the builtins of kOps, then the custom ops of kCustomOps. */
uint8_t tt_resolve(int32_t builtin_code, const char *custom_code, size_t len) {
  if (builtin_code == 32 /* CUSTOM */) {
    for (size_t i = 0; i < NUM_CUSTOM; ++i) {
      const char *name = kCustomOps[i]->custom_code;
      if (strlen(name) == len && memcmp(name, custom_code, len) == 0)
        return (uint8_t)(1 + NUM_BUILTIN + i);
    }
    return 0;
  }
  for (size_t i = 0; i < NUM_BUILTIN; ++i)
    if (kOps[i].reg->builtin_code == builtin_code) return (uint8_t)(1 + i);
  return 0;
}

const tt_op_registration *tt_registration(uint8_t id, uint8_t *options_type) {
  *options_type = 0;
  if (id == 0 || id > NUM_BUILTIN + NUM_CUSTOM) return NULL;
  if (id > NUM_BUILTIN) return kCustomOps[id - 1 - NUM_BUILTIN];
  *options_type = kOps[id - 1].options_type;
  return kOps[id - 1].reg;
}

void tt_supported_ops(char *buf, size_t n) {
  size_t used = 0;
  if (n == 0) return;
  buf[0] = 0;
  for (size_t i = 0; i < sizeof kOps / sizeof kOps[0]; ++i) {
    const char *name = kOps[i].reg->name;
    size_t len = strlen(name) + (i ? 2 : 0);
    if (used + len + 1 > n) break;
    if (i) memcpy(buf + used, ", ", 2);
    memcpy(buf + used + (i ? 2 : 0), name, strlen(name) + 1);
    used += len;
  }
}

/* BuiltinOperator names, indexed by value (schema.fbs). */
static const char *const kBuiltinNames[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC",
    "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE",
    "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS",
    "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
    "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE",
    "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS",
    "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN",
    "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG",
    "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX",
    "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN",
    "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE",
    "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS", "SPLIT_V",
    "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU",
    "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF",
    "WHILE", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2",
    "DENSIFY", "SEGMENT_SUM", "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM",
    "CALL_ONCE", "BROADCAST_TO", "RFFT2D", "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE",
    "HASHTABLE_FIND", "HASHTABLE_IMPORT", "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE",
    "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL",
    "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU", "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1",
    "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_SUM", "ATAN2",
    "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR", "RIGHT_SHIFT", "STABLEHLO_LOGISTIC",
    "STABLEHLO_ADD", "STABLEHLO_DIVIDE", "STABLEHLO_MULTIPLY", "STABLEHLO_MAXIMUM",
    "STABLEHLO_RESHAPE", "STABLEHLO_CLAMP", "STABLEHLO_CONCATENATE", "STABLEHLO_BROADCAST_IN_DIM",
    "STABLEHLO_CONVOLUTION", "STABLEHLO_SLICE", "STABLEHLO_CUSTOM_CALL", "STABLEHLO_REDUCE",
    "STABLEHLO_ABS", "STABLEHLO_AND", "STABLEHLO_COSINE", "STABLEHLO_EXPONENTIAL",
    "STABLEHLO_FLOOR", "STABLEHLO_LOG", "STABLEHLO_MINIMUM", "STABLEHLO_NEGATE", "STABLEHLO_OR",
    "STABLEHLO_POWER", "STABLEHLO_REMAINDER", "STABLEHLO_RSQRT", "STABLEHLO_SELECT",
    "STABLEHLO_SUBTRACT", "STABLEHLO_TANH", "STABLEHLO_SCATTER", "STABLEHLO_COMPARE",
    "STABLEHLO_CONVERT", "STABLEHLO_DYNAMIC_SLICE", "STABLEHLO_DYNAMIC_UPDATE_SLICE",
    "STABLEHLO_PAD", "STABLEHLO_IOTA", "STABLEHLO_DOT_GENERAL", "STABLEHLO_REDUCE_WINDOW",
    "STABLEHLO_SORT", "STABLEHLO_WHILE", "STABLEHLO_GATHER", "STABLEHLO_TRANSPOSE", "DILATE",
    "STABLEHLO_RNG_BIT_GENERATOR", "REDUCE_WINDOW", "STABLEHLO_COMPOSITE", "STABLEHLO_SHIFT_LEFT",
    "STABLEHLO_CBRT", "STABLEHLO_CASE",
};

const char *tt_builtin_name(int32_t builtin_code) {
  if (builtin_code < 0 || (size_t)builtin_code >= sizeof kBuiltinNames / sizeof kBuiltinNames[0])
    return NULL;
  return kBuiltinNames[builtin_code];
}
