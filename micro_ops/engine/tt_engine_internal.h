/* Engine internals shared by tt_engine.c, tt_model.c, tt_planner.c and tt_op_resolver.c. */
#ifndef TT_ENGINE_INTERNAL_H
#define TT_ENGINE_INTERNAL_H

#include "tt_engine.h"
#include "tt_flatbuffer.h"
#include "tt_flexbuffer.h"

#define TT_ERR_LEN 384
#define TT_BUILTIN_CUSTOM 32
/* Largest tensor or scratch buffer: kernels index with int32. */
#define TT_MAX_BYTES 0x7fffffffu

/* ---- TFLite schema access (tt_model.c) ---- */
typedef struct {
  tt_fb fb;
  tt_fb_table subgraph;
  tt_fb_vector opcodes, buffers, tensors, operators, inputs, outputs;
} tt_model;

typedef struct {
  int32_t builtin_code;
  tt_fb_vector custom_code; /* len 0 if none */
  tt_fb_vector custom_options; /* FlexBuffer bytes, len 0 if none */
  tt_fb_vector inputs, outputs;
  uint8_t options_type;
  int32_t has_options;
  tt_fb_table options;
} tt_model_opinfo;

/* Opens the model and subgraph 0; validates graph input/output indices. */
tt_status tt_model_open(tt_model *m, const uint8_t *buf, size_t size, char *err, size_t n);
/* Tensor i: shape, type, constant data, quantization, all validated. */
tt_status tt_model_tensor(tt_model *m, uint32_t i, tt_tensor *t, char *err, size_t n);
/* Operator i: opcode, input/output indices (validated against the tensor count), options. */
tt_status tt_model_op(tt_model *m, uint32_t i, tt_model_opinfo *op, char *err, size_t n);
/* Name of tensor i ("" if none): 1 present, 0 absent, -1 malformed. */
int tt_model_tensor_name(tt_model *m, uint32_t i, const char **name);
/* Data of the model metadata entry `name`: 1 found (*data set; len 0 if its buffer is
 * empty), 0 absent, -1 malformed (err set). */
int tt_model_metadata(tt_model *m, const char *name, tt_fb_vector *data, char *err, size_t n);
/* The "tt_requant" metadata (per-channel requantization constants of the forward MAC ops,
 * precomputed in flash; docs/train-format.md): header, entries and arrays bounds- and
 * alignment-checked. *table gets len 0 if the model has none. */
tt_status tt_model_requant_table(tt_model *m, tt_fb_vector *table, char *err, size_t n);

/* ---- op resolver (tt_op_resolver.c) ---- */
/* Registration for a builtin code and the BuiltinOptions union type its options use. */
const tt_op_registration *tt_resolve_builtin(int32_t builtin_code, uint8_t *options_type);
/* Registration of a CUSTOM op by its custom_code (len bytes, not NUL-terminated); NULL if none. */
const tt_op_registration *tt_resolve_custom(const char *code, size_t len);
/* Comma-separated custom codes of the supported custom ops, into buf (always NUL-terminated). */
void tt_supported_custom_ops(char *buf, size_t n);
const char *tt_builtin_name(int32_t builtin_code); /* NULL if unknown */
/* Comma-separated names of the supported ops, into buf (always NUL-terminated). */
void tt_supported_ops(char *buf, size_t n);

/* ---- engine state (all in the arena) ---- */
typedef enum { TT_PHASE_LOAD, TT_PHASE_PREPARE, TT_PHASE_READY } tt_phase;

/* One per op, in the arena: kept small (the options are re-read from the model on demand). */
struct tt_op_ctx {
  tt_engine *engine;
  const tt_op_registration *reg;
  void *data;
  tt_fb_vector inputs, outputs; /* int32 tensor indices in the model, validated */
  union {
    /* Builtin op: start of its options table, 0 if absent (no table can start at 0); the
     * accessors re-open it (its vtable was validated at load). */
    uint32_t options_pos;
    /* CUSTOM op (which has no builtin options): the custom options bytes (len 0: none),
     * validated at load; the accessors re-open the map rather than keep a tt_flex_map
     * (48 bytes) per op in the arena. */
    tt_fb_vector custom_options;
  } opt;
  uint32_t scratch_bytes;
  uint32_t scratch_offset; /* in the planned region */
  /* The op's index is its position in engine->ops (tt_op_index). */
};

/* e->slot[t] for a tensor held in e->tensors; constants are rebuilt on demand instead. */
#define TT_LAZY_CONSTANT 0xffffu
#define TT_MAX_TENSORS 0xfffeu

struct tt_engine {
  tt_model model;
  uint8_t *base;     /* 16-byte aligned start of the usable arena */
  size_t capacity;   /* usable bytes from base */
  size_t pad;        /* bytes skipped to align the arena */
  size_t persistent; /* bytes allocated from base */
  size_t planned;    /* peak of the planned region */
  int32_t poison;    /* tt_engine_set_poison */
  size_t used;       /* tt_engine_arena_used */
  uint8_t *region;   /* start of the planned region */
  tt_phase phase;
  int32_t num_tensors, num_ops;
  /* Only activations (and constant graph outputs) keep a tt_tensor: a constant's is rebuilt
   * from the model into const_view[input position] when an op asks for it, which saves
   * ~80 bytes of arena per weight/bias tensor. */
  uint16_t *slot;         /* per model tensor: index into tensors, or TT_LAZY_CONSTANT */
  tt_tensor *tensors;     /* held tensors */
  tt_tensor *const_view;  /* one per op input position */
  int32_t num_const_view;
  tt_op_ctx *ops;
  tt_fb_vector requant; /* validated "tt_requant" metadata bytes, len 0 if none */
  /* op-reported problems, turned into messages by the engine */
  const char *op_message;
  size_t op_alloc_failed;   /* bytes of a failed tt_op_alloc_persistent, 0 if none */
  int32_t option_malformed; /* 1 + field index of a malformed option, 0 if none */
  const char *custom_malformed; /* key of a bad custom option, NULL if none */
  char err[TT_ERR_LEN];
};

/* The held tensor t, or NULL for a (lazy) constant. */
static inline tt_tensor *tt_engine_held(const tt_engine *e, int32_t t) {
  return e->slot[t] == TT_LAZY_CONSTANT ? NULL : &e->tensors[e->slot[t]];
}

/* Persistent bump allocation from the arena (align: power of two). NULL if full. */
void *tt_engine_alloc(tt_engine *e, size_t bytes, size_t align);

/* ---- planner (tt_planner.c) ---- */
/* Bytes of temporary memory the planner needs (taken from the arena's free tail). */
size_t tt_plan_temp_bytes(int32_t num_tensors, int32_t num_ops);
/* Lifetimes, aliasing and greedy placement. Sets *peak (a 16-byte multiple) and, if the
 * planned region fits after the persistent allocations, every activation's data pointer and
 * every op's scratch pointer; else TT_ERR_ARENA with the size needed. `temp` must hold
 * tt_plan_temp_bytes and be 8-byte aligned. */
tt_status tt_plan(tt_engine *e, void *temp, size_t *peak, char *err, size_t n);
/* With poisoning on: after op i, fill the memory of the planned tensors whose lifetime ended
 * at op i and op i's scratch with 0xA5 (except bytes a tensor still live after op i uses). */
void tt_plan_poison_after(tt_engine *e, int32_t i);
/* Offset of tensor t's memory in the planned region, -1 if it has none. */
int64_t tt_plan_offset(const tt_engine *e, int32_t t);

/* snprintf into err (NULL-safe). */
void tt_format(char *err, size_t n, const char *fmt, ...);

#endif /* TT_ENGINE_INTERNAL_H */
