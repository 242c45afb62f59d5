// tflm-train's TFLM adapter: the training ops of a *.train.tflite as TFLMRegistrations.
//
// Each TT_* custom op runs the C engine's own glue (micro_ops/engine/ops/tt_op_train_*.c:
// prepare validates and caches constants, eval calls the integer kernel) through an
// implementation of the tt_op.h accessor API on TFLM's TfLiteContext / TfLiteNode
// (tt_tflm_ops.cc). Link the adapter instead of the C engine (micro_ops/engine/tt_engine.c):
// both implement tt_op.h. docs/tflm.md is the integration guide.
//
//   tflite::MicroMutableOpResolver<kModelBuiltinOps + tflm_train::kNumTrainingOps> resolver;
//   resolver.AddConv2D(); ...                  // the builtin ops of the forward pass
//   tflm_train::AddTrainingOps(&resolver);     // every TT_* op
#ifndef TT_TFLM_H
#define TT_TFLM_H

#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace tflm_train {

// Number of TT_* custom ops (docs/train-format.md); AddTrainingOps adds all of them.
constexpr int kNumTrainingOps = 16;

// Registration i, 0 <= i < kNumTrainingOps (custom_name is its TT_* code); nullptr otherwise.
const TFLMRegistration* TrainingOpRegistration(int i);
// Registration of a TT_* custom code; nullptr if unknown.
const TFLMRegistration* FindTrainingOp(const char* custom_code);

// Adds every training op to the resolver (needs kNumTrainingOps free slots).
template <unsigned int tOpCount>
TfLiteStatus AddTrainingOps(tflite::MicroMutableOpResolver<tOpCount>* resolver) {
  for (int i = 0; i < kNumTrainingOps; ++i) {
    const TFLMRegistration* r = TrainingOpRegistration(i);
    // The resolver keeps the name pointer: custom_name is a static string.
    if (resolver->AddCustom(r->custom_name, r) != kTfLiteOk) return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace tflm_train

#endif  // TT_TFLM_H
