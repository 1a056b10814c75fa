#include "multiLevelRoIAlign/multiLevelRoIAlignPlugin.h"

#include <string>
#include <vector>

#include "common/pluginSupport.h"

namespace sspnet::trt {

using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::PluginTensorDesc;

namespace {

void fail(std::string const& message) noexcept { logError(kMultiLevelRoIAlignName, message); }

std::string countMessage(int32_t expectedInputs, int32_t nbInputs, int32_t nbOutputs) {
  return "expects " + std::to_string(expectedInputs) +
         " inputs (rois, then one feature map per spatial_scales value) and 1 output, got " +
         std::to_string(nbInputs) + " inputs and " + std::to_string(nbOutputs) + " outputs";
}

LevelShape toLevelShape(nvinfer1::Dims const& dims) { return LevelShape{dims.d[0], dims.d[1], dims.d[2], dims.d[3]}; }

// "" when rois are [R, 5] and every feature level is 4-D, else why not. Dynamic (-1) sizes pass,
// so it serves build-time descriptors and runtime shapes alike.
std::string checkInputRanks(PluginTensorDesc const* in, int32_t nbInputs) {
  nvinfer1::Dims const& rois = in[0].dims;
  if (rois.nbDims != 2 || (rois.d[1] >= 0 && rois.d[1] != 5)) {
    return "input 0 (rois) must be [R, 5] = (batch_index, x1, y1, x2, y2), got " + dimsText(rois);
  }
  for (int32_t i = 1; i < nbInputs; ++i) {
    if (in[i].dims.nbDims != 4) {
      return "input " + std::to_string(i) + " (feature level " + std::to_string(i - 1) + ") must be [N, C, H, W], got " +
             dimsText(in[i].dims);
    }
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------- plugin

MultiLevelRoIAlignPlugin::MultiLevelRoIAlignPlugin(MultiLevelRoIAlignFields const& fields) : mFields(fields) {}

nvinfer1::IPluginCapability* MultiLevelRoIAlignPlugin::getCapabilityInterface(
    nvinfer1::PluginCapabilityType type) noexcept {
  switch (type) {
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
  }
  return nullptr;
}

nvinfer1::IPluginV3* MultiLevelRoIAlignPlugin::clone() noexcept {
  return guarded(kMultiLevelRoIAlignName, "clone", nullptr, [&] {
    return new MultiLevelRoIAlignPlugin(mFields);
  });
}

char const* MultiLevelRoIAlignPlugin::getPluginName() const noexcept { return kMultiLevelRoIAlignName; }
char const* MultiLevelRoIAlignPlugin::getPluginVersion() const noexcept { return kMultiLevelRoIAlignVersion; }
char const* MultiLevelRoIAlignPlugin::getPluginNamespace() const noexcept { return kPluginNamespace; }

int32_t MultiLevelRoIAlignPlugin::getNbOutputs() const noexcept { return kNbOutputs; }

int32_t MultiLevelRoIAlignPlugin::getOutputDataTypes(DataType* outputTypes, int32_t nbOutputs,
                                                     DataType const* inputTypes, int32_t nbInputs) const noexcept {
  if (nbOutputs != kNbOutputs || nbInputs != numInputs()) {
    fail(countMessage(numInputs(), nbInputs, nbOutputs));
    return -1;
  }
  outputTypes[0] = inputTypes[1];  // pooled features keep the feature type
  return 0;
}

int32_t MultiLevelRoIAlignPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
                                                  DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/,
                                                  DimsExprs* outputs, int32_t nbOutputs,
                                                  nvinfer1::IExprBuilder& exprBuilder) noexcept {
  return guarded(kMultiLevelRoIAlignName, "getOutputShapes", -1, [&] {
    if (nbInputs != numInputs() || nbOutputs != kNbOutputs) {
      fail(countMessage(numInputs(), nbInputs, nbOutputs));
      return -1;
    }
    DimsExprs const& rois = inputs[0];
    if (rois.nbDims != 2 || (rois.d[1]->isConstant() && rois.d[1]->getConstantValue() != 5)) {
      fail("input 0 (rois) must be [R, 5] = (batch_index, x1, y1, x2, y2)");
      return -1;
    }
    for (int32_t i = 1; i < nbInputs; ++i) {
      if (inputs[i].nbDims != 4) {
        fail("input " + std::to_string(i) + " (feature level " + std::to_string(i - 1) + ") must be [N, C, H, W], got " +
             std::to_string(inputs[i].nbDims) + " dimensions");
        return -1;
      }
    }
    outputs[0].nbDims = 4;
    outputs[0].d[0] = rois.d[0];
    outputs[0].d[1] = inputs[1].d[1];
    outputs[0].d[2] = exprBuilder.constant(mFields.output_height);
    outputs[0].d[3] = exprBuilder.constant(mFields.output_width);
    return 0;
  });
}

bool MultiLevelRoIAlignPlugin::supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* inOut,
                                                         int32_t /*nbInputs*/, int32_t /*nbOutputs*/) noexcept {
  PluginTensorDesc const& desc = inOut[pos].desc;
  if (desc.format != nvinfer1::TensorFormat::kLINEAR) {
    return false;
  }
  bool const isFloat = desc.type == DataType::kFLOAT || desc.type == DataType::kHALF;
  if (pos <= 1) {
    // rois, then the first feature level: all fp32, all fp16, or fp32 RoIs next to fp16 features
    // (mixed I/O: fp16 RoI coordinates step by 0.5 px above 512 px, by 1 px above 1024 px).
    return isFloat && (pos == 0 || inOut[0].desc.type == DataType::kFLOAT || desc.type == DataType::kHALF);
  }
  return desc.type == inOut[1].desc.type;  // every feature level and the output share one type
}

int32_t MultiLevelRoIAlignPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
                                                  DynamicPluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return guarded(kMultiLevelRoIAlignName, "configurePlugin", -1, [&] {
    if (nbInputs != numInputs() || nbOutputs != kNbOutputs) {
      fail(countMessage(numInputs(), nbInputs, nbOutputs));
      return -1;
    }
    std::vector<PluginTensorDesc> descs;
    for (int32_t i = 0; i < nbInputs; ++i) {
      descs.push_back(in[i].desc);
    }
    std::string problem = checkInputRanks(descs.data(), nbInputs);
    // Validate against the largest shapes of the profile: the kernel's own checks, once, at build time.
    LevelShape levels[kMaxPyramidLevels];
    for (int32_t l = 0; problem.empty() && l < mFields.num_levels; ++l) {
      levels[l] = toLevelShape(in[1 + l].max);
    }
    FeaturePyramid pyramid;
    if (problem.empty()) {
      problem = makePyramid(mFields, levels, mFields.num_levels, pyramid);
    }
    if (problem.empty()) {
      Status const status = validate(pyramid, toKernelParams(mFields));
      if (status != Status::kOk) {
        problem = std::string("the kernel rejects these fields / shapes (") + status_message(status) +
                  "): " + describeFields(mFields);
      }
    }
    if (!problem.empty()) {
      fail(problem);
      return -1;
    }
    return 0;
  });
}

size_t MultiLevelRoIAlignPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
                                                  DynamicPluginTensorDesc const* /*outputs*/,
                                                  int32_t /*nbOutputs*/) const noexcept {
  return 0;  // the kernel needs no scratch memory (multi_level_roi_align.h)
}

int32_t MultiLevelRoIAlignPlugin::onShapeChange(PluginTensorDesc const* in, int32_t nbInputs,
                                                PluginTensorDesc const* /*out*/, int32_t nbOutputs) noexcept {
  return guarded(kMultiLevelRoIAlignName, "onShapeChange", -1, [&] {
    if (nbInputs != numInputs() || nbOutputs != kNbOutputs) {
      fail(countMessage(numInputs(), nbInputs, nbOutputs));
      return -1;
    }
    // The trailing sizes may have been dynamic at build time: check the real shapes here.
    std::string problem = checkInputRanks(in, nbInputs);
    LevelShape levels[kMaxPyramidLevels];
    for (int32_t l = 0; problem.empty() && l < mFields.num_levels; ++l) {
      levels[l] = toLevelShape(in[1 + l].dims);
    }
    FeaturePyramid pyramid;
    if (problem.empty()) {
      problem = makePyramid(mFields, levels, mFields.num_levels, pyramid);
    }
    if (!problem.empty()) {
      fail(problem);
      return -1;
    }
    return 0;
  });
}

int32_t MultiLevelRoIAlignPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
                                          void const* const* inputs, void* const* outputs, void* /*workspace*/,
                                          cudaStream_t stream) noexcept {
  return guarded(kMultiLevelRoIAlignName, "enqueue", -1, [&] {
    sspnet::DataType roiType;
    sspnet::DataType dtype;
    if (!toKernelType(inputDesc[0].type, roiType) || !toKernelType(inputDesc[1].type, dtype)) {
      fail("unsupported tensor types: rois " + std::to_string(static_cast<int32_t>(inputDesc[0].type)) +
           ", features " + std::to_string(static_cast<int32_t>(inputDesc[1].type)));
      return -1;
    }
    int32_t const numLevels = mFields.num_levels;
    LevelShape levels[kMaxPyramidLevels];
    void const* features[kMaxPyramidLevels] = {};
    for (int32_t l = 0; l < numLevels; ++l) {
      levels[l] = toLevelShape(inputDesc[1 + l].dims);
      features[l] = inputs[1 + l];
    }
    FeaturePyramid pyramid;
    std::string const problem = makePyramid(mFields, levels, numLevels, pyramid);
    if (!problem.empty()) {
      fail(problem);
      return -1;
    }
    int64_t const numRois = inputDesc[0].dims.d[0];
    if (numRois == 0) {
      return 0;  // empty output, nothing to launch
    }
    Status const status = multi_level_roi_align_forward_cuda(pyramid, features, inputs[0], roiType, numRois,
                                                             toKernelParams(mFields), dtype, outputs[0], stream);
    return kernelResult(kMultiLevelRoIAlignName, status);
  });
}

nvinfer1::IPluginV3* MultiLevelRoIAlignPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept {
  return clone();  // no per-context resources
}

nvinfer1::PluginFieldCollection const* MultiLevelRoIAlignPlugin::getFieldsToSerialize() noexcept {
  return guarded(kMultiLevelRoIAlignName, "getFieldsToSerialize", nullptr, [&] {
    mSerializedFields = fieldValues(bindFields(mFields));
    mSerializedCollection.nbFields = static_cast<int32_t>(mSerializedFields.size());
    mSerializedCollection.fields = mSerializedFields.data();
    return &mSerializedCollection;
  });
}

// --------------------------------------------------------------------------------------------- creator

MultiLevelRoIAlignPluginCreator::MultiLevelRoIAlignPluginCreator()
    : mFieldNames(fieldSignatures(bindFields(mDefaults))) {
  mFieldCollection.nbFields = static_cast<int32_t>(mFieldNames.size());
  mFieldCollection.fields = mFieldNames.data();
}

char const* MultiLevelRoIAlignPluginCreator::getPluginName() const noexcept { return kMultiLevelRoIAlignName; }
char const* MultiLevelRoIAlignPluginCreator::getPluginVersion() const noexcept { return kMultiLevelRoIAlignVersion; }
char const* MultiLevelRoIAlignPluginCreator::getPluginNamespace() const noexcept { return kPluginNamespace; }

nvinfer1::PluginFieldCollection const* MultiLevelRoIAlignPluginCreator::getFieldNames() noexcept {
  return &mFieldCollection;
}

nvinfer1::IPluginV3* MultiLevelRoIAlignPluginCreator::createPlugin(char const* name,
                                                                    nvinfer1::PluginFieldCollection const* fc,
                                                                    nvinfer1::TensorRTPhase /*phase*/) noexcept {
  return guarded(kMultiLevelRoIAlignName, "createPlugin", nullptr, [&]() -> nvinfer1::IPluginV3* {
    // Build phase: fields from the ONNX node attributes; runtime phase: the fields this plugin
    // serialised. Same names and types, so one reader serves both.
    MultiLevelRoIAlignFields fields;
    std::string problem = readPluginFields(fc, bindFields(fields));
    if (problem.empty()) {
      problem = checkFields(fields);
    }
    // The kernel's shape-free rules now, not at configurePlugin: a deserialised plugin is never
    // configured, and getOutputShapes (output_height / output_width) runs before configurePlugin.
    if (problem.empty() && validate(unitPyramid(fields), toKernelParams(fields)) != Status::kOk) {
      problem = "the kernel rejects these fields: " + describeFields(fields);
    }
    if (!problem.empty()) {
      fail(std::string("layer '") + (name != nullptr ? name : "") + "': " + problem);
      return nullptr;
    }
    return new MultiLevelRoIAlignPlugin(fields);
  });
}

}  // namespace sspnet::trt
