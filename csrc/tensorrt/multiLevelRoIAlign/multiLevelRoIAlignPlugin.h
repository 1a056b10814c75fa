// SSPNetMultiLevelRoIAlign as a TensorRT IPluginV3 (IPluginV3OneCore / OneBuild / OneRuntime) plus its
// IPluginCreatorV3One. Glue only: the numerics are csrc/kernels/multi_level_roi_align.h.
//
//   inputs : rois [R, 5] (batch_index, x1, y1, x2, y2), then L feature maps [N, C, H_l, W_l]
//   output : pooled [R, C, output_height, output_width]
//   types  : all float32, all float16, or float32 rois with float16 features and output (mixed
//            I/O: keeps the RoI coordinates exact in fp16 engines); linear layout; R and N may be
//            dynamic.
#pragma once

#include <NvInferRuntime.h>

#include <vector>

#include "multiLevelRoIAlign/multiLevelRoIAlignFields.h"

namespace sspnet::trt {

class MultiLevelRoIAlignPlugin final : public nvinfer1::IPluginV3,
                                       public nvinfer1::IPluginV3OneCore,
                                       public nvinfer1::IPluginV3OneBuild,
                                       public nvinfer1::IPluginV3OneRuntime {
 public:
  explicit MultiLevelRoIAlignPlugin(MultiLevelRoIAlignFields const& fields);

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;

  // IPluginV3OneBuild
  int32_t getNbOutputs() const noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
                             nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
                          int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
                          nvinfer1::IExprBuilder& exprBuilder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
                                 int32_t nbOutputs) noexcept override;
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
  size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
                          nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
                        int32_t nbOutputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
                  void const* const* inputs, void* const* outputs, void* workspace,
                  cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  static constexpr int32_t kNbOutputs = 1;

  int32_t numInputs() const { return 1 + mFields.num_levels; }

  MultiLevelRoIAlignFields mFields;
  // Rebuilt by getFieldsToSerialize(); points into mFields.
  std::vector<nvinfer1::PluginField> mSerializedFields;
  nvinfer1::PluginFieldCollection mSerializedCollection{};
};

class MultiLevelRoIAlignPluginCreator final : public nvinfer1::IPluginCreatorV3One {
 public:
  MultiLevelRoIAlignPluginCreator();

  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;

 private:
  MultiLevelRoIAlignFields mDefaults;
  std::vector<nvinfer1::PluginField> mFieldNames;
  nvinfer1::PluginFieldCollection mFieldCollection{};
};

}  // namespace sspnet::trt
