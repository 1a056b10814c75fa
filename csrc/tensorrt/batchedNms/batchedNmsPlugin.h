// SSPNetBatchedNMS as a TensorRT IPluginV3 (IPluginV3OneCore / OneBuild / OneRuntime) plus its
// IPluginCreatorV3One. Glue only: the numerics are csrc/kernels/batched_nms.h.
//
//   inputs : boxes [N, M, 4], scores [N, M], labels [N, M] int32 (only when class_aware = 1)
//   outputs: keep [N, max_output] int32, keep_scores [N, max_output], num_valid [N, 1] int32
//   types  : boxes / scores / keep_scores all float32 or all float16, linear layout; N and M may be dynamic.
//
// Workspace: getWorkspaceSize asks the kernel for the profile's largest [N, M]; configurePlugin
// fails the build when that query fails (e.g. no usable CUDA device) instead of reserving 0 bytes.
// The reserved size travels with the engine as the serialised-only field `workspace_bytes`
// (int64; not an ONNX attribute, not in getFieldNames), so enqueue checks what the current shapes
// need against what TensorRT reserved, and hands the kernel the real size.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "batchedNms/batchedNmsFields.h"

namespace sspnet::trt {

class BatchedNmsPlugin final : public nvinfer1::IPluginV3,
                               public nvinfer1::IPluginV3OneCore,
                               public nvinfer1::IPluginV3OneBuild,
                               public nvinfer1::IPluginV3OneRuntime {
 public:
  // workspaceBytes: what TensorRT reserves for enqueue; 0 = not known (before configurePlugin).
  BatchedNmsPlugin(BatchedNmsFields const& fields, int64_t workspaceBytes);

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
  static constexpr int32_t kNbOutputs = 3;  // keep, keep_scores, num_valid

  bool checkCounts(int32_t nbInputs, int32_t nbOutputs) const noexcept;
  // "" when boxes [N, M, 4], scores [N, M] (and labels [N, M]) fit together, else why not.
  // Dynamic (-1) sizes pass, so it serves build-time descriptors and runtime shapes alike.
  std::string checkInputDims(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs) const;
  // The kernel's workspace for [batch, numBoxes] into `bytes`; "" or why the size is unknown.
  std::string workspaceFor(int64_t batch, int64_t numBoxes, nvinfer1::DataType type, size_t& bytes) const;

  BatchedNmsFields mFields;
  int64_t mWorkspaceBytes;
  // Rebuilt by getFieldsToSerialize(); points into mFields and mWorkspaceBytes.
  std::vector<nvinfer1::PluginField> mSerializedFields;
  nvinfer1::PluginFieldCollection mSerializedCollection{};
};

class BatchedNmsPluginCreator final : public nvinfer1::IPluginCreatorV3One {
 public:
  BatchedNmsPluginCreator();

  char const* getPluginName() const noexcept override;
  char const* getPluginVersion() const noexcept override;
  char const* getPluginNamespace() const noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;

 private:
  BatchedNmsFields mDefaults;
  std::vector<nvinfer1::PluginField> mFieldNames;
  nvinfer1::PluginFieldCollection mFieldCollection{};
};

}  // namespace sspnet::trt
