#include "batchedNms/batchedNmsPlugin.h"

#include <exception>
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

}  // namespace

// ---------------------------------------------------------------------------------------------- plugin

BatchedNmsPlugin::BatchedNmsPlugin(BatchedNmsFields const& fields) : mFields(fields) {}

bool BatchedNmsPlugin::checkCounts(int32_t nbInputs, int32_t nbOutputs) const noexcept {
  if (nbInputs == numInputs(mFields) && nbOutputs == kNbOutputs) {
    return true;
  }
  fail("expects " + std::to_string(numInputs(mFields)) + " inputs (boxes, scores" +
       (mFields.class_aware != 0 ? ", labels" : "") + ") and 3 outputs, got " + std::to_string(nbInputs) +
       " inputs and " + std::to_string(nbOutputs) + " outputs");
  return false;
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
  try {
    return new BatchedNmsPlugin(mFields);
  } catch (std::exception const& e) {
    fail(std::string("clone failed: ") + e.what());
  }
  return nullptr;
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
  try {
    if (!checkCounts(nbInputs, nbOutputs)) {
      return -1;
    }
    DimsExprs const& boxes = inputs[0];
    if (boxes.nbDims != 3 || (boxes.d[2]->isConstant() && boxes.d[2]->getConstantValue() != 4)) {
      fail("input 0 (boxes) must be [N, M, 4]");
      return -1;
    }
    for (int32_t i = 1; i < nbInputs; ++i) {
      if (inputs[i].nbDims != 2) {
        fail(std::string("input ") + std::to_string(i) + (i == 1 ? " (scores)" : " (labels)") + " must be [N, M]");
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
  } catch (std::exception const& e) {
    fail(std::string("getOutputShapes failed: ") + e.what());
  }
  return -1;
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

int32_t BatchedNmsPlugin::configurePlugin(DynamicPluginTensorDesc const* /*in*/, int32_t nbInputs,
                                          DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return checkCounts(nbInputs, nbOutputs) ? 0 : -1;
}

size_t BatchedNmsPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                                          DynamicPluginTensorDesc const* /*outputs*/, int32_t nbOutputs) const noexcept {
  try {
    sspnet::DataType dtype;
    if (!checkCounts(nbInputs, nbOutputs) || !toKernelType(inputs[0].desc.type, dtype)) {
      return 0;
    }
    // The largest shapes of the profile; TensorRT hands this much to every enqueue, and the kernel's
    // size for any smaller [N, M] is not larger.
    nvinfer1::Dims const& boxes = inputs[0].max;
    return batched_nms_cuda_workspace_size(boxes.d[0], boxes.d[1], toKernelParams(mFields), dtype);
  } catch (std::exception const& e) {
    fail(std::string("getWorkspaceSize failed: ") + e.what());
  }
  return 0;
}

int32_t BatchedNmsPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/,
                                        int32_t nbOutputs) noexcept {
  if (!checkCounts(nbInputs, nbOutputs)) {
    return -1;
  }
  nvinfer1::Dims const& boxes = in[0].dims;
  for (int32_t i = 1; i < nbInputs; ++i) {
    if (in[i].dims.d[0] != boxes.d[0] || in[i].dims.d[1] != boxes.d[1]) {
      fail("input " + std::to_string(i) + " must be [N, M] = [" + std::to_string(boxes.d[0]) + ", " +
           std::to_string(boxes.d[1]) + "] like boxes, got [" + std::to_string(in[i].dims.d[0]) + ", " +
           std::to_string(in[i].dims.d[1]) + "]");
      return -1;
    }
  }
  return 0;
}

int32_t BatchedNmsPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                  void const* const* inputs, void* const* outputs, void* workspace,
                                  cudaStream_t stream) noexcept {
  try {
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
    // enqueue is not told the workspace size; recompute it for these shapes (<= what was reserved).
    size_t const workspaceSize = batched_nms_cuda_workspace_size(batch, numBoxes, params, dtype);
    auto const* labels = mFields.class_aware != 0 ? static_cast<int32_t const*>(inputs[2]) : nullptr;
    Status const status = batched_nms_cuda(inputs[0], inputs[1], labels, batch, numBoxes, params, dtype,
                                           static_cast<int32_t*>(outputs[kKeep]), outputs[kKeepScores],
                                           static_cast<int32_t*>(outputs[kNumValid]), workspace, workspaceSize, stream);
    if (status != Status::kOk) {
      fail(std::string("kernel failed: ") + status_message(status));
      return static_cast<int32_t>(status);
    }
    return 0;
  } catch (std::exception const& e) {
    fail(std::string("enqueue failed: ") + e.what());
  }
  return -1;
}

nvinfer1::IPluginV3* BatchedNmsPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept {
  return clone();  // no per-context resources
}

nvinfer1::PluginFieldCollection const* BatchedNmsPlugin::getFieldsToSerialize() noexcept {
  try {
    mSerializedFields = fieldValues(bindFields(mFields));
    mSerializedCollection.nbFields = static_cast<int32_t>(mSerializedFields.size());
    mSerializedCollection.fields = mSerializedFields.data();
    return &mSerializedCollection;
  } catch (std::exception const& e) {
    fail(std::string("getFieldsToSerialize failed: ") + e.what());
  }
  return nullptr;
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
                                                            nvinfer1::TensorRTPhase /*phase*/) noexcept {
  try {
    // Build phase: fields from the ONNX node attributes; runtime phase: the fields this plugin
    // serialised. Same names and types, so one reader serves both.
    BatchedNmsFields fields;
    std::string problem = readPluginFields(fc, bindFields(fields));
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
    return new BatchedNmsPlugin(fields);
  } catch (std::exception const& e) {
    fail(std::string("createPlugin failed: ") + e.what());
  }
  return nullptr;
}

}  // namespace sspnet::trt
