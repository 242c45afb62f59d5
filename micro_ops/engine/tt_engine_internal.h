/* Engine internals shared by tt_engine.c, tt_model.c, tt_planner.c and tt_op_resolver.c. */
#ifndef TT_ENGINE_INTERNAL_H
#define TT_ENGINE_INTERNAL_H

#include "tt_engine.h"
#include "tt_flatbuffer.h"
#include "tt_flexbuffer.h"

#define TT_ERR_LEN 384
/* The engine's own message buffer (errors of invoke and reset; creation errors go to the
 * caller's buffer): "op N (NAME): " and a static message. */
#define TT_ENGINE_ERR_LEN 192
#define TT_BUILTIN_CUSTOM 32
/* Largest tensor or scratch buffer: kernels index with int32. */
#define TT_MAX_BYTES 0x7fffffffu
/* Inputs + outputs of one op: the per-call view pool (the MAC gradient ops have 15 + 3). */
#define TT_MAX_OP_TENSORS 24

/* ---- TFLite schema access (tt_model.c) ---- */
typedef struct {
  tt_fb fb;
  tt_fb_vector opcodes, buffers, tensors, operators, inputs, outputs;
} tt_model;

typedef struct {
  int32_t builtin_code;
  uint32_t opcode_index;
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
/* Tensor i of a model tt_model_tensor accepted: the same view without the checks that cannot
 * fail again (every read is still bounds-checked; 0 if one fails). */
int tt_model_tensor_view(tt_model *m, uint32_t i, tt_tensor *t);
/* Operator i: opcode, input/output indices (validated against the tensor count), options. */
tt_status tt_model_op(tt_model *m, uint32_t i, tt_model_opinfo *op, char *err, size_t n);
/* Operator i of a model tt_model_op accepted: opcode index, inputs, outputs, options type,
 * options table and custom options (bounds-checked reads, 0 if one fails). */
int tt_model_op_view(tt_model *m, uint32_t i, tt_model_opinfo *op);
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
/* Id (1 .. 255) of the registration of a builtin code, or of a CUSTOM op by its custom_code
 * (len bytes, not NUL-terminated); 0 if unsupported. */
uint8_t tt_resolve(int32_t builtin_code, const char *custom_code, size_t len);
/* Registration of an id from tt_resolve, and the BuiltinOptions union type its options use
 * (0 for CUSTOM ops). */
const tt_op_registration *tt_registration(uint8_t id, uint8_t *options_type);
/* Comma-separated custom codes of the supported custom ops, into buf (always NUL-terminated). */
void tt_supported_custom_ops(char *buf, size_t n);
const char *tt_builtin_name(int32_t builtin_code); /* NULL if unknown */
/* Comma-separated names of the supported ops, into buf (always NUL-terminated). */
void tt_supported_ops(char *buf, size_t n);

/* ---- engine state ----
 *
 * The engine keeps no tt_tensor and no op context in its arena: a tensor's view is rebuilt
 * from the (validated, read-only) model whenever an op asks for it, its memory found from
 * the model's offline plan, or from the small `located` table (variables and tensors planned
 * online), and an op's context lives on the stack for one prepare or eval call. Every arena
 * structure holds offsets and fixed-width integers only, so its size is the same on a 32-bit
 * Cortex-M as on a 64-bit host: the bytes the host reports are the device's. */

/* A pointer stored in 8 bytes on every target (same layout on 32- and 64-bit). */
typedef union {
  const uint8_t *p;
  uint64_t bits;
} tt_ptr64;

typedef enum { TT_PHASE_LOAD, TT_PHASE_PREPARE, TT_PHASE_READY } tt_phase;

/* Where a variable or online-planned tensor lives: a variable's offset from the arena base,
 * a planned tensor's from the planned region (TT_NO_OFFSET: no memory, an unused tensor). */
typedef struct {
  uint32_t tensor;
  uint32_t offset;
} tt_located;

/* One scratch request (tt_op_request_scratch), a list in the arena; no built-in op asks. */
typedef struct {
  uint32_t op, bytes, offset; /* offset in the planned region */
  uint32_t next;              /* next record's offset from the arena base, 0 at the end */
} tt_scratch;

#define TT_NO_OFFSET 0xffffffffu
#define TT_MAX_TENSORS 0xfffeu

struct tt_engine {
  tt_ptr64 model_bytes; /* read in place; must outlive the engine */
  uint32_t model_size;
  tt_fb_vector opcodes, buffers, tensors, operators, inputs, outputs; /* in the model */
  tt_fb_vector requant; /* validated "tt_requant" metadata bytes, len 0 if none */
  tt_fb_vector offline; /* OfflineMemoryAllocation int32 offsets (one per tensor), len 0 if none */
  /* Arena, in bytes from base (the 16-byte aligned start of the usable arena). */
  uint32_t pad;        /* bytes skipped to align the arena */
  uint32_t capacity;   /* usable bytes from base */
  uint32_t persistent; /* bytes allocated from base */
  uint32_t planned;    /* peak of the planned region */
  uint32_t used;       /* tt_engine_arena_used */
  uint32_t region;     /* start of the planned region */
  uint32_t op_data;    /* uint32 per op: its data's offset from base (tt_op_set_data), 0 none */
  uint32_t op_reg;     /* uint8 per operator code: registration id (tt_resolve) */
  uint32_t located;    /* tt_located per variable / online tensor, ascending tensor index */
  uint32_t num_located;
  uint32_t scratch;    /* first tt_scratch, 0 if none */
  int32_t num_tensors, num_ops;
  uint8_t phase;       /* tt_phase */
  uint8_t poison;      /* tt_engine_set_poison */
  char err[TT_ENGINE_ERR_LEN];
};

static inline uint8_t *tt_engine_base(const tt_engine *e) { return (uint8_t *)(uintptr_t)e; }

/* The model accessors (a tt_model on the caller's stack). */
void tt_engine_model(const tt_engine *e, tt_model *m);

/* Persistent bump allocation from the arena (align: power of two). NULL if full. */
void *tt_engine_alloc(tt_engine *e, size_t bytes, size_t align);

/* Offset of tensor t's planned memory from the region start, with the tensor's parsed view
 * v (non-constant, non-variable); TT_NO_OFFSET if it has none. */
uint32_t tt_engine_planned_offset(const tt_engine *e, const tt_model *m, const tt_tensor *v);
/* The tt_located entry of tensor t, NULL if none. */
tt_located *tt_engine_located(const tt_engine *e, int32_t t);
/* Is tensor t read or written by an op, or a graph input or output? */
int tt_engine_tensor_used(const tt_engine *e, const tt_model *m, int32_t t);

/* ---- planner (tt_planner.c) ---- */
/* TFLM's OfflineMemoryAllocation metadata, if any: *offsets gets the int32 offset per tensor
 * (len = the tensor count; len 0 if the model has none), header validated. The offsets are
 * validated by tt_plan. */
tt_status tt_plan_offline_table(tt_model *m, tt_fb_vector *offsets, char *err, size_t n);
/* Bytes of temporary memory the planner needs (taken from the arena's free tail). */
size_t tt_plan_temp_bytes(int32_t num_tensors, int32_t num_ops);
/* Lifetimes, aliasing and greedy placement. Sets *peak (a 16-byte multiple) and, if the
 * planned region fits after the persistent allocations, the offsets of the online-planned
 * tensors (in `located`) and of every scratch request; else TT_ERR_ARENA with the size
 * needed. `temp` must hold tt_plan_temp_bytes and be 8-byte aligned. */
tt_status tt_plan(tt_engine *e, void *temp, size_t *peak, char *err, size_t n);
/* With poisoning on: after op i, fill the memory of the planned tensors whose lifetime ended
 * at op i and op i's scratch with 0xA5 (except bytes a tensor still live after op i uses). */
void tt_plan_poison_after(tt_engine *e, int32_t i);
/* Offset of tensor t's memory in the planned region, -1 if it has none. */
int64_t tt_plan_offset(const tt_engine *e, int32_t t);

/* snprintf into err (NULL-safe). */
void tt_format(char *err, size_t n, const char *fmt, ...);

#endif /* TT_ENGINE_INTERNAL_H */
