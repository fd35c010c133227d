// edgevis C++ runtime: run a model written by edgevis (ONNX file or TensorRT engine) with the
// preprocessing and provenance it records, and get the same numbers as the Python side.
//
//   edgevis::Model model = edgevis::Model::open("lsnet_t.int8.onnx");
//   edgevis::ImageView img{pixels, width, height, stride};       // 8-bit RGB, row stride in bytes
//   for (const edgevis::Prediction& p : model.classify(img, 5))
//     std::printf("%d %s %.4f\n", p.index, p.name.c_str(), p.probability);
//
// Errors are edgevis::Error exceptions carrying one clear line (see edgevis.h for a C API that
// returns status codes instead).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace edgevis {

// One clear message; what() is the line an application prints after "error: ".
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The file does not match this runtime (another ONNX Runtime/TensorRT version, another GPU,
// a sidecar describing another file): the Python RuntimeMismatchError.
class MismatchError : public Error {
 public:
  using Error::Error;
};

// How an image becomes the model's input (edgevis.core.types.Preprocess, timm conventions).
struct Preprocess {
  int height = 224;
  int width = 224;
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
  std::string interpolation = "bicubic";  // bicubic, bilinear, nearest, lanczos, box, hamming
  double crop_pct = 0.875;
  std::string channel_order = "RGB";  // RGB or BGR: the order the model takes (mean and std are in it)
  std::string layout = "NCHW";        // NCHW: one image is (3, H, W); NHWC: (H, W, 3)

  // Parse the JSON object edgevis writes (`edgevis.preprocess` metadata or a sidecar's "preprocess").
  static Preprocess from_json(const std::string& json);
};

// A view of 8-bit RGB pixels (no copy): row y starts at data + y * stride.
struct ImageView {
  const std::uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  std::size_t stride = 0;  // bytes per row; 0 means width * 3
};

// 8-bit RGB pixels owned by the value.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // width * height * 3, tightly packed
  ImageView view() const { return ImageView{pixels.data(), width, height, static_cast<std::size_t>(width) * 3}; }
};

// Resize to out_width x out_height exactly as Pillow's Image.resize does (same filters, fixed-point
// coefficients, 8-bit rounding between the two passes).
Image resize(const ImageView& image, int out_width, int out_height, const std::string& interpolation);

// The float tensor edgevis.data.preprocess.preprocess makes from the same pixels: (3, height, width),
// or (height, width, 3) for an NHWC model, channels in spec.channel_order.
std::vector<float> preprocess(const ImageView& image, const Preprocess& spec);

struct Prediction {
  int index = 0;
  std::string name;        // ImageNet name for 1000-class models, else "class N"
  double probability = 0;  // softmax of the logits (in double, as edgevis predict)
  float logit = 0;
};

// Top-k of one row of logits, ordered as edgevis predict orders them.
std::vector<Prediction> top_k(const std::vector<float>& logits, int k);

// The 1000 ImageNet-1k class names the library carries (from edgevis/data/imagenet_classes.txt).
const std::vector<std::string>& imagenet_classes();

enum class Backend { Auto, OnnxRuntime, TensorRT };
enum class Device { Cpu, Cuda, TensorRT };  // ONNX Runtime execution providers

struct Options {
  Backend backend = Backend::Auto;  // Auto: engines go to TensorRT, everything else to ONNX Runtime
  Device device = Device::Cpu;      // ONNX Runtime only
  int threads = 0;                  // ONNX Runtime intra-op threads; 0: its default
};

// Which backends this build of the library has.
bool has_backend(Backend backend);
// "onnxruntime 1.32.0" / "tensorrt 10.16.0": the runtime actually loaded (for logs).
std::string backend_version(Backend backend);

class BackendImpl;  // ONNX Runtime session or TensorRT engine + context

// An open model: one lifecycle (open / run / close), released by the destructor.
class Model {
 public:
  // Reads the sidecar and the recorded preprocessing; refuses, before loading anything, a file
  // whose sidecar describes another file or another runtime/GPU (same words as edgevis's Python).
  static Model open(const std::string& path, const Options& options = {});

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  bool is_open() const { return impl_ != nullptr; }
  void close();  // idempotent

  const std::string& path() const { return path_; }
  const Preprocess& preprocessing() const { return preprocess_; }
  const std::string& model_name() const { return model_name_; }  // provenance "model" ("" if none)
  const std::string& provenance_json() const { return provenance_; }
  Backend backend() const { return backend_; }
  const std::vector<std::string>& warnings() const { return warnings_; }
  int num_classes() const;

  // Logits for one preprocessed (3, H, W) input.
  std::vector<float> run(const std::vector<float>& input);
  // preprocess + run + top_k.
  std::vector<Prediction> classify(const ImageView& image, int k = 5);
  // preprocess + run.
  std::vector<float> logits(const ImageView& image);

 private:
  Model() = default;
  std::string path_;
  Preprocess preprocess_;
  std::string model_name_;
  std::string provenance_;
  Backend backend_ = Backend::Auto;
  std::vector<std::string> warnings_;
  std::unique_ptr<BackendImpl> impl_;
};

}  // namespace edgevis
