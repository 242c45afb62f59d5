// A small firmware-side helper around a MicroInterpreter running a *.train.tflite:
// set the image and label, run a training step, read the loss, set the learning rate,
// reset, and save/restore the trainable state through user callbacks (docs/tflm.md).
//
//   tflite::MicroInterpreter interpreter(model, resolver, arena, kArenaSize);
//   interpreter.AllocateTensors();
//   tflm_train::Trainer trainer(model, &interpreter);
//   trainer.Begin();                      // restores the parameters TFLM zeroed
//   trainer.Step(image, label);           // forward + loss + backward + in-place update
//   int32_t loss = trainer.LossQ16();     // nats, Q16.16
//   trainer.Infer(image);                 // label -1: logits only, nothing changes
//
// Why Begin()/Reset() matter: TFLM zeroes every variable tensor in AllocateTensors() and
// MicroInterpreter::Reset() (after calling the kernels' reset hooks, so no kernel can undo
// it). The trainable weights, biases and tt_state are variable tensors whose initial value
// is in the model, so this helper copies them back from the model afterwards.
#ifndef TT_TFLM_TRAINER_H
#define TT_TFLM_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace tflm_train {

class Trainer {
 public:
  // Return true on success. Called with consecutive pieces of the checkpoint.
  typedef bool (*WriteFn)(void* user, const void* data, size_t bytes);
  typedef bool (*ReadFn)(void* user, void* data, size_t bytes);

  // The model must be the one the interpreter runs; both must outlive the trainer.
  Trainer(const tflite::Model* model, tflite::MicroInterpreter* interpreter);

  // After interpreter->AllocateTensors(): checks the graph (inputs image + label, outputs
  // logits + loss, a tt_state tensor) and restores every variable from the model.
  TfLiteStatus Begin();

  // One training step on `image` (input 0's bytes; nullptr: already in input 0) with label
  // 0 <= label < NumClasses(). The parameters are updated in place.
  TfLiteStatus Step(const int8_t* image, int32_t label);
  // Inference with the same interpreter: label -1, every backward op returns at once.
  TfLiteStatus Infer(const int8_t* image);

  int32_t LossQ16() const;  // loss of the last Step, Q16.16 nats (0 after Infer)
  const int8_t* Logits() const;
  int NumClasses() const { return num_classes_; }
  int32_t Predict() const;  // argmax of Logits()

  // Learning rate: real lr = multiplier * 2^(shift - 31) (the tt_state pair).
  TfLiteStatus SetLearningRate(int32_t multiplier, int32_t shift);
  // Converted as the compiler does (tt_update_lr): uses double, not for a no-FPU hot path.
  TfLiteStatus SetLearningRate(double lr);
  int32_t LearningRateMultiplier() const;
  int32_t LearningRateShift() const;

  // interpreter->Reset() and then every variable back to its value in the model.
  TfLiteStatus Reset();
  // Every variable back to its value in the model (without resetting the interpreter).
  TfLiteStatus RestoreFromModel();

  // The trainable state (every variable tensor: parameters, velocities, tt_state) as a
  // checkpoint (micro_ops/tflm/tt_checkpoint.h), and back. Load checks the header and the
  // checksum; on a mismatch the state is restored from the model and kTfLiteError returned.
  TfLiteStatus SaveParameters(WriteFn write, void* user) const;
  TfLiteStatus LoadParameters(ReadFn read, void* user);
  size_t CheckpointBytes() const;
  // FNV-1a 32 over every variable tensor's bytes in model order (the checkpoint checksum).
  uint32_t ParameterChecksum() const;

  // Tensor `index` of subgraph 0 (variables always; activations while TFLM keeps them).
  TfLiteEvalTensor* Tensor(int index) const;

 private:
  TfLiteStatus Run(const int8_t* image, int32_t label);

  const tflite::Model* model_;
  tflite::MicroInterpreter* interpreter_;
  int state_index_;
  int num_classes_;
  bool ready_;
};

}  // namespace tflm_train

#endif  // TT_TFLM_TRAINER_H
