/* TFLite schema access on top of the bounds-checked flatbuffer reader.
 *
 * Field indices are those of tensorflow/lite/schema/schema.fbs (a union takes two slots:
 * its type, then its value). Everything eval will touch is validated here, once. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tt_engine_internal.h"

/* Model */
enum { MODEL_VERSION = 0, MODEL_OPERATOR_CODES = 1, MODEL_SUBGRAPHS = 2, MODEL_BUFFERS = 4,
       MODEL_METADATA = 6 };
/* Metadata */
enum { METADATA_NAME = 0, METADATA_BUFFER = 1 };
/* OperatorCode */
enum { OPCODE_DEPRECATED_BUILTIN = 0, OPCODE_CUSTOM = 1, OPCODE_BUILTIN = 3 };
/* SubGraph */
enum { SG_TENSORS = 0, SG_INPUTS = 1, SG_OUTPUTS = 2, SG_OPERATORS = 3 };
/* Tensor */
enum { TENSOR_SHAPE = 0, TENSOR_TYPE = 1, TENSOR_BUFFER = 2, TENSOR_NAME = 3, TENSOR_QUANT = 4,
       TENSOR_IS_VARIABLE = 5, TENSOR_SPARSITY = 6, TENSOR_EXTERNAL_BUFFER = 10 };
/* QuantizationParameters */
enum { QUANT_SCALE = 2, QUANT_ZERO_POINT = 3, QUANT_DIMENSION = 6 };
/* Buffer */
enum { BUFFER_DATA = 0, BUFFER_OFFSET = 1, BUFFER_SIZE = 2 };
/* Operator */
enum { OP_OPCODE_INDEX = 0, OP_INPUTS = 1, OP_OUTPUTS = 2, OP_OPTIONS_TYPE = 3, OP_OPTIONS = 4,
       OP_CUSTOM_OPTIONS = 5, OP_CUSTOM_OPTIONS_FORMAT = 6, OP_LARGE_CUSTOM_OPTIONS_OFFSET = 9 };

#define TFLITE_SCHEMA_VERSION 3
#define BUILTIN_CUSTOM 32

void tt_format(char *err, size_t n, const char *fmt, ...) {
  if (err == NULL || n == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
}

static const char *why(const tt_fb *fb) { return fb->why ? fb->why : "malformed flatbuffer"; }

/* Reads a required-or-absent vector; absent gives length 0. */
static int vec_or_empty(tt_fb *fb, const tt_fb_table *t, int field, size_t elem,
                        tt_fb_vector *v) {
  int r = tt_fb_read_vector(fb, t, field, elem, v);
  if (r == 0) {
    v->pos = 0;
    v->len = 0;
  }
  return r >= 0;
}

static tt_status check_indices(tt_model *m, const tt_fb_vector *v, int32_t lowest,
                               const char *what, char *err, size_t n) {
  for (uint32_t k = 0; k < v->len; ++k) {
    int32_t idx = tt_fb_vec_i32(&m->fb, v, k);
    if (idx < lowest || (idx >= 0 && (uint32_t)idx >= m->tensors.len)) {
      tt_format(err, n, "%s %u refers to tensor %d of %u", what, k, idx, m->tensors.len);
      return TT_ERR_MODEL;
    }
  }
  return TT_OK;
}

tt_status tt_model_open(tt_model *m, const uint8_t *buf, size_t size, char *err, size_t n) {
  tt_fb_table root;
  memset(m, 0, sizeof *m);
  m->fb.buf = buf;
  m->fb.size = size;
  if (buf == NULL) {
    tt_format(err, n, "no model bytes");
    return TT_ERR_ARG;
  }
  if (size >= 8 && memcmp(buf + 4, "TFL3", 4) != 0) {
    tt_format(err, n, "not a TFLite model: file identifier is \"%c%c%c%c\", expected \"TFL3\"",
              buf[4] >= 32 && buf[4] < 127 ? buf[4] : '?', buf[5] >= 32 && buf[5] < 127 ? buf[5] : '?',
              buf[6] >= 32 && buf[6] < 127 ? buf[6] : '?', buf[7] >= 32 && buf[7] < 127 ? buf[7] : '?');
    return TT_ERR_MODEL;
  }
  if (!tt_fb_root(&m->fb, "TFL3", &root)) {
    tt_format(err, n, "model root table: %s (%lu bytes)", why(&m->fb), (unsigned long)size);
    return TT_ERR_MODEL;
  }
  uint32_t version;
  if (!tt_fb_read_u32(&m->fb, &root, MODEL_VERSION, 0, &version)) {
    tt_format(err, n, "model version: %s", why(&m->fb));
    return TT_ERR_MODEL;
  }
  if (version != TFLITE_SCHEMA_VERSION) {
    tt_format(err, n, "model schema version is %u, only version %d is supported", version,
              TFLITE_SCHEMA_VERSION);
    return TT_ERR_UNSUPPORTED;
  }
  tt_fb_vector subgraphs;
  if (!vec_or_empty(&m->fb, &root, MODEL_OPERATOR_CODES, 4, &m->opcodes) ||
      !vec_or_empty(&m->fb, &root, MODEL_BUFFERS, 4, &m->buffers) ||
      !vec_or_empty(&m->fb, &root, MODEL_SUBGRAPHS, 4, &subgraphs)) {
    tt_format(err, n, "model tables: %s", why(&m->fb));
    return TT_ERR_MODEL;
  }
  if (subgraphs.len == 0) {
    tt_format(err, n, "model has no subgraphs");
    return TT_ERR_MODEL;
  }
  tt_fb_table subgraph;
  if (!tt_fb_vector_table(&m->fb, &subgraphs, 0, &subgraph) ||
      !vec_or_empty(&m->fb, &subgraph, SG_TENSORS, 4, &m->tensors) ||
      !vec_or_empty(&m->fb, &subgraph, SG_INPUTS, 4, &m->inputs) ||
      !vec_or_empty(&m->fb, &subgraph, SG_OUTPUTS, 4, &m->outputs) ||
      !vec_or_empty(&m->fb, &subgraph, SG_OPERATORS, 4, &m->operators)) {
    tt_format(err, n, "subgraph 0: %s", why(&m->fb));
    return TT_ERR_MODEL;
  }
  tt_status s = check_indices(m, &m->inputs, 0, "subgraph input", err, n);
  if (s == TT_OK) s = check_indices(m, &m->outputs, 0, "subgraph output", err, n);
  return s;
}

static size_t type_size(int32_t type) {
  switch (type) {
    case TT_TYPE_FLOAT32: return 4;
    case TT_TYPE_INT32: return 4;
    case TT_TYPE_UINT8: return 1;
    case TT_TYPE_INT64: return 8;
    case TT_TYPE_INT16: return 2;
    case TT_TYPE_INT8: return 1;
    case 6: return 1; /* BOOL */
    default: return 0;
  }
}

/* Tensor i. `full` validates everything; without it (a model already validated) the checks
 * that cannot fail again are skipped, but every read stays bounds-checked. */
static tt_status parse_tensor(tt_model *m, uint32_t i, tt_tensor *t, char *err, size_t n,
                              int full) {
  tt_fb *fb = &m->fb;
  tt_fb_table tt, q, buf;
  tt_fb_vector shape, data;
  memset(t, 0, sizeof *t);
  t->index = (int32_t)i;
  if (!tt_fb_vector_table(fb, &m->tensors, i, &tt)) {
    tt_format(err, n, "tensor %u: %s", i, why(fb));
    return TT_ERR_MODEL;
  }
  uint8_t type, is_variable;
  uint32_t buffer;
  if (!vec_or_empty(fb, &tt, TENSOR_SHAPE, 4, &shape) || !tt_fb_read_u8(fb, &tt, TENSOR_TYPE, 0, &type) ||
      !tt_fb_read_u32(fb, &tt, TENSOR_BUFFER, 0, &buffer) ||
      !tt_fb_read_u8(fb, &tt, TENSOR_IS_VARIABLE, 0, &is_variable)) {
    tt_format(err, n, "tensor %u: %s", i, why(fb));
    return TT_ERR_MODEL;
  }
  t->type = type;
  size_t esize = type_size(t->type);
  if (esize == 0) {
    tt_format(err, n, "tensor %u has type %d; supported: FLOAT32, INT32, UINT8, INT64, BOOL, "
              "INT16, INT8", i, t->type);
    return TT_ERR_UNSUPPORTED;
  }
  if (shape.len > TT_MAX_RANK) {
    tt_format(err, n, "tensor %u has rank %u; at most %d is supported", i, shape.len, TT_MAX_RANK);
    return TT_ERR_UNSUPPORTED;
  }
  t->rank = (int8_t)shape.len; /* <= TT_MAX_RANK */
  uint64_t count = 1;
  for (int32_t d = 0; d < t->rank; ++d) {
    int32_t dim = tt_fb_vec_i32(fb, &shape, (uint32_t)d);
    if (dim < 0) {
      tt_format(err, n, "tensor %u has negative dimension %d (dynamic shapes are not supported)",
                i, dim);
      return TT_ERR_MODEL;
    }
    t->dims[d] = dim;
    count *= (uint64_t)dim; /* each factor < 2^31 and the running product is capped below */
    if (count * esize > TT_MAX_BYTES) {
      tt_format(err, n, "tensor %u is too large (more than %u bytes)", i, TT_MAX_BYTES);
      return TT_ERR_UNSUPPORTED;
    }
  }
  t->bytes = (uint32_t)(count * esize); /* <= TT_MAX_BYTES */

  if (full) {
    /* Features we do not implement must not be silently ignored. */
    size_t pos;
    int r = tt_fb_field_pos(fb, &tt, TENSOR_SPARSITY, 4, &pos);
    if (r != 0) {
      tt_format(err, n, r < 0 ? "tensor %u: malformed sparsity field" :
                "tensor %u is sparse; sparse tensors are not supported", i);
      return r < 0 ? TT_ERR_MODEL : TT_ERR_UNSUPPORTED;
    }
    uint32_t external;
    if (!tt_fb_read_u32(fb, &tt, TENSOR_EXTERNAL_BUFFER, 0, &external)) {
      tt_format(err, n, "tensor %u: %s", i, why(fb));
      return TT_ERR_MODEL;
    }
    if (external != 0) {
      tt_format(err, n, "tensor %u uses external buffer %u; external buffers are not supported",
                i, external);
      return TT_ERR_UNSUPPORTED;
    }
  }

  /* Buffer: constant data lives in the model, read in place. */
  if (buffer >= m->buffers.len) {
    tt_format(err, n, "tensor %u refers to buffer %u of %u", i, buffer, m->buffers.len);
    return TT_ERR_MODEL;
  }
  if (!tt_fb_vector_table(fb, &m->buffers, buffer, &buf) ||
      !vec_or_empty(fb, &buf, BUFFER_DATA, 1, &data)) {
    tt_format(err, n, "tensor %u, buffer %u: %s", i, buffer, why(fb));
    return TT_ERR_MODEL;
  }
  if (full) {
    uint64_t offset, size;
    if (!tt_fb_read_u64(fb, &buf, BUFFER_OFFSET, 0, &offset) ||
        !tt_fb_read_u64(fb, &buf, BUFFER_SIZE, 0, &size)) {
      tt_format(err, n, "tensor %u, buffer %u: %s", i, buffer, why(fb));
      return TT_ERR_MODEL;
    }
    if (offset > 1) {
      tt_format(err, n, "tensor %u: buffer %u stores its data outside the flatbuffer (offset "
                "%llu, size %llu); such models (> 2 GB form) are not supported", i, buffer,
                (unsigned long long)offset, (unsigned long long)size);
      return TT_ERR_UNSUPPORTED;
    }
  }
  if (data.len > 0) {
    if (data.len != t->bytes) {
      tt_format(err, n, "tensor %u has %lu bytes (%u elements of %u), its buffer %u has %u", i,
                (unsigned long)t->bytes, (unsigned)count, (unsigned)esize, buffer, data.len);
      return TT_ERR_MODEL;
    }
    const uint8_t *p = fb->buf + data.pos;
    /* Kernels read constants in place through typed pointers (a variable's initial value is
     * copied, so it may sit anywhere). */
    if (!is_variable && (uintptr_t)p % esize != 0) {
      tt_format(err, n, "tensor %u: constant data in buffer %u is not %u-byte aligned", i, buffer,
                (unsigned)esize);
      return TT_ERR_MODEL;
    }
    t->data = (void *)(uintptr_t)p; /* read-only: constants are never op outputs */
    t->is_constant = 1;
  }
  if (is_variable) {
    /* data stays the initial value in the model (NULL: zeros) until the engine copies it */
    t->is_variable = 1;
    t->is_constant = 0;
  }

  /* Quantization (optional). */
  int r = tt_fb_read_table(fb, &tt, TENSOR_QUANT, &q);
  if (r < 0) {
    tt_format(err, n, "tensor %u quantization: %s", i, why(fb));
    return TT_ERR_MODEL;
  }
  if (r > 0) {
    tt_fb_vector scale, zp;
    int32_t axis;
    if (!vec_or_empty(fb, &q, QUANT_SCALE, 4, &scale) ||
        !vec_or_empty(fb, &q, QUANT_ZERO_POINT, 8, &zp) ||
        !tt_fb_read_i32(fb, &q, QUANT_DIMENSION, 0, &axis)) {
      tt_format(err, n, "tensor %u quantization: %s", i, why(fb));
      return TT_ERR_MODEL;
    }
    if (scale.len > 0) {
      if (zp.len != 0 && zp.len != 1 && zp.len != scale.len) {
        tt_format(err, n, "tensor %u has %u scales but %u zero points", i, scale.len, zp.len);
        return TT_ERR_MODEL;
      }
      if (axis < 0) {
        tt_format(err, n, "tensor %u has quantized_dimension %d", i, axis);
        return TT_ERR_MODEL;
      }
      /* person_detect has quantized_dimension=3 on 1-D tensors; TFLM tolerates it, so do we. */
      if (axis >= t->rank) axis = 0;
      if (scale.len > 1 && (t->rank == 0 || (uint32_t)t->dims[axis] != scale.len)) {
        tt_format(err, n, "tensor %u has %u per-channel scales but dimension %d has size %d", i,
                  scale.len, axis, t->rank ? t->dims[axis] : 0);
        return TT_ERR_MODEL;
      }
      t->num_quant = (int32_t)scale.len;
      t->quant_axis = (int8_t)axis; /* < rank */
      /* Point at the length prefix: the accessors read the count from the model. */
      t->scale_vec = fb->buf + scale.pos - 4;
      t->zero_point_vec = zp.len ? fb->buf + zp.pos - 4 : NULL;
    }
  }
  return TT_OK;
}

tt_status tt_model_tensor(tt_model *m, uint32_t i, tt_tensor *t, char *err, size_t n) {
  return parse_tensor(m, i, t, err, n, 1);
}

int tt_model_tensor_view(tt_model *m, uint32_t i, tt_tensor *t) {
  return i < m->tensors.len && parse_tensor(m, i, t, NULL, 0, 0) == TT_OK;
}

/* Operator i; `full` as for parse_tensor (without it: no opcode, custom code or index checks,
 * builtin_code unset). */
static tt_status parse_op(tt_model *m, uint32_t i, tt_model_opinfo *op, char *err, size_t n,
                          int full) {
  tt_fb *fb = &m->fb;
  tt_fb_table ot, code;
  uint32_t opcode_index;
  memset(op, 0, sizeof *op);
  if (!tt_fb_vector_table(fb, &m->operators, i, &ot) ||
      !tt_fb_read_u32(fb, &ot, OP_OPCODE_INDEX, 0, &opcode_index) ||
      !vec_or_empty(fb, &ot, OP_INPUTS, 4, &op->inputs) ||
      !vec_or_empty(fb, &ot, OP_OUTPUTS, 4, &op->outputs) ||
      !tt_fb_read_u8(fb, &ot, OP_OPTIONS_TYPE, 0, &op->options_type)) {
    tt_format(err, n, "op %u: %s", i, why(fb));
    return TT_ERR_MODEL;
  }
  op->opcode_index = opcode_index;
  int r = tt_fb_read_table(fb, &ot, OP_OPTIONS, &op->options);
  if (r < 0) {
    tt_format(err, n, "op %u builtin options: %s", i, why(fb));
    return TT_ERR_MODEL;
  }
  op->has_options = r > 0;
  if (tt_fb_read_vector(fb, &ot, OP_CUSTOM_OPTIONS, 1, &op->custom_options) < 0) {
    tt_format(err, n, "op %u custom options: %s", i, why(fb));
    return TT_ERR_MODEL;
  }
  if (!full) return TT_OK;
  uint8_t custom_format;
  uint64_t large_offset;
  if (!tt_fb_read_u8(fb, &ot, OP_CUSTOM_OPTIONS_FORMAT, 0, &custom_format) ||
      !tt_fb_read_u64(fb, &ot, OP_LARGE_CUSTOM_OPTIONS_OFFSET, 0, &large_offset)) {
    tt_format(err, n, "op %u custom options: %s", i, why(fb));
    return TT_ERR_MODEL;
  }
  if (large_offset > 1) {
    tt_format(err, n, "op %u stores its custom options outside the flatbuffer; not supported", i);
    return TT_ERR_UNSUPPORTED;
  }
  if (custom_format != 0) {
    tt_format(err, n, "op %u has custom options format %u; only FLEXBUFFERS (0) is supported", i,
              custom_format);
    return TT_ERR_UNSUPPORTED;
  }
  if (opcode_index >= m->opcodes.len) {
    tt_format(err, n, "op %u has opcode index %u of %u", i, opcode_index, m->opcodes.len);
    return TT_ERR_MODEL;
  }
  uint8_t deprecated;
  int32_t builtin;
  if (!tt_fb_vector_table(fb, &m->opcodes, opcode_index, &code) ||
      !tt_fb_read_u8(fb, &code, OPCODE_DEPRECATED_BUILTIN, 0, &deprecated) ||
      !tt_fb_read_i32(fb, &code, OPCODE_BUILTIN, 0, &builtin) ||
      tt_fb_read_string(fb, &code, OPCODE_CUSTOM, &op->custom_code) < 0) {
    tt_format(err, n, "operator code %u: %s", opcode_index, why(fb));
    return TT_ERR_MODEL;
  }
  /* As TFLite's GetBuiltinCode: the larger of the two fields (old files only set the first). */
  int32_t dep = (int8_t)deprecated;
  op->builtin_code = builtin > dep ? builtin : dep;
  if (op->builtin_code != BUILTIN_CUSTOM) op->custom_code.len = 0;
  if (op->builtin_code == BUILTIN_CUSTOM && op->custom_code.len == 0) op->custom_code.pos = 0;
  char what[32];
  tt_format(what, sizeof what, "op %u input", i);
  tt_status s = check_indices(m, &op->inputs, -1, what, err, n);
  if (s != TT_OK) return s;
  tt_format(what, sizeof what, "op %u output", i);
  return check_indices(m, &op->outputs, 0, what, err, n);
}

tt_status tt_model_op(tt_model *m, uint32_t i, tt_model_opinfo *op, char *err, size_t n) {
  return parse_op(m, i, op, err, n, 1);
}

int tt_model_op_view(tt_model *m, uint32_t i, tt_model_opinfo *op) {
  return i < m->operators.len && parse_op(m, i, op, NULL, 0, 0) == TT_OK;
}

int tt_model_tensor_name(tt_model *m, uint32_t i, const char **name) {
  tt_fb_table tt;
  tt_fb_vector v;
  *name = "";
  if (i >= m->tensors.len || !tt_fb_vector_table(&m->fb, &m->tensors, i, &tt)) return -1;
  int r = tt_fb_read_string(&m->fb, &tt, TENSOR_NAME, &v);
  if (r > 0) *name = (const char *)m->fb.buf + v.pos;
  return r;
}

int tt_model_metadata(tt_model *m, const char *name, tt_fb_vector *data, char *err, size_t n) {
  tt_fb *fb = &m->fb;
  tt_fb_table root, md, buf;
  tt_fb_vector list, key;
  if (!tt_fb_root(fb, NULL, &root)) return -1; /* opened before: cannot fail */
  int r = tt_fb_read_vector(fb, &root, MODEL_METADATA, 4, &list);
  if (r <= 0) {
    if (r < 0) tt_format(err, n, "model metadata: %s", why(fb));
    return r;
  }
  size_t len = strlen(name);
  for (uint32_t k = 0; k < list.len; ++k) {
    uint32_t buffer;
    if (!tt_fb_vector_table(fb, &list, k, &md) || tt_fb_read_string(fb, &md, METADATA_NAME, &key) < 0 ||
        !tt_fb_read_u32(fb, &md, METADATA_BUFFER, 0, &buffer)) {
      tt_format(err, n, "model metadata %u: %s", k, why(fb));
      return -1;
    }
    if (key.len != len || memcmp(fb->buf + key.pos, name, len) != 0) continue;
    if (buffer >= m->buffers.len) {
      tt_format(err, n, "metadata '%s' refers to buffer %u of %u", name, buffer, m->buffers.len);
      return -1;
    }
    data->pos = data->len = 0;
    if (!tt_fb_vector_table(fb, &m->buffers, buffer, &buf) ||
        tt_fb_read_vector(fb, &buf, BUFFER_DATA, 1, data) < 0) {
      tt_format(err, n, "metadata '%s', buffer %u: %s", name, buffer, why(fb));
      return -1;
    }
    return 1; /* an absent data vector reads as length 0 */
  }
  return 0;
}

#define REQUANT_KEY "tt_requant"
#define REQUANT_VERSION 1
#define REQUANT_HEADER 2 /* int32: version, number of entries */
#define REQUANT_ENTRY 4  /* int32: op index, channels, multiplier offset, shift offset */

tt_status tt_model_requant_table(tt_model *m, tt_fb_vector *table, char *err, size_t n) {
  const tt_fb *fb = &m->fb;
  tt_fb_vector md;
  table->pos = table->len = 0;
  int r = tt_model_metadata(m, REQUANT_KEY, &md, err, n);
  if (r <= 0) return r < 0 ? TT_ERR_MODEL : TT_OK;
  /* Ops read the arrays in place as int32: the bytes must be 4-byte aligned in memory. */
  if (md.len < 4 * REQUANT_HEADER || md.len % 4 != 0 || (uintptr_t)(fb->buf + md.pos) % 4 != 0) {
    tt_format(err, n, REQUANT_KEY " metadata has %u bytes at a %s address; expected 4-byte "
              "aligned int32 [version, entries, ...]", md.len,
              (uintptr_t)(fb->buf + md.pos) % 4 ? "misaligned" : "4-byte aligned");
    return TT_ERR_MODEL;
  }
  const int32_t version = (int32_t)tt_fb_u32(fb, md.pos);
  const uint32_t count = tt_fb_u32(fb, md.pos + 4);
  if (version != REQUANT_VERSION) {
    tt_format(err, n, REQUANT_KEY " version %d: only version %d is supported", version,
              REQUANT_VERSION);
    return TT_ERR_UNSUPPORTED;
  }
  const uint32_t words = md.len / 4;
  if (count > (words - REQUANT_HEADER) / REQUANT_ENTRY) {
    tt_format(err, n, REQUANT_KEY " has %u entries but only %u bytes", count, md.len);
    return TT_ERR_MODEL;
  }
  int64_t previous = -1;
  for (uint32_t k = 0; k < count; ++k) {
    const size_t e = md.pos + 4u * (REQUANT_HEADER + REQUANT_ENTRY * (size_t)k);
    const int32_t op = (int32_t)tt_fb_u32(fb, e), channels = (int32_t)tt_fb_u32(fb, e + 4);
    const uint32_t mult = tt_fb_u32(fb, e + 8), shift = tt_fb_u32(fb, e + 12);
    /* Ascending op indices: one entry per op, found by a scan that may stop early. */
    if (op <= previous || (uint32_t)op >= m->operators.len) {
      tt_format(err, n, REQUANT_KEY " entry %u: op %d (the model has %u ops; entries must be "
                "in ascending op order)", k, op, m->operators.len);
      return TT_ERR_MODEL;
    }
    previous = op;
    const uint64_t bytes = 4u * (uint64_t)(channels > 0 ? channels : 0);
    if (channels <= 0 || mult % 16 != 0 || shift % 16 != 0 || mult + bytes > md.len ||
        shift + bytes > md.len) {
      tt_format(err, n, REQUANT_KEY " entry %u (op %d): %d channels with arrays at offsets %u "
                "and %u; expected > 0 channels and 16-byte aligned arrays within its %u bytes", k,
                op, channels, mult, shift, md.len);
      return TT_ERR_MODEL;
    }
  }
  *table = md;
  return TT_OK;
}
