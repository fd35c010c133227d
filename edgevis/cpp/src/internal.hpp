// Internal helpers of the edgevis C++ runtime (not installed API).
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "edgevis/edgevis.hpp"

namespace edgevis {

ImageView checked_view(const ImageView& image);

// A JSON value: enough of JSON to read the sidecars and metadata edgevis writes.
struct Json {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* find(const std::string& key) const;  // nullptr if absent or not an object
  bool is_string() const { return type == Type::String; }
  bool is_object() const { return type == Type::Object; }
  // A string member, or "" when absent / not a string.
  std::string string_at(const std::string& key) const;
};

// Throws std::runtime_error("... at byte N") on malformed text.
Json parse_json(const std::string& text);
std::string json_quote(const std::string& s);

std::string sha256_hex_file(const std::string& path);
std::string sha256_hex(const void* data, size_t size);

std::string read_file(const std::string& path);
bool is_regular_file(const std::string& path);
std::string file_name(const std::string& path);

// Python's guard._v3: the first three dot-separated parts of a version
std::string version3(const std::string& version);

// "its sidecar NAME.json describes another file (sha256 differs): ..." or "" when it matches.
// `required` (a compiled file: engine, ORT-optimized graph): a sidecar that records no sha256 is
// refused too, as guard.check_sidecar_matches_file refuses it; otherwise it is not checked.
std::string sidecar_sha_mismatch(const Json& sidecar, const std::string& path, bool required);

// What a backend hands back to Model.
class BackendImpl {
 public:
  virtual ~BackendImpl() = default;
  // One image of `image_shape` ((3, H, W) or (H, W, 3)): the first output's first row.
  virtual std::vector<float> run(const std::vector<float>& input, const std::array<long long, 3>& image_shape) = 0;
  virtual int num_classes() const = 0;
  // The input's name and dimensions as the graph or engine declares them (< 1: not fixed).
  virtual std::string input_name() const = 0;
  virtual std::vector<long long> input_dims() const = 0;
  // The first output's name and rank (0: not declared).
  virtual std::string output_name() const = 0;
  virtual int output_rank() const = 0;
  // ONNX metadata_props value (ONNX Runtime only).
  virtual bool metadata(const std::string& key, std::string* value) const = 0;
};

std::unique_ptr<BackendImpl> open_onnxruntime(const std::string& path, const Json* sidecar, const Options& options,
                                              std::vector<std::string>* warnings);
std::unique_ptr<BackendImpl> open_tensorrt(const std::string& path, const Json* sidecar,
                                           std::vector<std::string>* warnings);
std::string onnxruntime_version();
// The ONNX Runtime execution providers a device uses, in order (runtimes/ort.py DEVICES).
std::vector<std::string> providers_for(Device device);
std::string tensorrt_version();

}  // namespace edgevis
