// Fuzz target: arbitrary plugin field collections into both sspnet plugin creators and into the
// field reader they share, the way a damaged or hostile engine (runtime phase) or ONNX node
// (build phase) would hand them over. Built with clang's libFuzzer under AddressSanitizer +
// UndefinedBehaviorSanitizer (tests/trt_plugins/fuzz_build.py). Given files instead of a corpus
// folder, the binary runs each once: that replays the corpus and the regression cases; with
// SSPNET_FUZZ_OUTCOMES set it prints what each input did ("sspnet-fuzz-outcome: refused" /
// "accepted" / "read") on stderr.
//
// The creators are taken the way TensorRT's plugin-library loader takes them: setLoggerFinder,
// then getCreators() (csrc/tensorrt/common/pluginLibrary.cpp). Beyond "no crash, no read past a
// buffer", every input checks these properties (a violation aborts, which the fuzzer reports):
//   - a refused collection (createPlugin returns nullptr) logs at least one kERROR message;
//   - an accepted one yields a plugin with all three capabilities, whose fields the kernel's own
//     validate() accepts (with a 1x1 pyramid for RoIAlign: shape-free rules only), and whose
//     serialised fields create a runtime-phase plugin that serialises to the same bytes; a clone
//     serialises to the same bytes too;
//   - readFields() alone: on success every array field holds 1..capacity values.
//
// Input bytes -> one field collection, deterministically (missing bytes read as 0):
//   mode:u8   % 6: 0 NMS build, 1 NMS runtime, 2 RoIAlign build, 3 RoIAlign runtime,
//                  4 readFields(NMS table), 5 readFields(RoIAlign table)
//   flags:u8  bit 0: fc = nullptr; bit 1: fc->fields = nullptr (nbFields kept);
//             bit 2: nbFields negative (-count)
//   count:u8  % 17 fields, each:
//     sel:u8      bits 0-1: 0/1 a known name (next u8 indexes the creators' getFieldNames() plus
//                 "workspace_bytes"), 2 raw name (next u8 % 40 = length, then the bytes; NUL-
//                 terminated, may hold anything), 3 name = nullptr; bit 2: data = nullptr
//     type:u8     < 0xF0: type = value % 16 (the 14 PluginFieldType values and 2 unknown ones),
//                 else a raw int32 (little endian) follows
//     length:u8   < 0xF0: length = value - 16 (-16 .. 223), else a raw int32 follows
//     data        elementSize(type) * clamp(length, 0, kMaxElements) bytes, in an allocation of
//                 exactly that size (so an overread by one byte is caught)
// tests/trt_plugins/fuzz_seeds.py writes inputs in this format (the seed corpus).
#include <NvInferRuntime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "batchedNms/batchedNmsFields.h"
#include "common/fieldBinding.h"
#include "fake_tensorrt.h"
#include "multiLevelRoIAlign/multiLevelRoIAlignFields.h"

using namespace nvinfer1;

extern "C" void setLoggerFinder(ILoggerFinder* finder) noexcept;
extern "C" IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) noexcept;

namespace {

// What the current input did, printed when SSPNET_FUZZ_OUTCOMES is set.
char const* gOutcome = "";

// No plugin field is longer than a few values; data for longer declared lengths is cut here
// (a plugin that read that far would already have overrun its own field storage).
constexpr int64_t kMaxElements = 4096;
// The runtime-only field of the NMS plugin (batchedNmsPlugin.cpp); not in getFieldNames().
constexpr char kWorkspaceBytesField[] = "workspace_bytes";

[[noreturn]] void violated(char const* what, std::string const& detail) {
  std::fprintf(stderr, "PROPERTY VIOLATED: %s: %s\n", what, detail.c_str());
  std::abort();
}

class Reader {
 public:
  Reader(uint8_t const* data, size_t size) : mData(data), mSize(size) {}
  uint8_t u8() { return mPos < mSize ? mData[mPos++] : 0; }
  int32_t i32() {
    uint32_t value = 0;
    for (int k = 0; k < 4; ++k) value |= static_cast<uint32_t>(u8()) << (8 * k);
    return static_cast<int32_t>(value);
  }

 private:
  uint8_t const* mData;
  size_t mSize;
  size_t mPos = 0;
};

size_t elementSize(PluginFieldType type) {
  switch (static_cast<int32_t>(type)) {
    case 0: case 4: case 9: return 2;     // kFLOAT16, kINT16, kBF16
    case 1: case 5: return 4;             // kFLOAT32, kINT32
    case 2: case 10: return 8;            // kFLOAT64, kINT64
    case 7: return sizeof(Dims);          // kDIMS
    case 3: case 6: case 8: case 11: case 12: case 13: return 1;  // kINT8, kCHAR, kUNKNOWN, kFP8, kINT4, kFP4
    default: return 8;                    // unknown to every version: the largest element
  }
}

class LoggerFinder : public ILoggerFinder {
 public:
  fake_tensorrt::RecordingLogger logger;
  ILogger* findLogger() override { return &logger; }
};

struct Library {
  LoggerFinder finder;
  IPluginCreatorV3One* nms = nullptr;
  IPluginCreatorV3One* roiAlign = nullptr;
  std::vector<std::string> knownNames;

  Library() {
    setLoggerFinder(&finder);
    int32_t count = 0;
    IPluginCreatorInterface* const* creators = getCreators(count);
    for (int32_t i = 0; i < count; ++i) {
      auto* creator = static_cast<IPluginCreatorV3One*>(creators[i]);
      std::string const name = creator->getPluginName();
      (name == sspnet::trt::kBatchedNmsName ? nms : roiAlign) = creator;
      PluginFieldCollection const* names = creator->getFieldNames();
      for (int32_t k = 0; k < names->nbFields; ++k) knownNames.push_back(names->fields[k].name);
    }
    knownNames.push_back(kWorkspaceBytesField);
    if (nms == nullptr || roiAlign == nullptr) violated("getCreators", "did not return both creators");
  }
};

Library& library() {
  static Library instance;
  return instance;
}

// One decoded collection; every name, data block and the field array are separate allocations.
struct DecodedFields {
  std::deque<std::unique_ptr<char[]>> names;
  std::deque<std::unique_ptr<unsigned char[]>> data;
  std::unique_ptr<PluginField[]> fields;
  PluginFieldCollection collection{};
  bool nullCollection = false;

  PluginFieldCollection const* fc() const { return nullCollection ? nullptr : &collection; }
};

void decode(Reader& in, uint8_t flags, std::vector<std::string> const& knownNames, DecodedFields& out) {
  int32_t const count = in.u8() % 17;
  out.fields.reset(new PluginField[static_cast<size_t>(count)]);
  for (int32_t i = 0; i < count; ++i) {
    uint8_t const sel = in.u8();
    char const* name = nullptr;
    if ((sel & 3) < 2) {
      name = knownNames[in.u8() % knownNames.size()].c_str();
    } else if ((sel & 3) == 2) {
      size_t const length = in.u8() % 40;
      out.names.emplace_back(new char[length + 1]);
      for (size_t k = 0; k < length; ++k) out.names.back()[k] = static_cast<char>(in.u8());
      out.names.back()[length] = '\0';
      name = out.names.back().get();
    }
    uint8_t const typeByte = in.u8();
    auto const type = static_cast<PluginFieldType>(typeByte < 0xF0 ? typeByte % 16 : in.i32());
    uint8_t const lengthByte = in.u8();
    int32_t const length = lengthByte < 0xF0 ? static_cast<int32_t>(lengthByte) - 16 : in.i32();
    int64_t const elements = length < 0 ? 0 : (length > kMaxElements ? kMaxElements : length);
    size_t const bytes = elementSize(type) * static_cast<size_t>(elements);
    out.data.emplace_back(new unsigned char[bytes]);
    for (size_t k = 0; k < bytes; ++k) out.data.back()[k] = in.u8();
    void const* data = (sel & 4) != 0 ? nullptr : out.data.back().get();
    out.fields[static_cast<size_t>(i)] = PluginField(name, data, type, length);
  }
  out.nullCollection = (flags & 1) != 0;
  out.collection.nbFields = (flags & 4) != 0 ? -count : count;
  out.collection.fields = (flags & 2) != 0 ? nullptr : out.fields.get();
}

// Deep copy of what getFieldsToSerialize() returned, compared byte for byte.
struct Serialised {
  std::vector<std::string> names;
  std::vector<std::vector<unsigned char>> data;
  std::vector<PluginField> fields;

  explicit Serialised(PluginFieldCollection const* fc) {
    if (fc == nullptr) violated("getFieldsToSerialize", "returned nullptr");
    names.reserve(static_cast<size_t>(fc->nbFields));
    data.reserve(static_cast<size_t>(fc->nbFields));
    for (int32_t i = 0; i < fc->nbFields; ++i) {
      PluginField const& f = fc->fields[i];
      if (f.name == nullptr || f.data == nullptr || f.length < 1) {
        violated("getFieldsToSerialize", "a field without name, data or values");
      }
      auto const* begin = static_cast<unsigned char const*>(f.data);
      names.emplace_back(f.name);
      data.emplace_back(begin, begin + elementSize(f.type) * static_cast<size_t>(f.length));
      fields.emplace_back(names.back().c_str(), data.back().data(), f.type, f.length);
    }
  }
  PluginFieldCollection collection() const { return {static_cast<int32_t>(fields.size()), fields.data()}; }
  bool operator==(Serialised const& other) const {
    if (names != other.names || data != other.data) return false;
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].type != other.fields[i].type || fields[i].length != other.fields[i].length) return false;
    }
    return true;
  }
};

IPluginV3OneRuntime* runtimeOf(IPluginV3* plugin) {
  return static_cast<IPluginV3OneRuntime*>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
}

// The kernel's rules for the accepted fields, read back from what the plugin serialises.
void checkKernelAccepts(bool isNms, Serialised const& serialised) {
  std::vector<PluginField> tableFields;
  for (PluginField const& f : serialised.fields) {
    if (std::strcmp(f.name, kWorkspaceBytesField) != 0) tableFields.push_back(f);
  }
  std::vector<sspnet::trt::FieldValue> values;
  for (PluginField const& f : tableFields) {
    auto const kind = f.type == PluginFieldType::kINT32 ? sspnet::trt::FieldKind::kInt32 : sspnet::trt::FieldKind::kFloat32;
    values.push_back({f.name, kind, f.data, f.length});
  }
  if (isNms) {
    sspnet::trt::BatchedNmsFields fields;
    std::string const problem = sspnet::trt::readFields(values, sspnet::trt::bindFields(fields));
    if (!problem.empty() || !sspnet::trt::checkFields(fields).empty() ||
        sspnet::validate(sspnet::trt::toKernelParams(fields)) != sspnet::Status::kOk) {
      violated("accepted NMS fields", "the kernel refuses them: " + problem + sspnet::trt::describeFields(fields));
    }
    return;
  }
  sspnet::trt::MultiLevelRoIAlignFields fields;
  std::string const problem = sspnet::trt::readFields(values, sspnet::trt::bindFields(fields));
  if (!problem.empty() || !sspnet::trt::checkFields(fields).empty()) {
    violated("accepted RoIAlign fields", "they do not read back: " + problem);
  }
  sspnet::FeaturePyramid unit;  // 1x1 levels: only the shape-free rules can fail
  unit.num_levels = fields.num_levels;
  unit.batch = 1;
  unit.channels = 1;
  for (int32_t l = 0; l < fields.num_levels; ++l) {
    unit.height[l] = unit.width[l] = 1;
    unit.spatial_scale[l] = fields.spatial_scales[l];
  }
  if (sspnet::validate(unit, sspnet::trt::toKernelParams(fields)) != sspnet::Status::kOk) {
    violated("accepted RoIAlign fields", "the kernel refuses them: " + sspnet::trt::describeFields(fields));
  }
}

void fuzzCreator(IPluginCreatorV3One& creator, bool isNms, TensorRTPhase phase, DecodedFields const& decoded) {
  fake_tensorrt::RecordingLogger& logger = library().finder.logger;
  logger.messages.clear();
  std::unique_ptr<IPluginV3> plugin(creator.createPlugin("fuzzed_layer", decoded.fc(), phase));
  if (!plugin) {
    gOutcome = "refused";
    if (logger.errors().empty()) violated("createPlugin", "refused a collection without logging why");
    return;
  }
  gOutcome = "accepted";
  for (auto type : {PluginCapabilityType::kCORE, PluginCapabilityType::kBUILD, PluginCapabilityType::kRUNTIME}) {
    if (plugin->getCapabilityInterface(type) == nullptr) violated("accepted plugin", "a capability is missing");
  }
  Serialised const first(runtimeOf(plugin.get())->getFieldsToSerialize());
  checkKernelAccepts(isNms, first);
  PluginFieldCollection const again = first.collection();
  std::unique_ptr<IPluginV3> runtime(creator.createPlugin("fuzzed_layer", &again, TensorRTPhase::kRUNTIME));
  if (!runtime) {
    std::string messages;
    for (std::string const& m : logger.errors()) messages += m + "; ";
    violated("round trip", "its own serialised fields were refused at runtime: " + messages);
  }
  if (!(Serialised(runtimeOf(runtime.get())->getFieldsToSerialize()) == first)) {
    violated("round trip", "the runtime plugin serialises different fields");
  }
  std::unique_ptr<IPluginV3> clone(plugin->clone());
  if (!clone || !(Serialised(runtimeOf(clone.get())->getFieldsToSerialize()) == first)) {
    violated("clone", "the clone serialises different fields");
  }
}

// kINT32 / kFLOAT32 -> their FieldKind (data holds 4-byte elements as the reader expects); any
// other type -> a FieldKind value that names no kind, which the reader must refuse.
sspnet::trt::FieldKind readerKind(PluginFieldType type) {
  if (type == PluginFieldType::kINT32) return sspnet::trt::FieldKind::kInt32;
  if (type == PluginFieldType::kFLOAT32) return sspnet::trt::FieldKind::kFloat32;
  return static_cast<sspnet::trt::FieldKind>(2 + static_cast<uint32_t>(type) % 1000);
}

// The shared reader below the TensorRT conversion.
template <typename Fields>
void fuzzReader(DecodedFields const& decoded) {
  gOutcome = "read";
  std::vector<sspnet::trt::FieldValue> values;
  PluginFieldCollection const* fc = decoded.fc();
  if (fc == nullptr || fc->fields == nullptr) return;  // readFields takes a vector: nothing to read
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    PluginField const& f = fc->fields[i];
    values.push_back({f.name, readerKind(f.type), f.data, f.length});
  }
  // On the heap, exactly its size: a write past the struct is caught.
  std::unique_ptr<Fields> fields(new Fields());
  std::vector<sspnet::trt::FieldBinding> const bindings = sspnet::trt::bindFields(*fields);
  if (!sspnet::trt::readFields(values, bindings).empty()) return;
  for (sspnet::trt::FieldBinding const& binding : bindings) {
    if (binding.isArray() && (binding.length() < 1 || binding.length() > binding.capacity)) {
      violated("readFields", std::string("accepted field '") + binding.name + "' with " +
                                 std::to_string(binding.length()) + " values");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(uint8_t const* data, size_t size) {
  Library& lib = library();
  Reader in(data, size);
  uint8_t const mode = in.u8() % 6;
  uint8_t const flags = in.u8();
  DecodedFields decoded;
  decode(in, flags, lib.knownNames, decoded);
  switch (mode) {
    case 0: fuzzCreator(*lib.nms, true, TensorRTPhase::kBUILD, decoded); break;
    case 1: fuzzCreator(*lib.nms, true, TensorRTPhase::kRUNTIME, decoded); break;
    case 2: fuzzCreator(*lib.roiAlign, false, TensorRTPhase::kBUILD, decoded); break;
    case 3: fuzzCreator(*lib.roiAlign, false, TensorRTPhase::kRUNTIME, decoded); break;
    case 4: fuzzReader<sspnet::trt::BatchedNmsFields>(decoded); break;
    default: fuzzReader<sspnet::trt::MultiLevelRoIAlignFields>(decoded); break;
  }
  static bool const printOutcomes = std::getenv("SSPNET_FUZZ_OUTCOMES") != nullptr;
  if (printOutcomes) std::fprintf(stderr, "sspnet-fuzz-outcome: %s\n", gOutcome);
  return 0;
}
