// Plays TensorRT and its ONNX parser for the sspnet plugin library, on the CPU, without TensorRT:
// the library is dlopened (plain-dlopen path: it registers its creators with getPluginRegistry(),
// here the fake registry of fake_nvinfer.cpp) and every plugin node of an exported ONNX file
// (described by a spec file the Python test writes) is driven the way TensorRT drives it:
//
//  1. creator lookup by op type + plugin_version (default "1") + plugin_namespace (default ""),
//     as the parser's FallbackPluginImporter does;
//  2. the PluginFieldCollection built like the parser's loadFields(): for every field the creator
//     lists in getFieldNames() that the node has as an attribute, INT -> kINT32 (the int64 value
//     cast to int32), FLOAT -> kFLOAT32, FLOATS -> kFLOAT32[n], INTS -> kINT32[n], STRING -> kCHAR;
//     absent fields are left out (the creator's default applies);
//  3. createPlugin(kBUILD); getCapabilityInterface(kCORE / kBUILD / kRUNTIME); getNbOutputs;
//     getOutputShapes through an expression builder that evaluates constants and symbolic sizes;
//     supportsFormatCombination over every (type, format) candidate, position by position, each
//     query asked twice with different contents in the later positions (TensorRT has not chosen
//     them yet); getOutputDataTypes for every accepted combination; configurePlugin and
//     getWorkspaceSize for each accepted combination;
//  4. getFieldsToSerialize -> createPlugin(kRUNTIME) -> getFieldsToSerialize again; clone and
//     attachToContext copies outliving the original; onShapeChange with the concrete shapes;
//  5. refusals: wrong field types, counts and names at createPlugin, wrong shapes at
//     getOutputShapes / onShapeChange; every refusal must come with a message on the logger;
//  6. with --enqueue DIR and a CUDA device: createPlugin(kRUNTIME) from the fields each configured
//     combination serialised, attachToContext, onShapeChange, then enqueue on device buffers, at
//     the profile's opt and max shapes (at max the workspace the plugin asked for is all the
//     kernel may use: it is allocated at exactly that size, as is every tensor). Inputs are read
//     from and outputs written to DIR (raw little-endian arrays, fp16 tensors as float32).
//
// Built with TRT_HARNESS_CUDA_ON_CPU, the "device" is the CPU execution layer of tests/cuda_on_cpu
// (the plugin library's .cu kernels compiled as C++, device memory = exact-size host allocations,
// launches synchronous): one device, and the default stream. SSPNET_COC_SCHEDULE = forward |
// reverse | random (seed SSPNET_COC_SEED) picks the order in which the layer runs the CUDA threads
// of each block and the blocks of each grid.
//
// Prints one JSON object. usage: trt_harness LIBRARY SPEC [--enqueue DIR]
//   DIR holds n<node>_<opt|max>_in<k>.bin; the harness writes n<node>_<opt|max>_<label>_out<k>.bin.
//
// Spec file (one item per line, whitespace separated):
//   symbol NAME MIN OPT MAX                 a dynamic size and its optimisation profile
//   node OP_TYPE NAME                       starts a plugin node
//   attr NAME INT|FLOAT|STRING VALUE        an attribute, as in the ONNX file
//   attr NAME INTS|FLOATS COUNT VALUE...
//   input ELEM_TYPE RANK DIM...             ONNX element type name (FLOAT, INT32, ...); DIM is a
//   output ELEM_TYPE RANK DIM...            number or a symbol
//   bad_input INDEX RANK DIM...             a shape for input INDEX that must be refused
//   end
#include <NvInferRuntime.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fake_tensorrt.h"

using namespace nvinfer1;

#ifdef TRT_HARNESS_CUDA_ON_CPU
extern "C" void coc_set_schedule(int schedule, uint64_t seed);  // tests/cuda_on_cpu/layer/runtime.cpp
#endif

namespace {

// ------------------------------------------------------------------------------------------ JSON

std::string quoted(std::string const& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string boolean(bool value) { return value ? "true" : "false"; }

std::string number(double value) {
  std::ostringstream text;
  text.precision(9);
  text << value;
  return text.str();
}

template <typename T, typename F>
std::string array(std::vector<T> const& items, F&& toJson) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += (i > 0 ? ", " : "") + toJson(items[i]);
  }
  return out + "]";
}

std::string strings(std::vector<std::string> const& items) { return array(items, quoted); }

// A JSON object built field by field, in insertion order.
class Object {
 public:
  Object& add(std::string const& key, std::string const& json) {
    mText += (mText.empty() ? "" : ", ") + quoted(key) + ": " + json;
    return *this;
  }
  std::string str() const { return "{" + mText + "}"; }

 private:
  std::string mText;
};

// ------------------------------------------------------------------------------- enum names

char const* typeName(DataType type) {
  switch (type) {
    case DataType::kFLOAT: return "FLOAT";
    case DataType::kHALF: return "HALF";
    case DataType::kINT8: return "INT8";
    case DataType::kINT32: return "INT32";
    case DataType::kBOOL: return "BOOL";
    case DataType::kUINT8: return "UINT8";
    case DataType::kBF16: return "BF16";
    case DataType::kINT64: return "INT64";
    default: return "OTHER";
  }
}

char const* formatName(TensorFormat format) {
  switch (format) {
    case TensorFormat::kLINEAR: return "LINEAR";
    case TensorFormat::kCHW4: return "CHW4";
    case TensorFormat::kHWC8: return "HWC8";
    case TensorFormat::kCHW32: return "CHW32";
    default: return "OTHER";
  }
}

// What TensorRT may propose at each position (a subset of every version's enums).
DataType const kCandidateTypes[] = {DataType::kFLOAT, DataType::kHALF,  DataType::kINT8, DataType::kINT32,
                                    DataType::kBOOL,  DataType::kUINT8, DataType::kBF16, DataType::kINT64};
TensorFormat const kCandidateFormats[] = {TensorFormat::kLINEAR, TensorFormat::kCHW4, TensorFormat::kHWC8,
                                          TensorFormat::kCHW32};

// ---------------------------------------------------------------------------------------- spec

struct Dim {
  int64_t value = -1;  // >= 0: a fixed size
  std::string symbol;  // else a symbol of the profile
};

struct Symbol {
  int64_t min, opt, max;
};
using Symbols = std::map<std::string, Symbol>;

struct Tensor {
  std::string elemType;
  std::vector<Dim> dims;
};

struct Attribute {
  std::string name, type;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string text;
};

struct BadInput {
  int32_t index;
  std::vector<Dim> dims;
};

struct Node {
  std::string opType, name;
  std::vector<Attribute> attributes;
  std::vector<Tensor> inputs, outputs;
  std::vector<BadInput> badInputs;

  Attribute const* attribute(std::string const& key) const {
    for (Attribute const& a : attributes) {
      if (a.name == key) {
        return &a;
      }
    }
    return nullptr;
  }
};

std::vector<Dim> readDims(std::istringstream& line) {
  int32_t rank = 0;
  line >> rank;
  std::vector<Dim> dims(static_cast<std::size_t>(rank));
  for (Dim& dim : dims) {
    std::string token;
    line >> token;
    if (!token.empty() && token.find_first_not_of("0123456789") == std::string::npos) {
      dim.value = std::stoll(token);
    } else {
      dim.symbol = token;
    }
  }
  return dims;
}

bool readSpec(char const* path, std::vector<Node>& nodes, Symbols& symbols, std::string& error) {
  std::ifstream file(path);
  if (!file) {
    error = std::string("cannot read spec ") + path;
    return false;
  }
  std::string text;
  Node current;
  while (std::getline(file, text)) {
    std::istringstream line(text);
    std::string kind;
    if (!(line >> kind)) {
      continue;
    }
    if (kind == "symbol") {
      std::string name;
      Symbol symbol{};
      line >> name >> symbol.min >> symbol.opt >> symbol.max;
      symbols[name] = symbol;
    } else if (kind == "node") {
      current = Node{};
      line >> current.opType >> current.name;
    } else if (kind == "attr") {
      Attribute a;
      line >> a.name >> a.type;
      if (a.type == "INT") {
        a.ints.resize(1);
        line >> a.ints[0];
      } else if (a.type == "FLOAT") {
        a.floats.resize(1);
        line >> a.floats[0];
      } else if (a.type == "STRING") {
        line >> a.text;
      } else {
        std::size_t count = 0;
        line >> count;
        for (std::size_t i = 0; i < count; ++i) {
          if (a.type == "INTS") {
            int64_t v;
            line >> v;
            a.ints.push_back(v);
          } else {
            float v;
            line >> v;
            a.floats.push_back(v);
          }
        }
      }
      current.attributes.push_back(a);
    } else if (kind == "input" || kind == "output") {
      Tensor tensor;
      line >> tensor.elemType;
      tensor.dims = readDims(line);
      (kind == "input" ? current.inputs : current.outputs).push_back(tensor);
    } else if (kind == "bad_input") {
      BadInput bad{};
      line >> bad.index;
      bad.dims = readDims(line);
      current.badInputs.push_back(bad);
    } else if (kind == "end") {
      nodes.push_back(current);
    } else {
      error = "unknown spec line: " + text;
      return false;
    }
  }
  return true;
}

// ------------------------------------------------------------------------- expression builder

enum class Profile { kMin, kOpt, kMax };

class ExprNode : public apiv::VDimensionExpr {
 public:
  enum class Kind { kConstant, kSymbol, kOperation };

  static ExprNode constantNode(int64_t value) { return ExprNode(Kind::kConstant, value, "", {}, nullptr, nullptr); }
  static ExprNode symbolNode(std::string const& name) { return ExprNode(Kind::kSymbol, 0, name, {}, nullptr, nullptr); }
  static ExprNode operationNode(DimensionOperation op, ExprNode const* a, ExprNode const* b) {
    return ExprNode(Kind::kOperation, 0, "", op, a, b);
  }

  bool isConstant() const override {
    return mKind == Kind::kConstant || (mKind == Kind::kOperation && mA->isConstant() && mB->isConstant());
  }
  int64_t getConstantValue() const override { return isConstant() ? evaluate({}, Profile::kOpt) : -1; }
  bool isSizeTensor() const override { return false; }

  int64_t evaluate(Symbols const& symbols, Profile profile) const {
    switch (mKind) {
      case Kind::kConstant: return mValue;
      case Kind::kSymbol: {
        auto it = symbols.find(mSymbol);
        if (it == symbols.end()) {
          return -1;
        }
        return profile == Profile::kMin ? it->second.min : profile == Profile::kOpt ? it->second.opt : it->second.max;
      }
      case Kind::kOperation: break;
    }
    int64_t const a = mA->evaluate(symbols, profile);
    int64_t const b = mB->evaluate(symbols, profile);
    switch (mOp) {
      case DimensionOperation::kSUM: return a + b;
      case DimensionOperation::kPROD: return a * b;
      case DimensionOperation::kMAX: return a > b ? a : b;
      case DimensionOperation::kMIN: return a < b ? a : b;
      case DimensionOperation::kSUB: return a - b;
      case DimensionOperation::kEQUAL: return a == b ? 1 : 0;
      case DimensionOperation::kLESS: return a < b ? 1 : 0;
      case DimensionOperation::kFLOOR_DIV: return b == 0 ? -1 : (a >= 0 ? a / b : -((-a + b - 1) / b));
      case DimensionOperation::kCEIL_DIV: return b == 0 ? -1 : (a + b - 1) / b;
    }
    return -1;
  }

  // "7", "N", "(N*16)": how the plugin built the size, for messages.
  std::string text() const {
    if (mKind == Kind::kConstant) {
      return std::to_string(mValue);
    }
    if (mKind == Kind::kSymbol) {
      return mSymbol;
    }
    static char const* const ops[] = {"+", "*", " max ", " min ", "-", "==", "<", "//", " ceildiv "};
    return "(" + mA->text() + ops[static_cast<int32_t>(mOp)] + mB->text() + ")";
  }

 private:
  ExprNode(Kind kind, int64_t value, std::string symbol, DimensionOperation op, ExprNode const* a, ExprNode const* b)
      : mKind(kind), mValue(value), mSymbol(std::move(symbol)), mOp(op), mA(a), mB(b) {}

  Kind mKind;
  int64_t mValue;
  std::string mSymbol;
  DimensionOperation mOp;
  ExprNode const* mA;
  ExprNode const* mB;
};

// The public face TensorRT hands to plugins: IDimensionExpr forwards to its implementation.
class Expr : public IDimensionExpr {
 public:
  explicit Expr(ExprNode* node) : mNode(node) { mImpl = node; }
  ExprNode const* node() const { return mNode; }

 private:
  ExprNode* mNode;
};

class ExprArena {
 public:
  IDimensionExpr const* make(ExprNode node) {
    mNodes.push_back(std::move(node));
    mExprs.emplace_back(&mNodes.back());
    return &mExprs.back();
  }
  // Every expression a plugin returns must be one this arena (the builder) made.
  static ExprNode const* nodeOf(IDimensionExpr const* expr) { return static_cast<Expr const*>(expr)->node(); }

 private:
  std::deque<ExprNode> mNodes;
  std::deque<Expr> mExprs;
};

class ExprBuilderImpl : public apiv::VExprBuilder {
 public:
  explicit ExprBuilderImpl(ExprArena& arena) : mArena(arena) {}
  IDimensionExpr const* constant(int64_t value) override { return mArena.make(ExprNode::constantNode(value)); }
  IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& first,
                                  IDimensionExpr const& second) override {
    return mArena.make(ExprNode::operationNode(op, ExprArena::nodeOf(&first), ExprArena::nodeOf(&second)));
  }
  IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
    return nullptr;  // the sspnet plugins have no size-tensor outputs
  }

 private:
  ExprArena& mArena;
};

class ExprBuilder : public IExprBuilder {
 public:
  explicit ExprBuilder(ExprBuilderImpl* impl) { mImpl = impl; }
};

DimsExprs toDimsExprs(std::vector<Dim> const& dims, ExprArena& arena) {
  DimsExprs out{};
  out.nbDims = static_cast<int32_t>(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    out.d[i] = dims[i].value >= 0 ? arena.make(ExprNode::constantNode(dims[i].value))
                                  : arena.make(ExprNode::symbolNode(dims[i].symbol));
  }
  return out;
}

// -1 for a symbol: TensorRT's build-time descriptor of a dynamic size.
Dims toDims(std::vector<Dim> const& dims, Symbols const& symbols, Profile const* profile) {
  Dims out{};
  out.nbDims = static_cast<int32_t>(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i].value >= 0) {
      out.d[i] = dims[i].value;
    } else if (profile == nullptr) {
      out.d[i] = -1;
    } else {
      ExprNode const node = ExprNode::symbolNode(dims[i].symbol);
      out.d[i] = node.evaluate(symbols, *profile);
    }
  }
  return out;
}

// ----------------------------------------------------------------------- the parser's fields

// PluginFields as the ONNX parser's loadFields() builds them, with the storage they point into.
struct ParserFields {
  std::deque<std::vector<unsigned char>> storage;
  std::vector<PluginField> fields;
  std::vector<std::string> passed, absent;
  PluginFieldCollection collection() const { return PluginFieldCollection{static_cast<int32_t>(fields.size()), fields.data()}; }

  template <typename T>
  void add(char const* name, std::vector<T> const& values, PluginFieldType type) {
    storage.emplace_back(reinterpret_cast<unsigned char const*>(values.data()),
                         reinterpret_cast<unsigned char const*>(values.data() + values.size()));
    fields.emplace_back(name, storage.back().data(), type, static_cast<int32_t>(values.size()));
  }
};

void loadParserFields(Node const& node, PluginFieldCollection const* fieldNames, ParserFields& out) {
  for (int32_t i = 0; i < fieldNames->nbFields; ++i) {
    char const* name = fieldNames->fields[i].name;
    Attribute const* a = node.attribute(name);
    if (a == nullptr) {
      out.absent.push_back(name);  // the parser logs a warning; the creator's default applies
      continue;
    }
    out.passed.push_back(name);
    if (a->type == "INT" || a->type == "INTS") {
      std::vector<int32_t> values;
      for (int64_t v : a->ints) {
        values.push_back(static_cast<int32_t>(v));  // OnnxAttrs::get<int32_t>: narrowed, unchecked
      }
      out.add(name, values, PluginFieldType::kINT32);
    } else if (a->type == "FLOAT" || a->type == "FLOATS") {
      out.add(name, a->floats, PluginFieldType::kFLOAT32);
    } else {
      std::vector<char> chars(a->text.begin(), a->text.end());
      chars.push_back('\0');
      out.add(name, chars, PluginFieldType::kCHAR);
    }
  }
}

// Deep copy of a field collection (what TensorRT writes into the engine and reads back).
struct FieldCopy {
  std::deque<std::string> names;
  std::deque<std::vector<unsigned char>> data;
  std::vector<PluginField> fields;

  // Moves keep the addresses `fields` points to (deque elements stay put); copies would not.
  FieldCopy(FieldCopy const&) = delete;
  FieldCopy(FieldCopy&&) = default;
  FieldCopy& operator=(FieldCopy&&) = default;

  explicit FieldCopy(PluginFieldCollection const* fc) {
    for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i) {
      PluginField const& f = fc->fields[i];
      std::size_t const bytes = static_cast<std::size_t>(f.length) * elementSize(f.type);
      names.emplace_back(f.name != nullptr ? f.name : "");
      auto const* begin = static_cast<unsigned char const*>(f.data);
      data.emplace_back(begin, begin + (begin != nullptr ? bytes : 0));
      fields.emplace_back(names.back().c_str(), data.back().data(), f.type, f.length);
    }
  }
  PluginFieldCollection collection() const { return PluginFieldCollection{static_cast<int32_t>(fields.size()), fields.data()}; }

  static std::size_t elementSize(PluginFieldType type) {
    switch (type) {
      case PluginFieldType::kINT32:
      case PluginFieldType::kFLOAT32: return 4;
      case PluginFieldType::kINT64:
      case PluginFieldType::kFLOAT64: return 8;
      case PluginFieldType::kFLOAT16:
      case PluginFieldType::kINT16:
      case PluginFieldType::kBF16: return 2;
      default: return 1;
    }
  }

  bool operator==(FieldCopy const& other) const {
    if (fields.size() != other.fields.size()) {
      return false;
    }
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (names[i] != other.names[i] || fields[i].type != other.fields[i].type ||
          fields[i].length != other.fields[i].length || data[i] != other.data[i]) {
        return false;
      }
    }
    return true;
  }

  std::string json() const {
    std::vector<std::string> items;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      std::vector<std::string> values;
      for (int32_t k = 0; k < fields[i].length; ++k) {
        unsigned char const* at = data[i].data() + k * elementSize(fields[i].type);
        if (fields[i].type == PluginFieldType::kINT32) {
          int32_t v;
          std::memcpy(&v, at, 4);
          values.push_back(std::to_string(v));
        } else if (fields[i].type == PluginFieldType::kFLOAT32) {
          float v;
          std::memcpy(&v, at, 4);
          values.push_back(number(v));
        } else if (fields[i].type == PluginFieldType::kINT64) {
          int64_t v;
          std::memcpy(&v, at, 8);
          values.push_back(std::to_string(v));
        }
      }
      items.push_back(Object()
                          .add("name", quoted(names[i]))
                          .add("type", std::to_string(static_cast<int32_t>(fields[i].type)))
                          .add("length", std::to_string(fields[i].length))
                          .add("values", "[" + [&] {
                            std::string joined;
                            for (std::size_t k = 0; k < values.size(); ++k) joined += (k ? ", " : "") + values[k];
                            return joined;
                          }() + "]")
                          .str());
    }
    return array(items, [](std::string const& s) { return s; });
  }
};

// --------------------------------------------------------------------------------- the driver

class FakeResourceContext : public IPluginResourceContext {
 public:
  IGpuAllocator* getGpuAllocator() const noexcept override { return nullptr; }
  IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
};

struct Capabilities {
  IPluginV3OneCore* core = nullptr;
  IPluginV3OneBuild* build = nullptr;
  IPluginV3OneRuntime* runtime = nullptr;
};

Capabilities capabilities(IPluginV3* plugin) {
  Capabilities c;
  c.core = static_cast<IPluginV3OneCore*>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
  c.build = static_cast<IPluginV3OneBuild*>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
  c.runtime = static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
  return c;
}

// One accepted I/O combination: a (type, format) per position, inputs first.
struct Combination {
  std::vector<DataType> types;
  std::vector<TensorFormat> formats;

  std::string label(std::size_t nbInputs) const {
    bool anyHalf = false, anyFloat = false;
    for (std::size_t i = 0; i < nbInputs; ++i) {
      anyHalf |= types[i] == DataType::kHALF;
      anyFloat |= types[i] == DataType::kFLOAT;
    }
    return anyHalf && anyFloat ? "mixed" : anyHalf ? "fp16" : "fp32";
  }
  std::string json() const {
    std::vector<std::string> items;
    for (std::size_t i = 0; i < types.size(); ++i) {
      items.push_back(std::string(typeName(types[i])) + ":" + formatName(formats[i]));
    }
    return strings(items);
  }
};

class NodeDriver {
 public:
  NodeDriver(Node const& node, std::size_t index, Symbols const& symbols, fake_tensorrt::RecordingLogger& logger,
             char const* enqueueDir)
      : mNode(node), mIndex(index), mSymbols(symbols), mLogger(logger), mEnqueueDir(enqueueDir) {}

  std::string run() {
    Object result;
    result.add("op_type", quoted(mNode.opType)).add("name", quoted(mNode.name));
    Attribute const* version = mNode.attribute("plugin_version");
    Attribute const* ns = mNode.attribute("plugin_namespace");
    std::string const versionText = version != nullptr ? version->text : "1";
    std::string const nsText = ns != nullptr ? ns->text : "";
    auto* creator = static_cast<IPluginCreatorV3One*>(
        fake_tensorrt::registry().getCreator(mNode.opType.c_str(), versionText.c_str(), nsText.c_str()));
    result.add("lookup", Object()
                             .add("version", quoted(versionText))
                             .add("namespace", quoted(nsText))
                             .add("found", boolean(creator != nullptr))
                             .str());
    if (creator == nullptr) {
      return result.str();
    }
    result.add("creator_kind", quoted(creator->getInterfaceInfo().kind));

    // ---- build phase
    ParserFields parserFields;
    loadParserFields(mNode, creator->getFieldNames(), parserFields);
    result.add("fields_passed", strings(parserFields.passed)).add("fields_absent", strings(parserFields.absent));
    PluginFieldCollection const fc = parserFields.collection();
    std::size_t const mark = mLogger.messages.size();
    std::unique_ptr<IPluginV3> plugin(creator->createPlugin(mNode.name.c_str(), &fc, TensorRTPhase::kBUILD));
    result.add("build_plugin", boolean(plugin != nullptr)).add("build_messages", strings(mLogger.since(mark)));
    if (!plugin) {
      return result.str();
    }
    Capabilities const caps = capabilities(plugin.get());
    result.add("capabilities",
               Object()
                   .add("core", boolean(caps.core != nullptr))
                   .add("build", boolean(caps.build != nullptr))
                   .add("runtime", boolean(caps.runtime != nullptr))
                   .add("identity_matches_creator",
                        boolean(caps.core != nullptr &&
                                std::string(caps.core->getPluginName()) == creator->getPluginName() &&
                                std::string(caps.core->getPluginVersion()) == creator->getPluginVersion() &&
                                std::string(caps.core->getPluginNamespace()) == creator->getPluginNamespace()))
                   .str());
    if (caps.build == nullptr || caps.runtime == nullptr) {
      return result.str();
    }
    mNbInputs = static_cast<int32_t>(mNode.inputs.size());
    mNbOutputs = caps.build->getNbOutputs();
    result.add("nb_outputs", std::to_string(mNbOutputs));
    if (mNbOutputs != static_cast<int32_t>(mNode.outputs.size())) {
      return result.str();
    }
    result.add("output_shapes", outputShapes(*caps.build));
    std::vector<Combination> const combinations = formatCombinations(*caps.build);
    result.add("format_combinations", array(combinations, [](Combination const& c) { return c.json(); }));
    result.add("lookahead_independent", boolean(mLookaheadIndependent));
    result.add("output_types_agree", boolean(outputTypesAgree(*caps.build, combinations)));

    // configurePlugin / getWorkspaceSize for every accepted combination, each on a fresh clone
    // (TensorRT configures the clones it times). The first all-fp32 one is serialised below.
    std::vector<std::string> configured;
    std::unique_ptr<IPluginV3> serialisedFrom;
    Combination const* serialisedCombination = nullptr;
    for (Combination const& combination : combinations) {
      std::unique_ptr<IPluginV3> candidate(plugin->clone());
      IPluginV3OneBuild* build = capabilities(candidate.get()).build;
      std::vector<DynamicPluginTensorDesc> in, out;
      describe(combination, in, out);
      std::size_t const before = mLogger.messages.size();
      int32_t const status = build->configurePlugin(in.data(), mNbInputs, out.data(), mNbOutputs);
      std::size_t const workspace = build->getWorkspaceSize(in.data(), mNbInputs, out.data(), mNbOutputs);
      std::string const label = combination.label(mNode.inputs.size());
      configured.push_back(Object()
                               .add("combination", combination.json())
                               .add("label", quoted(label))
                               .add("configure_status", std::to_string(status))
                               .add("workspace_bytes", std::to_string(workspace))
                               .add("messages", strings(mLogger.since(before)))
                               .str());
      if (status == 0) {  // what an engine built with this combination would carry (--enqueue)
        mEnqueueRuns.push_back(
            EnqueueRun{combination, workspace, FieldCopy(capabilities(candidate.get()).runtime->getFieldsToSerialize())});
      }
      if (label == "fp32" && serialisedFrom == nullptr) {
        serialisedFrom = std::move(candidate);
        serialisedCombination = &combination;
      }
    }
    result.add("configured", array(configured, [](std::string const& s) { return s; }));

    // ---- serialise, deserialise (runtime phase), copies
    IPluginV3* source = serialisedFrom ? serialisedFrom.get() : plugin.get();
    FieldCopy const serialised(capabilities(source).runtime->getFieldsToSerialize());
    result.add("serialised_fields", serialised.json());
    PluginFieldCollection const runtimeFc = serialised.collection();
    std::size_t const beforeRuntime = mLogger.messages.size();
    std::unique_ptr<IPluginV3> runtime(creator->createPlugin(mNode.name.c_str(), &runtimeFc, TensorRTPhase::kRUNTIME));
    result.add("runtime_plugin", boolean(runtime != nullptr))
        .add("runtime_messages", strings(mLogger.since(beforeRuntime)));
    if (!runtime) {
      return result.str();
    }
    FieldCopy const reserialised(capabilities(runtime.get()).runtime->getFieldsToSerialize());
    result.add("roundtrip_equal", boolean(reserialised == serialised));
    // copies() deletes the build-phase plugin (a copy must outlive it): the refusals below ask
    // getOutputShapes of a clone made before that.
    std::unique_ptr<IPluginV3> const forRefusals(plugin->clone());
    result.add("copies", copies(plugin, runtime, serialised));

    Combination const fp32 = serialisedCombination != nullptr ? *serialisedCombination : Combination{};
    if (serialisedCombination != nullptr) {
      result.add("on_shape_change", onShapeChange(*capabilities(runtime.get()).runtime, fp32, nullptr));
    }
    result.add("refusals", refusals(*creator, parserFields, *capabilities(forRefusals.get()).build, runtime.get(), fp32));
    if (mEnqueueDir != nullptr) {
      result.add("enqueue", enqueueAll(*creator));
    }
    return result.str();
  }

 private:
  struct EnqueueRun {
    Combination combination;
    std::size_t workspace;
    FieldCopy fields;
  };

  // Output sizes the plugin declares, evaluated at the profile's opt and max.
  std::string outputShapes(IPluginV3OneBuild& build) {
    ExprArena arena;
    ExprBuilderImpl impl(arena);
    ExprBuilder builder(&impl);
    std::vector<DimsExprs> inputs;
    for (Tensor const& tensor : mNode.inputs) {
      inputs.push_back(toDimsExprs(tensor.dims, arena));
    }
    std::vector<DimsExprs> outputs(static_cast<std::size_t>(mNbOutputs));
    std::size_t const before = mLogger.messages.size();
    int32_t const status =
        build.getOutputShapes(inputs.data(), mNbInputs, nullptr, 0, outputs.data(), mNbOutputs, builder);
    Object result;
    result.add("status", std::to_string(status)).add("messages", strings(mLogger.since(before)));
    std::vector<std::string> shapes;
    mOutputDims[0].clear();
    mOutputDims[1].clear();
    for (DimsExprs const& dims : outputs) {
      std::vector<std::string> items;
      std::vector<Dim> atOpt, atMax;
      for (int32_t i = 0; status == 0 && i < dims.nbDims; ++i) {
        ExprNode const* node = ExprArena::nodeOf(dims.d[i]);
        items.push_back(Object()
                            .add("text", quoted(node->text()))
                            .add("constant", boolean(node->isConstant()))
                            .add("opt", std::to_string(node->evaluate(mSymbols, Profile::kOpt)))
                            .add("max", std::to_string(node->evaluate(mSymbols, Profile::kMax)))
                            .str());
        Dim opt, max;
        opt.value = node->evaluate(mSymbols, Profile::kOpt);
        max.value = node->evaluate(mSymbols, Profile::kMax);
        atOpt.push_back(opt);
        atMax.push_back(max);
      }
      shapes.push_back(array(items, [](std::string const& s) { return s; }));
      mOutputDims[0].push_back(atOpt);
      mOutputDims[1].push_back(atMax);
    }
    result.add("dims", array(shapes, [](std::string const& s) { return s; }));
    return result.str();
  }

  void fillDesc(DynamicPluginTensorDesc& desc, std::vector<Dim> const& dims, DataType type, TensorFormat format) {
    Profile const kMinP = Profile::kMin, kOptP = Profile::kOpt, kMaxP = Profile::kMax;
    desc.desc.dims = toDims(dims, mSymbols, nullptr);
    desc.desc.type = type;
    desc.desc.format = format;
    desc.desc.scale = 1.0F;
    desc.min = toDims(dims, mSymbols, &kMinP);
    desc.opt = toDims(dims, mSymbols, &kOptP);
    desc.max = toDims(dims, mSymbols, &kMaxP);
  }

  std::vector<Dim> const& dimsAt(int32_t pos) const {
    return pos < mNbInputs ? mNode.inputs[static_cast<std::size_t>(pos)].dims
                           : mNode.outputs[static_cast<std::size_t>(pos - mNbInputs)].dims;
  }

  void describe(Combination const& c, std::vector<DynamicPluginTensorDesc>& in,
                std::vector<DynamicPluginTensorDesc>& out) {
    in.assign(static_cast<std::size_t>(mNbInputs), DynamicPluginTensorDesc{});
    out.assign(static_cast<std::size_t>(mNbOutputs), DynamicPluginTensorDesc{});
    for (int32_t pos = 0; pos < mNbInputs + mNbOutputs; ++pos) {
      DynamicPluginTensorDesc& desc = pos < mNbInputs ? in[pos] : out[pos - mNbInputs];
      fillDesc(desc, dimsAt(pos), c.types[pos], c.formats[pos]);
    }
  }

  // TensorRT's format negotiation: position by position, a candidate is kept when the plugin
  // accepts it given the positions before it. Positions after `pos` hold whatever TensorRT has
  // there; each question is asked twice with different garbage there, and must get one answer.
  std::vector<Combination> formatCombinations(IPluginV3OneBuild& build) {
    int32_t const total = mNbInputs + mNbOutputs;
    std::vector<DynamicPluginTensorDesc> inOut(static_cast<std::size_t>(total));
    std::vector<Combination> accepted;
    Combination prefix;
    std::function<void(int32_t)> extend = [&](int32_t pos) {
      if (pos == total) {
        accepted.push_back(prefix);
        return;
      }
      for (DataType type : kCandidateTypes) {
        for (TensorFormat format : kCandidateFormats) {
          fillDesc(inOut[pos], dimsAt(pos), type, format);
          bool answers[2];
          for (int32_t variant = 0; variant < 2; ++variant) {
            for (int32_t later = pos + 1; later < total; ++later) {
              fillDesc(inOut[later], dimsAt(later), variant == 0 ? DataType::kBOOL : DataType::kHALF,
                       variant == 0 ? TensorFormat::kCHW32 : TensorFormat::kLINEAR);
            }
            answers[variant] = build.supportsFormatCombination(pos, inOut.data(), mNbInputs, mNbOutputs);
          }
          mLookaheadIndependent = mLookaheadIndependent && answers[0] == answers[1];
          if (answers[0]) {
            prefix.types.push_back(type);
            prefix.formats.push_back(format);
            extend(pos + 1);
            prefix.types.pop_back();
            prefix.formats.pop_back();
            fillDesc(inOut[pos], dimsAt(pos), type, format);
          }
        }
      }
    };
    extend(0);
    return accepted;
  }

  bool outputTypesAgree(IPluginV3OneBuild& build, std::vector<Combination> const& combinations) {
    for (Combination const& c : combinations) {
      std::vector<DataType> outputs(static_cast<std::size_t>(mNbOutputs));
      if (build.getOutputDataTypes(outputs.data(), mNbOutputs, c.types.data(), mNbInputs) != 0) {
        return false;
      }
      for (int32_t o = 0; o < mNbOutputs; ++o) {
        if (outputs[o] != c.types[mNbInputs + o]) {
          return false;
        }
      }
    }
    return true;
  }

  // Runtime descriptors at the profile's opt (or max) shapes; `replace` swaps one input's dims.
  void runtimeDescs(Combination const& c, std::vector<PluginTensorDesc>& in, std::vector<PluginTensorDesc>& out,
                    BadInput const* replace, Profile profile = Profile::kOpt) {
    std::vector<std::vector<Dim>> const& outputDims = mOutputDims[profile == Profile::kMax ? 1 : 0];
    in.assign(static_cast<std::size_t>(mNbInputs), PluginTensorDesc{});
    out.assign(static_cast<std::size_t>(mNbOutputs), PluginTensorDesc{});
    for (int32_t pos = 0; pos < mNbInputs + mNbOutputs; ++pos) {
      PluginTensorDesc& desc = pos < mNbInputs ? in[pos] : out[pos - mNbInputs];
      std::vector<Dim> const& dims =
          replace != nullptr && pos == replace->index
              ? replace->dims
              : (pos < mNbInputs ? dimsAt(pos) : outputDims[static_cast<std::size_t>(pos - mNbInputs)]);
      desc.dims = toDims(dims, mSymbols, &profile);
      desc.type = c.types[pos];
      desc.format = c.formats[pos];
      desc.scale = 1.0F;
    }
  }

  std::string onShapeChange(IPluginV3OneRuntime& runtime, Combination const& c, BadInput const* replace) {
    std::vector<PluginTensorDesc> in, out;
    runtimeDescs(c, in, out, replace);
    std::size_t const before = mLogger.messages.size();
    int32_t const status = runtime.onShapeChange(in.data(), mNbInputs, out.data(), mNbOutputs);
    return Object().add("status", std::to_string(status)).add("messages", strings(mLogger.since(before))).str();
  }

  // clone() and attachToContext() copies: distinct objects with their own field storage, equal
  // fields, and alive after the object they were made from is deleted.
  std::string copies(std::unique_ptr<IPluginV3>& build, std::unique_ptr<IPluginV3>& runtime, FieldCopy const& expected) {
    std::unique_ptr<IPluginV3> clone(build->clone());
    PluginFieldCollection const* cloneFields = capabilities(clone.get()).runtime->getFieldsToSerialize();
    PluginFieldCollection const* buildFields = capabilities(build.get()).runtime->getFieldsToSerialize();
    bool sharedStorage = false;
    for (int32_t i = 0; i < cloneFields->nbFields && i < buildFields->nbFields; ++i) {
      sharedStorage |= cloneFields->fields[i].data == buildFields->fields[i].data;
    }
    FieldCopy const buildCopy(buildFields);
    build.reset();
    bool const cloneOutlives = FieldCopy(capabilities(clone.get()).runtime->getFieldsToSerialize()) == buildCopy;

    FakeResourceContext first, second;
    IPluginV3OneRuntime* runtimeCaps = capabilities(runtime.get()).runtime;
    std::unique_ptr<IPluginV3> attachedA(runtimeCaps->attachToContext(&first));
    std::unique_ptr<IPluginV3> attachedB(runtimeCaps->attachToContext(&second));
    bool const distinct = attachedA && attachedB && attachedA.get() != attachedB.get() &&
                          attachedA.get() != runtime.get() && attachedB.get() != runtime.get();
    runtime.reset();
    bool const attachedOutlive =
        distinct && FieldCopy(capabilities(attachedA.get()).runtime->getFieldsToSerialize()) == expected &&
        FieldCopy(capabilities(attachedB.get()).runtime->getFieldsToSerialize()) == expected;
    runtime = std::move(attachedA);  // the context's copy is what TensorRT runs from here on
    return Object()
        .add("clone_distinct", boolean(clone != nullptr && !sharedStorage))
        .add("clone_outlives_original", boolean(cloneOutlives))
        .add("attached_distinct", boolean(distinct))
        .add("attached_outlive_original", boolean(attachedOutlive))
        .str();
  }

  std::string refusal(std::string const& what, bool refused, std::size_t before) {
    return Object()
        .add("case", quoted(what))
        .add("refused", boolean(refused))
        .add("messages", strings(mLogger.since(before)))
        .str();
  }

  std::string refusals(IPluginCreatorV3One& creator, ParserFields const& good, IPluginV3OneBuild& build,
                       IPluginV3* runtime, Combination const& c) {
    std::vector<std::string> cases;
    PluginFieldCollection const* names = creator.getFieldNames();
    // createPlugin: the node's fields with one of them (or an extra one) wrong.
    auto tryFields = [&](std::string const& what, std::vector<PluginField> fields) {
      PluginFieldCollection const fc{static_cast<int32_t>(fields.size()), fields.data()};
      std::size_t const before = mLogger.messages.size();
      std::unique_ptr<IPluginV3> plugin(creator.createPlugin(mNode.name.c_str(), &fc, TensorRTPhase::kBUILD));
      cases.push_back(refusal(what, plugin == nullptr, before));
    };
    static int32_t const kInts[16] = {1};
    static float const kFloats[16] = {1.0F};
    static char const kText[] = "1";
    std::vector<PluginField> base = good.fields;
    base.emplace_back("no_such_field", kInts, PluginFieldType::kINT32, 1);
    tryFields("unknown field no_such_field", base);
    for (int32_t i = 0; i < names->nbFields; ++i) {
      PluginField const& field = names->fields[i];
      bool const isInt = field.type == PluginFieldType::kINT32;
      std::vector<PluginField> fields;
      for (PluginField const& f : good.fields) {
        if (std::strcmp(f.name, field.name) != 0) {
          fields.push_back(f);
        }
      }
      std::vector<PluginField> wrongType = fields;
      wrongType.emplace_back(field.name, isInt ? static_cast<void const*>(kFloats) : kInts,
                             isInt ? PluginFieldType::kFLOAT32 : PluginFieldType::kINT32, 1);
      tryFields(std::string("field ") + field.name + " with the wrong type", wrongType);
      std::vector<PluginField> text = fields;
      text.emplace_back(field.name, kText, PluginFieldType::kCHAR, 2);
      tryFields(std::string("field ") + field.name + " as a string", text);
      std::vector<PluginField> tooMany = fields;
      tooMany.emplace_back(field.name, isInt ? static_cast<void const*>(kInts) : kFloats, field.type,
                           field.length + 1);
      tryFields(std::string("field ") + field.name + " with " + std::to_string(field.length + 1) + " values",
                tooMany);
      std::vector<PluginField> none = fields;
      none.emplace_back(field.name, isInt ? static_cast<void const*>(kInts) : kFloats, field.type, 0);
      tryFields(std::string("field ") + field.name + " with no value", none);
    }
    // Shapes: at build time (getOutputShapes with these dims) and at runtime (onShapeChange).
    for (BadInput const& bad : mNode.badInputs) {
      std::string text = "input " + std::to_string(bad.index) + " [";
      for (std::size_t k = 0; k < bad.dims.size(); ++k) {
        text += (k ? ", " : "") + (bad.dims[k].value >= 0 ? std::to_string(bad.dims[k].value) : bad.dims[k].symbol);
      }
      text += "]";
      ExprArena arena;
      ExprBuilderImpl impl(arena);
      ExprBuilder builder(&impl);
      std::vector<DimsExprs> inputs;
      for (int32_t i = 0; i < mNbInputs; ++i) {
        inputs.push_back(toDimsExprs(i == bad.index ? bad.dims : mNode.inputs[i].dims, arena));
      }
      std::vector<DimsExprs> outputs(static_cast<std::size_t>(mNbOutputs));
      std::size_t before = mLogger.messages.size();
      int32_t const status =
          build.getOutputShapes(inputs.data(), mNbInputs, nullptr, 0, outputs.data(), mNbOutputs, builder);
      cases.push_back(refusal("getOutputShapes with " + text, status != 0, before));
      if (runtime != nullptr && !c.types.empty()) {
        std::vector<PluginTensorDesc> in, out;
        runtimeDescs(c, in, out, &bad);
        before = mLogger.messages.size();
        int32_t const shapeStatus =
            capabilities(runtime).runtime->onShapeChange(in.data(), mNbInputs, out.data(), mNbOutputs);
        cases.push_back(refusal("onShapeChange with " + text, shapeStatus != 0, before));
      }
    }
    // Input counts.
    {
      std::vector<DataType> types(static_cast<std::size_t>(mNbInputs + 1), DataType::kFLOAT);
      std::vector<DataType> outputs(static_cast<std::size_t>(mNbOutputs));
      std::size_t const before = mLogger.messages.size();
      int32_t const status = build.getOutputDataTypes(outputs.data(), mNbOutputs, types.data(), mNbInputs + 1);
      cases.push_back(refusal("getOutputDataTypes with one input too many", status != 0, before));
    }
    return array(cases, [](std::string const& s) { return s; });
  }

  // ---- GPU: enqueue on device buffers, inputs and outputs through files.

  static std::vector<unsigned char> readFile(std::string const& path) {
    std::ifstream file(path, std::ios::binary);
    return std::vector<unsigned char>((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  }

  static int64_t volume(Dims const& dims) {
    int64_t v = 1;
    for (int32_t i = 0; i < dims.nbDims; ++i) {
      v *= dims.d[i];
    }
    return v;
  }

  std::string enqueueAll(IPluginCreatorV3One& creator) {
    std::vector<std::string> runs;
    for (EnqueueRun const& run : mEnqueueRuns) {
      runs.push_back(enqueueOne(creator, run, Profile::kOpt));
      runs.push_back(enqueueOne(creator, run, Profile::kMax));
    }
    return array(runs, [](std::string const& s) { return s; });
  }

  std::string enqueueOne(IPluginCreatorV3One& creator, EnqueueRun const& run, Profile profile) {
    Combination const& c = run.combination;
    std::string const label = c.label(mNode.inputs.size());
    std::string const profileName = profile == Profile::kMax ? "max" : "opt";
    Object result;
    result.add("label", quoted(label)).add("profile", quoted(profileName));
    PluginFieldCollection const fc = run.fields.collection();
    std::unique_ptr<IPluginV3> deserialised(creator.createPlugin(mNode.name.c_str(), &fc, TensorRTPhase::kRUNTIME));
    FakeResourceContext context;
    std::unique_ptr<IPluginV3> plugin(
        deserialised ? capabilities(deserialised.get()).runtime->attachToContext(&context) : nullptr);
    if (!plugin) {
      return result.add("status", "-100").str();
    }
    std::vector<PluginTensorDesc> in, out;
    runtimeDescs(c, in, out, nullptr, profile);
    IPluginV3OneRuntime* runtime = capabilities(plugin.get()).runtime;
    if (runtime->onShapeChange(in.data(), mNbInputs, out.data(), mNbOutputs) != 0) {
      return result.add("status", "-101").str();
    }
    std::vector<void*> inputs, outputs;
    std::string const prefix = std::string(mEnqueueDir) + "/n" + std::to_string(mIndex) + "_" + profileName;
    bool ok = true;
    for (int32_t i = 0; i < mNbInputs; ++i) {
      std::vector<unsigned char> host = readFile(prefix + "_in" + std::to_string(i) + ".bin");
      int64_t const count = volume(in[i].dims);
      if (host.size() != static_cast<std::size_t>(count) * 4) {  // missing or the wrong size
        ok = false;
        host.assign(static_cast<std::size_t>(count) * 4, 0);
      }
      std::vector<unsigned char> device;
      if (in[i].type == DataType::kHALF) {  // the file holds float32
        std::vector<__half> halves(static_cast<std::size_t>(count));
        for (int64_t k = 0; k < count; ++k) {
          float v;
          std::memcpy(&v, host.data() + 4 * k, 4);
          halves[k] = __float2half(v);
        }
        device.assign(reinterpret_cast<unsigned char*>(halves.data()),
                      reinterpret_cast<unsigned char*>(halves.data() + count));
      } else {
        device = host;
      }
      void* buffer = nullptr;
      // Exact sizes (1 byte for an empty tensor): an overrun by the kernel is caught.
      ok = ok && cudaMalloc(&buffer, std::max<std::size_t>(device.size(), 1)) == cudaSuccess &&
           cudaMemcpy(buffer, device.data(), device.size(), cudaMemcpyHostToDevice) == cudaSuccess;
      inputs.push_back(buffer);
    }
    for (int32_t o = 0; o < mNbOutputs; ++o) {
      std::size_t const element = out[o].type == DataType::kHALF ? 2 : 4;
      void* buffer = nullptr;
      std::size_t const bytes = static_cast<std::size_t>(volume(out[o].dims)) * element;
      ok = ok && cudaMalloc(&buffer, std::max<std::size_t>(bytes, 1)) == cudaSuccess;
      outputs.push_back(buffer);
    }
    void* workspace = nullptr;
    if (run.workspace > 0) {
      ok = ok && cudaMalloc(&workspace, run.workspace) == cudaSuccess;
    }
    cudaStream_t stream = nullptr;
#ifndef TRT_HARNESS_CUDA_ON_CPU  // the layer runs every launch synchronously: the default stream
    ok = ok && cudaStreamCreate(&stream) == cudaSuccess;
#endif
    int32_t status = -102;
    if (ok) {
      status = runtime->enqueue(in.data(), out.data(), inputs.data(), outputs.data(), workspace, stream);
      ok = cudaStreamSynchronize(stream) == cudaSuccess && cudaGetLastError() == cudaSuccess;
    }
    for (int32_t o = 0; ok && o < mNbOutputs; ++o) {
      int64_t const count = volume(out[o].dims);
      std::vector<float> asFloat(static_cast<std::size_t>(count));
      std::vector<unsigned char> raw(static_cast<std::size_t>(count) * (out[o].type == DataType::kHALF ? 2 : 4));
      ok = cudaMemcpy(raw.data(), outputs[o], raw.size(), cudaMemcpyDeviceToHost) == cudaSuccess;
      if (out[o].type == DataType::kHALF) {
        for (int64_t k = 0; k < count; ++k) {
          __half h;
          std::memcpy(&h, raw.data() + 2 * k, 2);
          asFloat[k] = __half2float(h);
        }
        raw.assign(reinterpret_cast<unsigned char*>(asFloat.data()),
                   reinterpret_cast<unsigned char*>(asFloat.data() + count));
      }
      std::ofstream file(prefix + "_" + label + "_out" + std::to_string(o) + ".bin", std::ios::binary);
      file.write(reinterpret_cast<char const*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    }
    for (void* p : inputs) cudaFree(p);
    for (void* p : outputs) cudaFree(p);
    if (workspace != nullptr) cudaFree(workspace);
#ifndef TRT_HARNESS_CUDA_ON_CPU
    if (stream != nullptr) cudaStreamDestroy(stream);
#endif
    return result.add("status", std::to_string(status))
        .add("cuda_ok", boolean(ok))
        .add("workspace_bytes", std::to_string(run.workspace))
        .str();
  }

  Node const& mNode;
  std::size_t mIndex;
  Symbols const& mSymbols;
  fake_tensorrt::RecordingLogger& mLogger;
  char const* mEnqueueDir;
  int32_t mNbInputs = 0;
  int32_t mNbOutputs = 0;
  bool mLookaheadIndependent = true;
  std::vector<std::vector<Dim>> mOutputDims[2];  // concrete output sizes at the profile's opt, max
  std::vector<EnqueueRun> mEnqueueRuns;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--enqueue")) {
    std::fprintf(stderr, "usage: %s LIBRARY SPEC [--enqueue DIR]\n", argv[0]);
    return 2;
  }
  std::vector<Node> nodes;
  Symbols symbols;
  std::string error;
  if (!readSpec(argv[2], nodes, symbols, error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  // The application's logger, created with its builder / runtime; plain dlopen: the library
  // finds it through libnvinfer's getLogger().
  static fake_tensorrt::RecordingLogger logger;
  fake_tensorrt::setGlobalLogger(&logger);
  void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    std::fprintf(stderr, "dlopen failed: %s\n", dlerror());
    return 1;
  }
  int deviceCount = 0;
  std::string schedule = "device";
#ifdef TRT_HARNESS_CUDA_ON_CPU
  deviceCount = 1;  // the CPU execution layer
  char const* const names[] = {"forward", "reverse", "random"};
  char const* asked = std::getenv("SSPNET_COC_SCHEDULE");
  schedule = asked != nullptr ? asked : "forward";
  int scheduleIndex = -1;
  for (int k = 0; k < 3; ++k) {
    scheduleIndex = schedule == names[k] ? k : scheduleIndex;
  }
  if (scheduleIndex < 0) {
    std::fprintf(stderr, "SSPNET_COC_SCHEDULE must be forward, reverse or random, got %s\n", schedule.c_str());
    return 2;
  }
  char const* seed = std::getenv("SSPNET_COC_SEED");
  coc_set_schedule(scheduleIndex, seed != nullptr ? std::strtoull(seed, nullptr, 10) : 0);
#else
  if (cudaGetDeviceCount(&deviceCount) != cudaSuccess) {
    deviceCount = 0;
  }
#endif
  cudaGetLastError();  // a CPU-only machine leaves an error behind; the plugins must not see it
  std::vector<std::string> registered;
  for (auto const& entry : fake_tensorrt::registry().entries()) {
    registered.push_back(entry.key());
  }
  char const* enqueueDir = argc == 5 && deviceCount > 0 ? argv[4] : nullptr;
  std::vector<std::string> results;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    results.push_back(NodeDriver(nodes[i], i, symbols, logger, enqueueDir).run());
  }
  std::printf("%s\n", Object()
                          .add("nv_tensorrt_major", std::to_string(NV_TENSORRT_MAJOR))
                          .add("nv_tensorrt_minor", std::to_string(NV_TENSORRT_MINOR))
                          .add("cuda_devices", std::to_string(deviceCount))
                          .add("schedule", quoted(schedule))
                          .add("registered", strings(registered))
                          .add("nodes", array(results, [](std::string const& s) { return s; }))
                          .str()
                          .c_str());
  return 0;
}
