// tflm_train::Trainer (tt_tflm_trainer.h).
#include "tt_tflm_trainer.h"

#include <string.h>

#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/micro_log.h"

extern "C" {
#include "tt_checkpoint.h"
#include "tt_update.h"
}

namespace tflm_train {
namespace {

constexpr int kStateLrMultiplier = 0;
constexpr int kStateLrShift = 1;

const tflite::SubGraph* Subgraph0(const tflite::Model* model) {
  if (model == nullptr || model->subgraphs() == nullptr || model->subgraphs()->size() < 1)
    return nullptr;
  return model->subgraphs()->Get(0);
}

// The initial value of a variable tensor in the model: nullptr with *bytes 0 for "zeros".
const uint8_t* InitialValue(const tflite::Model* model, const tflite::Tensor* t, size_t* bytes) {
  *bytes = 0;
  if (model->buffers() == nullptr || t->buffer() >= model->buffers()->size()) return nullptr;
  const tflite::Buffer* b = model->buffers()->Get(t->buffer());
  if (b == nullptr || b->data() == nullptr) return nullptr;
  *bytes = b->data()->size();
  return b->data()->data();
}

// MicroInterpreter::context() is protected. Naming it through a derived class yields a
// pointer to the base member, which any code may call: this reaches the context of every
// MicroInterpreter (including subclasses) without changing how the firmware creates it.
struct ContextAccess : tflite::MicroInterpreter {
  static constexpr const TfLiteContext& (tflite::MicroInterpreter::*kGet)() const =
      &ContextAccess::context;
};

}  // namespace

Trainer::Trainer(const tflite::Model* model, tflite::MicroInterpreter* interpreter)
    : model_(model), interpreter_(interpreter), state_index_(-1), num_classes_(0),
      ready_(false) {}

TfLiteEvalTensor* Trainer::Tensor(int index) const {
  // TfLiteContext::GetEvalTensor reads the interpreter's current subgraph, which is 0
  // outside Invoke(); unlike MicroInterpreter::GetTensor it needs no preserve-all-tensors.
  const TfLiteContext& c = (interpreter_->*ContextAccess::kGet)();
  return c.GetEvalTensor != nullptr ? c.GetEvalTensor(&c, index) : nullptr;
}

TfLiteStatus Trainer::Begin() {
  ready_ = false;
  const tflite::SubGraph* sg = Subgraph0(model_);
  if (sg == nullptr || sg->tensors() == nullptr) {
    MicroPrintf("tflm_train::Trainer: the model has no subgraph 0");
    return kTfLiteError;
  }
  if (interpreter_->inputs_size() != 2 || interpreter_->outputs_size() != 2) {
    MicroPrintf("tflm_train::Trainer: a *.train.tflite has inputs image, label and outputs "
                "logits, loss (docs/train-format.md)");
    return kTfLiteError;
  }
  const TfLiteTensor* label = interpreter_->input(1);
  const TfLiteTensor* logits = interpreter_->output(0);
  const TfLiteTensor* loss = interpreter_->output(1);
  if (label == nullptr || logits == nullptr || loss == nullptr || label->type != kTfLiteInt32 ||
      loss->type != kTfLiteInt32 || logits->type != kTfLiteInt8 || logits->dims->size < 1) {
    MicroPrintf("tflm_train::Trainer: label and loss must be int32, logits int8");
    return kTfLiteError;
  }
  num_classes_ = logits->dims->data[logits->dims->size - 1];
  state_index_ = -1;
  for (uint32_t i = 0; i < sg->tensors()->size(); ++i) {
    const flatbuffers::String* name = sg->tensors()->Get(i)->name();
    if (name != nullptr && name->size() == 8 && memcmp(name->data(), "tt_state", 8) == 0) {
      state_index_ = static_cast<int>(i);
      break;
    }
  }
  if (state_index_ < 0 || !sg->tensors()->Get(state_index_)->is_variable()) {
    MicroPrintf("tflm_train::Trainer: the model has no variable tt_state tensor");
    return kTfLiteError;
  }
  TF_LITE_ENSURE_STATUS(RestoreFromModel());
  ready_ = true;
  return kTfLiteOk;
}

TfLiteStatus Trainer::RestoreFromModel() {
  const tflite::SubGraph* sg = Subgraph0(model_);
  if (sg == nullptr || sg->tensors() == nullptr) return kTfLiteError;
  for (uint32_t i = 0; i < sg->tensors()->size(); ++i) {
    const tflite::Tensor* t = sg->tensors()->Get(i);
    if (!t->is_variable()) continue;
    TfLiteEvalTensor* e = Tensor(static_cast<int>(i));
    size_t bytes = 0, init_bytes = 0;
    if (e == nullptr || e->data.data == nullptr ||
        tflite::TfLiteEvalTensorByteLength(e, &bytes) != kTfLiteOk) {
      MicroPrintf("tflm_train::Trainer: variable tensor %d is not allocated", i);
      return kTfLiteError;
    }
    const uint8_t* init = InitialValue(model_, t, &init_bytes);
    if (init == nullptr || init_bytes == 0) {
      memset(e->data.data, 0, bytes);  // no initial value: zeros, as the C engine
    } else if (init_bytes != bytes) {
      MicroPrintf("tflm_train::Trainer: variable tensor %d has %d initial bytes for %d", i,
                  static_cast<int>(init_bytes), static_cast<int>(bytes));
      return kTfLiteError;
    } else {
      memcpy(e->data.data, init, bytes);
    }
  }
  return kTfLiteOk;
}

TfLiteStatus Trainer::Reset() {
  TF_LITE_ENSURE_STATUS(interpreter_->Reset());
  return RestoreFromModel();
}

TfLiteStatus Trainer::Run(const int8_t* image, int32_t label) {
  if (!ready_) {
    MicroPrintf("tflm_train::Trainer: call Begin() after AllocateTensors()");
    return kTfLiteError;
  }
  TfLiteTensor* in = interpreter_->input(0);
  if (image != nullptr) memcpy(in->data.raw, image, in->bytes);
  interpreter_->input(1)->data.i32[0] = label;
  return interpreter_->Invoke();
}

TfLiteStatus Trainer::Step(const int8_t* image, int32_t label) {
  if (label < 0 || label >= num_classes_) {
    MicroPrintf("tflm_train::Trainer: label %d out of range [0, %d)", static_cast<int>(label),
                num_classes_);
    return kTfLiteError;
  }
  return Run(image, label);
}

TfLiteStatus Trainer::Infer(const int8_t* image) { return Run(image, -1); }

int32_t Trainer::LossQ16() const { return interpreter_->output(1)->data.i32[0]; }
const int8_t* Trainer::Logits() const { return interpreter_->output(0)->data.int8; }

int32_t Trainer::Predict() const {
  const int8_t* z = Logits();
  int32_t best = 0;
  for (int32_t c = 1; c < num_classes_; ++c)
    if (z[c] > z[best]) best = c;
  return best;
}

TfLiteStatus Trainer::SetLearningRate(int32_t multiplier, int32_t shift) {
  if (!ready_) return kTfLiteError;
  int32_t* state = Tensor(state_index_)->data.i32;
  state[kStateLrMultiplier] = multiplier;
  state[kStateLrShift] = shift;
  return kTfLiteOk;
}

TfLiteStatus Trainer::SetLearningRate(double lr) {
  tt_quant_mult m;
  tt_update_lr(lr, &m);
  return SetLearningRate(m.multiplier, m.shift);
}

int32_t Trainer::LearningRateMultiplier() const {
  return ready_ ? Tensor(state_index_)->data.i32[kStateLrMultiplier] : 0;
}
int32_t Trainer::LearningRateShift() const {
  return ready_ ? Tensor(state_index_)->data.i32[kStateLrShift] : 0;
}

size_t Trainer::CheckpointBytes() const {
  const tflite::SubGraph* sg = Subgraph0(model_);
  size_t total = 4 * (TT_CHECKPOINT_HEADER_WORDS + 1);
  for (uint32_t i = 0; sg != nullptr && i < sg->tensors()->size(); ++i) {
    size_t bytes = 0;
    if (sg->tensors()->Get(i)->is_variable() && Tensor(static_cast<int>(i)) != nullptr &&
        tflite::TfLiteEvalTensorByteLength(Tensor(static_cast<int>(i)), &bytes) == kTfLiteOk)
      total += bytes;
  }
  return total;
}

uint32_t Trainer::ParameterChecksum() const {
  const tflite::SubGraph* sg = Subgraph0(model_);
  uint32_t h = TT_FNV1A_INIT;
  for (uint32_t i = 0; sg != nullptr && i < sg->tensors()->size(); ++i) {
    if (!sg->tensors()->Get(i)->is_variable()) continue;
    const TfLiteEvalTensor* e = Tensor(static_cast<int>(i));
    size_t bytes = 0;
    if (e != nullptr && tflite::TfLiteEvalTensorByteLength(e, &bytes) == kTfLiteOk)
      h = tt_fnv1a(h, e->data.data, bytes);
  }
  return h;
}

TfLiteStatus Trainer::SaveParameters(WriteFn write, void* user) const {
  const tflite::SubGraph* sg = Subgraph0(model_);
  if (!ready_ || write == nullptr || sg == nullptr) return kTfLiteError;
  uint32_t count = 0;
  const size_t payload = CheckpointBytes() - 4 * (TT_CHECKPOINT_HEADER_WORDS + 1);
  for (uint32_t i = 0; i < sg->tensors()->size(); ++i) count += sg->tensors()->Get(i)->is_variable();
  uint32_t header[TT_CHECKPOINT_HEADER_WORDS];
  tt_checkpoint_header(count, static_cast<uint32_t>(payload), header);
  if (!write(user, header, sizeof header)) return kTfLiteError;
  for (uint32_t i = 0; i < sg->tensors()->size(); ++i) {
    if (!sg->tensors()->Get(i)->is_variable()) continue;
    const TfLiteEvalTensor* e = Tensor(static_cast<int>(i));
    size_t bytes = 0;
    TF_LITE_ENSURE_STATUS(tflite::TfLiteEvalTensorByteLength(e, &bytes));
    if (!write(user, e->data.data, bytes)) return kTfLiteError;
  }
  const uint32_t checksum = ParameterChecksum();
  return write(user, &checksum, sizeof checksum) ? kTfLiteOk : kTfLiteError;
}

TfLiteStatus Trainer::LoadParameters(ReadFn read, void* user) {
  const tflite::SubGraph* sg = Subgraph0(model_);
  if (!ready_ || read == nullptr || sg == nullptr) return kTfLiteError;
  uint32_t count = 0;
  const size_t payload = CheckpointBytes() - 4 * (TT_CHECKPOINT_HEADER_WORDS + 1);
  for (uint32_t i = 0; i < sg->tensors()->size(); ++i) count += sg->tensors()->Get(i)->is_variable();
  uint32_t header[TT_CHECKPOINT_HEADER_WORDS];
  if (!read(user, header, sizeof header) ||
      !tt_checkpoint_header_matches(header, count, static_cast<uint32_t>(payload))) {
    MicroPrintf("tflm_train::Trainer: the checkpoint does not belong to this model");
    return kTfLiteError;
  }
  // Read straight into the tensors (no second copy of the state in RAM), then verify.
  bool ok = true;
  for (uint32_t i = 0; ok && i < sg->tensors()->size(); ++i) {
    if (!sg->tensors()->Get(i)->is_variable()) continue;
    TfLiteEvalTensor* e = Tensor(static_cast<int>(i));
    size_t bytes = 0;
    ok = tflite::TfLiteEvalTensorByteLength(e, &bytes) == kTfLiteOk &&
         read(user, e->data.data, bytes);
  }
  uint32_t checksum = 0;
  ok = ok && read(user, &checksum, sizeof checksum) && checksum == ParameterChecksum();
  if (!ok) {
    MicroPrintf("tflm_train::Trainer: checkpoint unreadable or corrupt; parameters restored "
                "from the model");
    RestoreFromModel();
    return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace tflm_train
