// The refusals of edgevis/runtimes/guard.py, in the same words: a compiled file is refused where
// its sidecar says it cannot work, before anything is loaded. Pure functions of the sidecar and
// what is running, so they are tested against the Python functions without a GPU.
#include <string>
#include <vector>

#include "guard.hpp"
#include "internal.hpp"

namespace edgevis {

namespace {

std::string text_of(const Json* v, const std::string& fallback) {
  if (v == nullptr || v->type == Json::Type::Null) return fallback;
  if (v->type == Json::Type::String) return v->text;
  if (v->type == Json::Type::Number) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v->number);
    // shortest form that reads back (Python's repr of a float)
    for (int p = 1; p <= 17; ++p) {
      char b2[64];
      std::snprintf(b2, sizeof b2, "%.*g", p, v->number);
      if (std::strtod(b2, nullptr) == v->number) return b2;
    }
    return buf;
  }
  if (v->type == Json::Type::Bool) return v->boolean ? "True" : "False";
  return fallback;
}

bool truthy(const Json* v) {
  if (v == nullptr) return false;
  switch (v->type) {
    case Json::Type::Null: return false;
    case Json::Type::Bool: return v->boolean;
    case Json::Type::Number: return v->number != 0;
    case Json::Type::String: return !v->text.empty();
    case Json::Type::Array: return !v->items.empty();
    case Json::Type::Object: return !v->members.empty();
  }
  return false;
}

}  // namespace

std::string version3(const std::string& version) {
  std::string out;
  int dots = 0;
  for (char c : version) {
    if (c == '.' && ++dots == 3) break;
    out += c;
  }
  return out;
}

std::string engine_mismatch(const Json& sidecar, const RunningTrt& running) {
  const Json* built_trt = sidecar.find("tensorrt");
  const Json* gpu = sidecar.find("gpu");
  static const Json kEmpty = [] {
    Json j;
    j.type = Json::Type::Object;
    return j;
  }();
  const Json& built_gpu = gpu && gpu->is_object() ? *gpu : kEmpty;
  const std::string where = text_of(built_gpu.find("name"), "?") + " (compute " +
                            text_of(built_gpu.find("compute_capability"), "?") + ")";
  if (truthy(built_trt) && !running.tensorrt.empty() &&
      version3(text_of(built_trt, "")) != version3(running.tensorrt)) {
    return "built with TensorRT " + text_of(built_trt, "") + " on " + where + ", but this is TensorRT " +
           running.tensorrt +
           "; engines only load in the TensorRT version that built them - rebuild it here with `edgevis build`";
  }
  const Json* cc_built = built_gpu.find("compute_capability");
  if (truthy(cc_built) && !running.compute_capability.empty() &&
      text_of(cc_built, "") != running.compute_capability) {
    return "built for " + where + ", but this GPU is " + (running.gpu_name.empty() ? "?" : running.gpu_name) +
           " (compute " + running.compute_capability +
           "); engines are specific to the GPU they were built for - rebuild it here with `edgevis build`";
  }
  const Json* dla = sidecar.find("dla_core");
  if (dla && dla->type == Json::Type::Number && running.dla_cores >= 0 &&
      static_cast<long long>(dla->number) >= running.dla_cores) {
    return "built for DLA core " + text_of(dla, "") + ", but this device has " + std::to_string(running.dla_cores) +
           " DLA core(s)";
  }
  return "";
}

std::string ort_mismatch(const Json& sidecar, const std::string& running_version,
                         const std::vector<std::string>& providers) {
  const Json* built = sidecar.find("onnxruntime");
  const std::string source = truthy(sidecar.find("source")) ? text_of(sidecar.find("source"), "") : "the source model";
  if (truthy(built) && version3(text_of(built, "")) != version3(running_version)) {
    return "optimized by ONNX Runtime " + text_of(built, "") + ", but this is ONNX Runtime " + running_version +
           "; the saved graph holds kernels laid out for that version - rebuild it from " + source +
           " with `edgevis build --runtime ort`";
  }
  const Json* want = sidecar.find("providers");
  if (want && want->type == Json::Type::Array && !want->items.empty() && truthy(&want->items[0])) {
    const std::string w = text_of(&want->items[0], "");
    bool found = false;
    std::string joined;
    for (const auto& p : providers) {
      found = found || p == w;
      joined += (joined.empty() ? "" : ", ") + p;
    }
    if (!found)
      return "optimized for " + w + ", but the session would use " + joined + "; rebuild it from " + source +
             " for this device";
  }
  return "";
}

std::string sidecar_sha_mismatch(const Json& sidecar, const std::string& path, bool required) {
  const Json* want = sidecar.find("sha256");
  if (required && (want == nullptr || !want->is_string() || want->text.empty()))
    return "its sidecar " + file_name(path) + ".json records no sha256: it cannot tell whether it describes this file";
  if (!truthy(want)) return "";
  if (text_of(want, "") != sha256_hex_file(path))
    return "its sidecar " + file_name(path) +
           ".json describes another file (sha256 differs): it was replaced or edited";
  return "";
}

}  // namespace edgevis
