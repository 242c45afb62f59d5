/* tflm-train C engine: runs subgraph 0 of an int8 TFLite model.
 *
 * Everything the engine needs (its own state, tensors, op contexts, op persistent data and
 * the planned activation/scratch region) lives in the caller's arena; there is no malloc.
 * The model bytes are read in place and must outlive the engine. Every access to the model
 * is bounds-checked at creation: a malformed file returns TT_ERR_MODEL with a message, it is
 * never read out of bounds.
 *
 *   tt_engine *e;
 *   char err[256];
 *   if (tt_engine_create(model, model_size, arena, sizeof arena, &e, err, sizeof err) != TT_OK)
 *     puts(err);
 *   memcpy(tt_engine_input(e, 0)->data, image, tt_engine_input(e, 0)->bytes);
 *   tt_engine_invoke(e);
 *   const int8_t *logits = tt_engine_output(e, 0)->data;
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
size_t tt_engine_arena_persistent(const tt_engine *e); /* engine state + op data */
/* Peak of activations + scratch; with an OfflineMemoryAllocation plan, the extent of the
 * offline offsets plus what is planned online around them. */
size_t tt_engine_arena_planned(const tt_engine *e);

int32_t tt_engine_num_inputs(const tt_engine *e);
int32_t tt_engine_num_outputs(const tt_engine *e);
tt_tensor *tt_engine_input(tt_engine *e, int32_t i);  /* NULL if i is out of range */
tt_tensor *tt_engine_output(tt_engine *e, int32_t i); /* NULL if i is out of range */

/* Runs every op of subgraph 0 in order. Inputs are read from tt_engine_input(e, i)->data. */
tt_status tt_engine_invoke(tt_engine *e);

/* Restores every variable tensor (trainable parameters, training state) to its value in the
 * model. */
tt_status tt_engine_reset(tt_engine *e);

/* Tensors of subgraph 0 by model index (0 .. num_tensors-1). tt_engine_tensor gives read
 * access to any non-constant tensor (activations: valid while the engine keeps them alive;
 * variables: their current value, writable); NULL for constants and out-of-range i. */
int32_t tt_engine_num_tensors(const tt_engine *e);
tt_tensor *tt_engine_tensor(tt_engine *e, int32_t i);
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
