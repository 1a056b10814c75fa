#include "batchedNms/batchedNmsPlugin.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <string>

#include "common/pluginSupport.h"

namespace sspnet::trt {

using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::PluginTensorDesc;

namespace {

void fail(std::string const& message) noexcept { logError(kBatchedNmsName, message); }

// Output positions in supportsFormatCombination's inOut array come after the inputs.
constexpr int32_t kKeep = 0;
constexpr int32_t kKeepScores = 1;
constexpr int32_t kNumValid = 2;

// Serialised-only field: the workspace TensorRT reserved (see batchedNmsPlugin.h).
constexpr char kWorkspaceBytesField[] = "workspace_bytes";

// Equal, or at least one of them not known yet (-1).
bool compatible(int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; }

// Splits the runtime-only `workspace_bytes` field off `fc` into `bytes`; the other fields go to
// `rest`. "" or why the collection is refused.
std::string takeWorkspaceField(nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase,
                               int64_t& bytes, std::vector<nvinfer1::PluginField>& rest) {
  bytes = 0;
  std::vector<nvinfer1::PluginField> fields;
  std::string const problem = collectionFields(fc, fields);
  if (!problem.empty()) {
    return problem;
  }
  for (nvinfer1::PluginField const& field : fields) {
    if (field.name == nullptr || std::strcmp(field.name, kWorkspaceBytesField) != 0) {
      rest.push_back(field);
      continue;
    }
    if (phase != nvinfer1::TensorRTPhase::kRUNTIME) {
      return std::string("field '") + kWorkspaceBytesField +
             "' is written by the plugin into the engine, not given at build time";
    }
    if (field.type != nvinfer1::PluginFieldType::kINT64 || field.length != 1 || field.data == nullptr) {
      return std::string("field '") + kWorkspaceBytesField + "' must be one int64 (kINT64), got type " +
             std::to_string(static_cast<int32_t>(field.type)) + " with " + std::to_string(field.length) + " values";
    }
    std::memcpy(&bytes, field.data, sizeof(bytes));
    if (bytes < 0) {
      return std::string("field '") + kWorkspaceBytesField + "' must be >= 0, got " + std::to_string(bytes);
    }
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------- plugin

BatchedNmsPlugin::BatchedNmsPlugin(BatchedNmsFields const& fields, int64_t workspaceBytes)
    : mFields(fields), mWorkspaceBytes(workspaceBytes) {}

bool BatchedNmsPlugin::checkCounts(int32_t nbInputs, int32_t nbOutputs) const noexcept {
  if (nbInputs == numInputs(mFields) && nbOutputs == kNbOutputs) {
    return true;
  }
  fail("expects " + std::to_string(numInputs(mFields)) + " inputs (boxes, scores" +
       (mFields.class_aware != 0 ? ", labels" : "") + ") and 3 outputs, got " + std::to_string(nbInputs) +
       " inputs and " + std::to_string(nbOutputs) + " outputs");
  return false;
}

std::string BatchedNmsPlugin::checkInputDims(PluginTensorDesc const* in, int32_t nbInputs) const {
  nvinfer1::Dims const& boxes = in[0].dims;
  if (boxes.nbDims != 3 || !compatible(boxes.d[2], 4)) {
    return "input 0 (boxes) must be [N, M, 4], got " + dimsText(boxes);
  }
  for (int32_t i = 1; i < nbInputs; ++i) {
    nvinfer1::Dims const& dims = in[i].dims;
    if (dims.nbDims != 2 || !compatible(dims.d[0], boxes.d[0]) || !compatible(dims.d[1], boxes.d[1])) {
      return "input " + std::to_string(i) + (i == 1 ? " (scores)" : " (labels)") + " must be [N, M] like boxes " +
             dimsText(boxes) + ", got " + dimsText(dims);
    }
  }
  return "";
}

std::string BatchedNmsPlugin::workspaceFor(int64_t batch, int64_t numBoxes, DataType type, size_t& bytes) const {
  bytes = 0;
  sspnet::DataType dtype;
  if (!toKernelType(type, dtype)) {
    return "unsupported tensor type " + std::to_string(static_cast<int32_t>(type));
  }
  if (batch <= 0 || numBoxes <= 0) {
    return "";  // nothing to sort: no workspace
  }
  bytes = batched_nms_cuda_workspace_size(batch, numBoxes, toKernelParams(mFields), dtype);
  if (bytes == 0) {
    // Every buffer of a non-empty problem has a size, so 0 means the kernel's query (CUB's
    // temporary-storage query, which looks at the current device) failed.
    cudaError_t const error = cudaGetLastError();
    return "the kernel's workspace size query failed for [N=" + std::to_string(batch) + ", M=" +
           std::to_string(numBoxes) + "] (CUDA: " + cudaGetErrorString(error) + "); is a CUDA device usable?";
  }
  return "";
}

nvinfer1::IPluginCapability* BatchedNmsPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept {
  switch (type) {
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
  }
  return nullptr;
}

nvinfer1::IPluginV3* BatchedNmsPlugin::clone() noexcept {
  return guarded(kBatchedNmsName, "clone", nullptr, [&] {
    return new BatchedNmsPlugin(mFields, mWorkspaceBytes);
  });
}

char const* BatchedNmsPlugin::getPluginName() const noexcept { return kBatchedNmsName; }
char const* BatchedNmsPlugin::getPluginVersion() const noexcept { return kBatchedNmsVersion; }
char const* BatchedNmsPlugin::getPluginNamespace() const noexcept { return kPluginNamespace; }

int32_t BatchedNmsPlugin::getNbOutputs() const noexcept { return kNbOutputs; }

int32_t BatchedNmsPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes,
                                             int32_t nbInputs) const noexcept {
  if (!checkCounts(nbInputs, nbOutputs)) {
    return -1;
  }
  outputTypes[kKeep] = DataType::kINT32;
  outputTypes[kKeepScores] = inputTypes[1];  // same type as scores
  outputTypes[kNumValid] = DataType::kINT32;
  return 0;
}

int32_t BatchedNmsPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
                                          int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
                                          nvinfer1::IExprBuilder& exprBuilder) noexcept {
  return guarded(kBatchedNmsName, "getOutputShapes", -1, [&] {
    if (!checkCounts(nbInputs, nbOutputs)) {
      return -1;
    }
    DimsExprs const& boxes = inputs[0];
    if (boxes.nbDims != 3 || (boxes.d[2]->isConstant() && boxes.d[2]->getConstantValue() != 4)) {
      fail("input 0 (boxes) must be [N, M, 4]");
      return -1;
    }
    // Sizes known at build time must agree already; dynamic ones are checked by onShapeChange.
    auto differ = [](nvinfer1::IDimensionExpr const* a, nvinfer1::IDimensionExpr const* b) {
      return a->isConstant() && b->isConstant() && a->getConstantValue() != b->getConstantValue();
    };
    for (int32_t i = 1; i < nbInputs; ++i) {
      if (inputs[i].nbDims != 2 || differ(inputs[i].d[0], boxes.d[0]) || differ(inputs[i].d[1], boxes.d[1])) {
        fail(std::string("input ") + std::to_string(i) + (i == 1 ? " (scores)" : " (labels)") +
             " must be [N, M] like boxes [N, M, 4]");
        return -1;
      }
    }
    nvinfer1::IDimensionExpr const* batch = boxes.d[0];
    nvinfer1::IDimensionExpr const* maxOutput = exprBuilder.constant(mFields.max_output);
    for (int32_t o : {kKeep, kKeepScores}) {
      outputs[o].nbDims = 2;
      outputs[o].d[0] = batch;
      outputs[o].d[1] = maxOutput;
    }
    outputs[kNumValid].nbDims = 2;
    outputs[kNumValid].d[0] = batch;
    outputs[kNumValid].d[1] = exprBuilder.constant(1);
    return 0;
  });
}

bool BatchedNmsPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                                 int32_t /*nbOutputs*/) noexcept {
  PluginTensorDesc const& desc = inOut[pos].desc;
  if (desc.format != nvinfer1::TensorFormat::kLINEAR) {
    return false;
  }
  DataType const floatType = inOut[0].desc.type;
  if (pos == 0) {
    return desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;  // boxes
  }
  if (pos == 1) {
    return desc.type == floatType;  // scores
  }
  if (pos < nbInputs) {
    return desc.type == DataType::kINT32;  // labels
  }
  int32_t const output = pos - nbInputs;
  return output == kKeepScores ? desc.type == floatType : desc.type == DataType::kINT32;
}

int32_t BatchedNmsPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                          DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return guarded(kBatchedNmsName, "configurePlugin", -1, [&] {
    if (!checkCounts(nbInputs, nbOutputs)) {
      return -1;
    }
    std::vector<PluginTensorDesc> descs;
    for (int32_t i = 0; i < nbInputs; ++i) {
      descs.push_back(in[i].desc);
    }
    std::string problem = checkInputDims(descs.data(), nbInputs);
    // What getWorkspaceSize will reserve: the kernel's size for the profile's largest [N, M].
    size_t bytes = 0;
    if (problem.empty()) {
      problem = workspaceFor(in[0].max.d[0], in[0].max.d[1], in[0].desc.type, bytes);
    }
    if (!problem.empty()) {
      fail(problem);
      return -1;
    }
    mWorkspaceBytes = static_cast<int64_t>(bytes);
    return 0;
  });
}

size_t BatchedNmsPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                          DynamicPluginTensorDesc const* /*outputs*/, int32_t nbOutputs) const noexcept {
  return guarded(kBatchedNmsName, "getWorkspaceSize", size_t{0}, [&]() -> size_t {
    if (!checkCounts(nbInputs, nbOutputs)) {
      return 0;
    }
    // The largest shapes of the profile; TensorRT hands this much to every enqueue, and the kernel's
    // size for any smaller [N, M] is not larger. A failed query was already reported by
    // configurePlugin (which then failed the build); say it again rather than return 0 silently.
    size_t bytes = 0;
    std::string const problem = workspaceFor(inputs[0].max.d[0], inputs[0].max.d[1], inputs[0].desc.type, bytes);
    if (!problem.empty()) {
      fail(problem);
    }
    return bytes;
  });
}

int32_t BatchedNmsPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                        int32_t nbOutputs) noexcept {
  return guarded(kBatchedNmsName, "onShapeChange", -1, [&] {
    if (!checkCounts(nbInputs, nbOutputs)) {
      return -1;
    }
    // The trailing sizes may have been dynamic at build time: check the real shapes here.
    std::string const problem = checkInputDims(in, nbInputs);
    if (!problem.empty()) {
      fail(problem);
      return -1;
    }
    return 0;
  });
}

int32_t BatchedNmsPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                  void const* const* inputs, void* const* outputs, void* workspace,
                                  cudaStream_t stream) noexcept {
  return guarded(kBatchedNmsName, "enqueue", -1, [&] {
    sspnet::DataType dtype;
    if (!toKernelType(inputDesc[0].type, dtype)) {
      fail("unsupported tensor type " + std::to_string(static_cast<int32_t>(inputDesc[0].type)));
      return -1;
    }
    int64_t const batch = inputDesc[0].dims.d[0];
    int64_t const numBoxes = inputDesc[0].dims.d[1];
    if (batch == 0) {
      return 0;
    }
    NmsParams const params = toKernelParams(mFields);
    size_t needed = 0;
    std::string const problem = workspaceFor(batch, numBoxes, inputDesc[0].type, needed);
    if (!problem.empty()) {
      fail(problem);
      return -1;
    }
    // enqueue is not told the workspace size: it is what configurePlugin recorded for the
    // profile's largest shapes (serialised with the engine). Unknown only for a plugin that was
    // never configured nor deserialised from a configured one; then trust these shapes' size.
    size_t const workspaceSize = mWorkspaceBytes > 0 ? static_cast<size_t>(mWorkspaceBytes) : needed;
    if (needed > workspaceSize) {
      fail("workspace too small: [N=" + std::to_string(batch) + ", M=" + std::to_string(numBoxes) + "] needs " +
           std::to_string(needed) + " bytes, the engine reserved " + std::to_string(workspaceSize) +
           " (shapes beyond the optimisation profile?)");
      return static_cast<int32_t>(Status::kWorkspaceTooSmall);
    }
    auto const* labels = mFields.class_aware != 0 ? static_cast<int32_t const*>(inputs[2]) : nullptr;
    Status const status = batched_nms_cuda(inputs[0], inputs[1], labels, batch, numBoxes, params, dtype,
                                           static_cast<int32_t*>(outputs[kKeep]), outputs[kKeepScores],
                                           static_cast<int32_t*>(outputs[kNumValid]), workspace, workspaceSize, stream);
    return kernelResult(kBatchedNmsName, status);
  });
}

nvinfer1::IPluginV3* BatchedNmsPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept {
  return clone();  // no per-context resources
}

nvinfer1::PluginFieldCollection const* BatchedNmsPlugin::getFieldsToSerialize() noexcept {
  return guarded(kBatchedNmsName, "getFieldsToSerialize", nullptr, [&] {
    mSerializedFields = fieldValues(bindFields(mFields));
    if (mWorkspaceBytes > 0) {
      mSerializedFields.emplace_back(kWorkspaceBytesField, &mWorkspaceBytes, nvinfer1::PluginFieldType::kINT64, 1);
    }
    mSerializedCollection.nbFields = static_cast<int32_t>(mSerializedFields.size());
    mSerializedCollection.fields = mSerializedFields.data();
    return &mSerializedCollection;
  });
}

// --------------------------------------------------------------------------------------------- creator

BatchedNmsPluginCreator::BatchedNmsPluginCreator() : mFieldNames(fieldSignatures(bindFields(mDefaults))) {
  mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
  mFieldCollection.fields = mFieldNames.data();
}

char const* BatchedNmsPluginCreator::getPluginName() const noexcept { return kBatchedNmsName; }
char const* BatchedNmsPluginCreator::getPluginVersion() const noexcept { return kBatchedNmsVersion; }
char const* BatchedNmsPluginCreator::getPluginNamespace() const noexcept { return kPluginNamespace; }

nvinfer1::PluginFieldCollection const* BatchedNmsPluginCreator::getFieldNames() noexcept { return &mFieldCollection; }

nvinfer1::IPluginV3* BatchedNmsPluginCreator::createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                                            nvinfer1::TensorRTPhase phase) noexcept {
  return guarded(kBatchedNmsName, "createPlugin", nullptr, [&]() -> nvinfer1::IPluginV3* {
    // Build phase: fields from the ONNX node attributes; runtime phase: the fields this plugin
    // serialised, the same plus workspace_bytes.
    BatchedNmsFields fields;
    int64_t workspaceBytes = 0;
    std::vector<nvinfer1::PluginField> rest;
    std::string problem = takeWorkspaceField(fc, phase, workspaceBytes, rest);
    if (problem.empty()) {
      nvinfer1::PluginFieldCollection const restCollection{static_cast<int32_t>(rest.size()), rest.data()};
      problem = readPluginFields(&restCollection, bindFields(fields));
    }
    if (problem.empty()) {
      problem = checkFields(fields);
    }
    if (problem.empty() && validate(toKernelParams(fields)) != Status::kOk) {
      problem = "the kernel rejects these fields: " + describeFields(fields);
    }
    if (!problem.empty()) {
      fail(std::string("layer '") + (name != nullptr ? name : "") + "': " + problem);
      return nullptr;
    }
    return new BatchedNmsPlugin(fields, workspaceBytes);
  });
}

}  // namespace sspnet::trt
