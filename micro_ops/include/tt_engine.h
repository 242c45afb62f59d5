/* tflm-train C engine: runs subgraph 0 of an int8 TFLite model.
 *
 * Everything the engine keeps (its small state, op persistent data, variables and the planned
 * activation/scratch region) lives in the caller's arena; there is no malloc. The model bytes
 * are read in place and must outlive the engine, unchanged. Every access to the model is
 * bounds-checked at creation: a malformed file returns TT_ERR_MODEL with a message, it is
 * never read out of bounds. Tensor views (tt_tensor) are rebuilt from the model on demand
 * into memory the caller provides; the engine keeps none.
 *
 *   tt_engine *e;
 *   tt_tensor in, out;
 *   char err[256];
 *   if (tt_engine_create(model, model_size, arena, sizeof arena, &e, err, sizeof err) != TT_OK)
 *     puts(err);
 *   tt_engine_input(e, 0, &in);
 *   memcpy(in.data, image, in.bytes);
 *   tt_engine_invoke(e);
 *   const int8_t *logits = tt_engine_output(e, 0, &out)->data;
 */
#ifndef TT_ENGINE_H
#define TT_ENGINE_H

#include "tt_common.h"
#include "tt_op.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_engine tt_engine;

/* Loads and validates the model, prepares every op and plans the arena. On failure *out is
 * NULL and err (if not NULL) holds a NUL-terminated message. The arena should be 16-byte
 * aligned; otherwise up to 15 bytes go to alignment. */
tt_status tt_engine_create(const uint8_t *model, size_t model_size, uint8_t *arena,
                           size_t arena_size, tt_engine **out, char *err, size_t err_size);

/* Arena bytes this engine needs: alignment padding + persistent allocations + the planned
 * region (or the planner's temporary memory if larger). A second create with exactly this
 * size (and an equally aligned arena) succeeds. */
size_t tt_engine_arena_used(const tt_engine *e);
/* Engine state + op data + variables. The engine stores offsets and fixed-width integers
 * only, so this is the same number on 32- and 64-bit targets. */
size_t tt_engine_arena_persistent(const tt_engine *e);
/* Peak of activations + scratch; with an OfflineMemoryAllocation plan, the extent of the
 * offline offsets plus what is planned online around them. */
size_t tt_engine_arena_planned(const tt_engine *e);

int32_t tt_engine_num_inputs(const tt_engine *e);
int32_t tt_engine_num_outputs(const tt_engine *e);
/* Fill *view with graph input / output i and return view; NULL if i is out of range. A
 * tensor's data stays at the same address for the engine's lifetime, so a view may be kept. */
tt_tensor *tt_engine_input(tt_engine *e, int32_t i, tt_tensor *view);
tt_tensor *tt_engine_output(tt_engine *e, int32_t i, tt_tensor *view);

/* Runs every op of subgraph 0 in order. Inputs are read from tt_engine_input(e, i, v)->data. */
tt_status tt_engine_invoke(tt_engine *e);

/* Number of ops of subgraph 0, and ops [first, first + count) only: calling it for 0..n-1 in
 * order, in any slices, is tt_engine_invoke (to time each op, as `tflm-train firmware
 * --profile` does). TT_ERR_ARG when the range is not within [0, num_ops). */
int32_t tt_engine_num_ops(const tt_engine *e);
tt_status tt_engine_invoke_ops(tt_engine *e, int32_t first, int32_t count);

/* Restores every variable tensor (trainable parameters, training state) to its value in the
 * model. */
tt_status tt_engine_reset(tt_engine *e);

/* Tensors of subgraph 0 by model index (0 .. num_tensors-1). tt_engine_tensor fills *view
 * with any non-constant tensor and returns view (activations: valid while the engine keeps
 * them alive, data NULL for a tensor no op uses; variables: their current value, writable);
 * NULL for constants and out-of-range i. */
int32_t tt_engine_num_tensors(const tt_engine *e);
tt_tensor *tt_engine_tensor(tt_engine *e, int32_t i, tt_tensor *view);
/* The tensor's name in the model ("" if none), and the first tensor with that name (-1). */
const char *tt_engine_tensor_name(const tt_engine *e, int32_t i);
int32_t tt_engine_find_tensor(const tt_engine *e, const char *name);
/* Offset of tensor i's memory from the start of the planned region; -1 if it has none
 * (constants, variables, unused tensors). */
int64_t tt_engine_tensor_offset(const tt_engine *e, int32_t i);

/* Debug: with poisoning on, after each op every planned tensor whose lifetime ended at that op
 * and the op's scratch are filled with 0xA5, so a plan that lets a live buffer be
 * overwritten changes the results. Off by default. */
void tt_engine_set_poison(tt_engine *e, int enabled);

/* Message of the last error of this engine ("" if none). */
const char *tt_engine_error(const tt_engine *e);
/* "TT_OK", "TT_ERR_MODEL", ... */
const char *tt_status_name(tt_status status);

#ifdef __cplusplus
}
#endif
#endif /* TT_ENGINE_H */
