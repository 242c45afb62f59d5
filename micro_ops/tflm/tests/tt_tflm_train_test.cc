// Trains a *.train.tflite inside TFLM's MicroInterpreter with the adapter and checks the
// same bits as the C engine: the loss of every step, the logits, and the checksum of every
// variable tensor (values from make_test_data.py, which runs the Python Trainer on the C
// engine). Also: Reset() restores the model's parameters, the learning rate set at run time
// changes the updates exactly as in the engine, a checkpoint round-trips and a corrupt one
// is rejected, the arena `tflm-train inspect` prints is enough.
#include <string.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/testing/micro_test.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tflm/tests/tt_tflm_test_data.h"
#include "tflm/tt_tflm.h"
#include "tflm/tt_tflm_trainer.h"

namespace {

// The builtin ops of the model's forward pass, plus every training op.
constexpr int kBuiltinOps = 5;
using Resolver = tflite::MicroMutableOpResolver<kBuiltinOps + tflm_train::kNumTrainingOps>;

// The arena `tflm-train inspect` prints for this model (TFLM arena line); the test proves
// it is enough. Kept in a static buffer, 16-byte aligned as TFLM wants.
#ifndef TT_TEST_ARENA_BYTES
#define TT_TEST_ARENA_BYTES 21008
#endif
alignas(16) uint8_t g_arena[TT_TEST_ARENA_BYTES];

TfLiteStatus AddOps(Resolver* r) {
  TF_LITE_ENSURE_STATUS(r->AddAdd());
  TF_LITE_ENSURE_STATUS(r->AddConv2D());
  TF_LITE_ENSURE_STATUS(r->AddDepthwiseConv2D());
  TF_LITE_ENSURE_STATUS(r->AddFullyConnected());
  TF_LITE_ENSURE_STATUS(r->AddMean());
  return tflm_train::AddTrainingOps(r);
}

// A checkpoint kept in RAM through the write/read callbacks.
struct Memory {
  uint8_t bytes[4096];
  size_t size, pos;
};
bool WriteMem(void* user, const void* data, size_t n) {
  Memory* m = static_cast<Memory*>(user);
  if (m->size + n > sizeof m->bytes) return false;
  memcpy(m->bytes + m->size, data, n);
  m->size += n;
  return true;
}
bool ReadMem(void* user, void* data, size_t n) {
  Memory* m = static_cast<Memory*>(user);
  if (m->pos + n > m->size) return false;
  memcpy(data, m->bytes + m->pos, n);
  m->pos += n;
  return true;
}
Memory g_checkpoint;

// The OfflineMemoryAllocation words [version, subgraph, n, offset_0 ...] of the model.
const int32_t* OfflinePlan(const tflite::Model* model) {
  if (model->metadata() == nullptr) return nullptr;
  for (uint32_t i = 0; i < model->metadata()->size(); ++i) {
    const tflite::Metadata* m = model->metadata()->Get(i);
    const flatbuffers::String* name = m->name();
    if (name == nullptr || name->size() != 23 ||
        memcmp(name->data(), "OfflineMemoryAllocation", 23) != 0)
      continue;
    const tflite::Buffer* b = model->buffers()->Get(m->buffer());
    return b->data() ? reinterpret_cast<const int32_t*>(b->data()->data()) : nullptr;
  }
  return nullptr;
}

}  // namespace

TF_LITE_MICRO_TESTS_BEGIN

TF_LITE_MICRO_TEST(TrainsInMicroInterpreterLikeTheEngine) {
  const tflite::Model* model = tflite::GetModel(g_tt_test_model);
  Resolver resolver;
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, AddOps(&resolver));
  tflite::MicroInterpreter interpreter(model, resolver, g_arena, sizeof g_arena);
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, interpreter.AllocateTensors());
  MicroPrintf("arena: %d bytes used of %d", static_cast<int>(interpreter.arena_used_bytes()),
              static_cast<int>(sizeof g_arena));

  tflm_train::Trainer trainer(model, &interpreter);
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.Begin());

  // TFLM honours our planner's OfflineMemoryAllocation: every planned tensor sits at its
  // offset from the start of TFLM's planned region (the lowest planned address).
  const int32_t* plan = OfflinePlan(model);
  TF_LITE_MICRO_EXPECT(plan != nullptr);
  const int num_tensors = static_cast<int>(model->subgraphs()->Get(0)->tensors()->size());
  TF_LITE_MICRO_EXPECT_EQ(num_tensors, plan[2]);
  const uint8_t* base = nullptr;
  int32_t base_offset = 0, planned = 0;
  for (int i = 0; i < num_tensors; ++i) {
    const uint8_t* p = static_cast<const uint8_t*>(trainer.Tensor(i)->data.data);
    if (plan[3 + i] < 0 || p == nullptr) continue;
    if (base == nullptr || p < base) {
      base = p;
      base_offset = plan[3 + i];
    }
  }
  for (int i = 0; i < num_tensors; ++i) {
    const uint8_t* p = static_cast<const uint8_t*>(trainer.Tensor(i)->data.data);
    if (plan[3 + i] < 0 || p == nullptr) continue;
    TF_LITE_MICRO_EXPECT_EQ(plan[3 + i] - base_offset, static_cast<int32_t>(p - base));
    ++planned;
  }
  MicroPrintf("%d tensors at their offline-planned offsets", static_cast<int>(planned));
  TF_LITE_MICRO_EXPECT(planned > 10);
  TF_LITE_MICRO_EXPECT_EQ(kTtTestClasses, trainer.NumClasses());
  TF_LITE_MICRO_EXPECT_EQ(kTtTestInitialChecksum, trainer.ParameterChecksum());

  for (int k = 0; k < kTtTestSteps; ++k) {
    TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.Step(g_tt_test_images[k], g_tt_test_labels[k]));
    MicroPrintf("step %d: loss %d (engine %d)", k, static_cast<int>(trainer.LossQ16()),
                static_cast<int>(g_tt_test_losses[k]));
    TF_LITE_MICRO_EXPECT_EQ(g_tt_test_losses[k], trainer.LossQ16());
  }
  TF_LITE_MICRO_EXPECT_EQ(kTtTestTrainedChecksum, trainer.ParameterChecksum());

  // Inference from the same interpreter: no label, nothing changes.
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.Infer(g_tt_test_images[0]));
  for (int c = 0; c < kTtTestClasses; ++c)
    TF_LITE_MICRO_EXPECT_EQ(g_tt_test_logits[c], trainer.Logits()[c]);
  TF_LITE_MICRO_EXPECT_EQ(0, trainer.LossQ16());
  TF_LITE_MICRO_EXPECT_EQ(kTtTestTrainedChecksum, trainer.ParameterChecksum());

  // Checkpoint of the trained state.
  g_checkpoint.size = g_checkpoint.pos = 0;
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.SaveParameters(WriteMem, &g_checkpoint));
  TF_LITE_MICRO_EXPECT_EQ(trainer.CheckpointBytes(), g_checkpoint.size);

  // Reset() restores the model's values (TFLM alone would zero them).
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.Reset());
  TF_LITE_MICRO_EXPECT_EQ(kTtTestInitialChecksum, trainer.ParameterChecksum());

  // The learning rate set at run time: the pair the compiler's rule gives, same updates.
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.SetLearningRate(kTtTestLr));
  TF_LITE_MICRO_EXPECT_EQ(kTtTestLrMultiplier, trainer.LearningRateMultiplier());
  TF_LITE_MICRO_EXPECT_EQ(kTtTestLrShift, trainer.LearningRateShift());
  for (int k = 0; k < kTtTestLrSteps; ++k) {
    TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.Step(g_tt_test_images[k], g_tt_test_labels[k]));
    TF_LITE_MICRO_EXPECT_EQ(g_tt_test_lr_losses[k], trainer.LossQ16());
  }
  TF_LITE_MICRO_EXPECT_EQ(kTtTestLrChecksum, trainer.ParameterChecksum());

  // Restore the checkpoint: the trained state is back, bit for bit.
  g_checkpoint.pos = 0;
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, trainer.LoadParameters(ReadMem, &g_checkpoint));
  TF_LITE_MICRO_EXPECT_EQ(kTtTestTrainedChecksum, trainer.ParameterChecksum());

  // A corrupt checkpoint is rejected and the model's values restored.
  g_checkpoint.bytes[g_checkpoint.size / 2] ^= 0x40;
  g_checkpoint.pos = 0;
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteError, trainer.LoadParameters(ReadMem, &g_checkpoint));
  TF_LITE_MICRO_EXPECT_EQ(kTtTestInitialChecksum, trainer.ParameterChecksum());

  // A label out of range is refused before anything runs.
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteError, trainer.Step(g_tt_test_images[0], kTtTestClasses));
}

TF_LITE_MICRO_TEST(AllTrainingOpsRegister) {
  TF_LITE_MICRO_EXPECT(tflm_train::FindTrainingOp("TT_SOFTMAX_XENT") != nullptr);
  TF_LITE_MICRO_EXPECT(tflm_train::FindTrainingOp("TT_NOPE") == nullptr);
  tflite::MicroMutableOpResolver<tflm_train::kNumTrainingOps - 1> too_small;
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteError, tflm_train::AddTrainingOps(&too_small));
  tflite::MicroMutableOpResolver<tflm_train::kNumTrainingOps> exact;
  TF_LITE_MICRO_EXPECT_EQ(kTfLiteOk, tflm_train::AddTrainingOps(&exact));
}

TF_LITE_MICRO_TESTS_END
