// Model: open a file edgevis wrote, read what it records, refuse what cannot work, run, classify.
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "edgevis/edgevis.hpp"
#include "guard.hpp"
#include "internal.hpp"

namespace edgevis {

// ---------------------------------------------------------------------------------------------
// files

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string file_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

namespace {

// one image as the graph takes it, without the batch: (3, H, W), or (H, W, 3) for an NHWC record
std::array<long long, 3> image_dims(const Preprocess& p) {
  return p.layout == "NHWC" ? std::array<long long, 3>{p.height, p.width, 3}
                            : std::array<long long, 3>{3, p.height, p.width};
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::vector<double> numbers(const Json* v, size_t n, const char* what) {
  if (v == nullptr || v->type != Json::Type::Array || v->items.size() != n)
    throw Error(std::string("preprocessing record: '") + what + "' must be a list of " + std::to_string(n) +
                " numbers");
  std::vector<double> out;
  for (const Json& item : v->items) {
    if (item.type != Json::Type::Number)
      throw Error(std::string("preprocessing record: '") + what + "' must hold numbers");
    out.push_back(item.number);
  }
  return out;
}

Preprocess preprocess_from(const Json& j) {
  if (!j.is_object()) throw Error("preprocessing record is not a JSON object");
  Preprocess p;
  std::vector<double> size = numbers(j.find("input_size"), 2, "input_size");
  if (size[0] < 1 || size[1] < 1 || size[0] > 65536 || size[1] > 65536 || size[0] != std::floor(size[0]) ||
      size[1] != std::floor(size[1]))
    throw Error("preprocessing record: input_size must be two whole numbers >= 1");
  p.height = static_cast<int>(size[0]);
  p.width = static_cast<int>(size[1]);
  std::vector<double> mean = numbers(j.find("mean"), 3, "mean"), std_ = numbers(j.find("std"), 3, "std");
  for (int c = 0; c < 3; ++c) {
    p.mean[c] = mean[c];
    p.std[c] = std_[c];
    if (std_[c] == 0) throw Error("preprocessing record: std must not be 0");
  }
  if (const Json* interp = j.find("interpolation")) {
    if (!interp->is_string()) throw Error("preprocessing record: interpolation must be a string");
    p.interpolation = interp->text;
  }
  if (const Json* crop = j.find("crop_pct")) {
    if (crop->type != Json::Type::Number || !(crop->number > 0))
      throw Error("preprocessing record: crop_pct must be a number > 0");
    p.crop_pct = crop->number;
  }
  for (const auto& [key, field, a, b] : {std::tuple{"channel_order", &p.channel_order, "RGB", "BGR"},
                                         std::tuple{"layout", &p.layout, "NCHW", "NHWC"}}) {
    if (const Json* v = j.find(key)) {
      if (!v->is_string() || (v->text != a && v->text != b))
        throw Error(std::string("preprocessing record: ") + key + " must be " + a + " or " + b);
      *field = v->text;
    }
  }
  static const char* known[] = {"bicubic", "bilinear", "nearest", "lanczos", "box", "hamming"};
  if (std::find(std::begin(known), std::end(known), p.interpolation) == std::end(known))
    throw Error("unknown interpolation '" + p.interpolation +
                "'; known: bicubic, bilinear, nearest, lanczos, box, hamming");
  return p;
}

}  // namespace

Preprocess Preprocess::from_json(const std::string& json) {
  Json j;
  try {
    j = parse_json(json);
  } catch (const std::runtime_error& e) {
    throw Error(std::string("preprocessing record is not valid JSON (") + e.what() + ")");
  }
  return preprocess_from(j);
}

std::vector<std::string> providers_for(Device d) {
  switch (d) {
    case Device::Cuda: return {"CUDAExecutionProvider", "CPUExecutionProvider"};
    case Device::TensorRT: return {"TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"};
    case Device::Cpu: break;
  }
  return {"CPUExecutionProvider"};
}


// ---------------------------------------------------------------------------------------------
// classification

std::vector<Prediction> top_k(const std::vector<float>& logits, int k) {
  // softmax in double, as edgevis predict (numpy float64)
  std::vector<double> probs(logits.size());
  if (!logits.empty()) {
    double mx = logits[0];
    for (float v : logits) mx = std::max(mx, static_cast<double>(v));
    double sum = 0;
    for (size_t i = 0; i < logits.size(); ++i) sum += probs[i] = std::exp(static_cast<double>(logits[i]) - mx);
    for (double& p : probs) p /= sum;
  }
  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return probs[a] > probs[b]; });
  const std::vector<std::string>* names = logits.size() == 1000 ? &imagenet_classes() : nullptr;
  std::vector<Prediction> out;
  for (int r = 0; r < std::min<int>(k, static_cast<int>(order.size())); ++r) {
    int i = order[r];
    out.push_back({i, names ? (*names)[i] : "class " + std::to_string(i), probs[i], logits[i]});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Model

bool has_backend(Backend backend) {
  switch (backend) {
    case Backend::OnnxRuntime:
#ifdef EDGEVIS_HAVE_ONNXRUNTIME
      return true;
#else
      return false;
#endif
    case Backend::TensorRT:
#ifdef EDGEVIS_HAVE_TENSORRT
      return true;
#else
      return false;
#endif
    case Backend::Auto: return has_backend(Backend::OnnxRuntime) || has_backend(Backend::TensorRT);
  }
  return false;
}

std::string backend_version(Backend backend) {
  if (backend == Backend::TensorRT) return "tensorrt " + tensorrt_version();
  return "onnxruntime " + onnxruntime_version();
}

Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

void Model::close() { impl_.reset(); }

Model Model::open(const std::string& path, const Options& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error("model file not found: " + path);
  if (!S_ISREG(st.st_mode)) throw Error(path + " is not a file");
  if (st.st_size == 0) throw Error(path + " is empty (0 bytes), not a model");

  Json sidecar;
  bool has_sidecar = false;
  const std::string sidecar_file = path + ".json";
  if (is_regular_file(sidecar_file)) {
    try {
      sidecar = parse_json(read_file(sidecar_file));
    } catch (const std::runtime_error& e) {
      throw Error(path + ": its sidecar " + file_name(sidecar_file) + " is not valid JSON (" + e.what() +
                  "): it was edited or truncated");
    }
    if (!sidecar.is_object())
      throw Error(path + ": its sidecar " + file_name(sidecar_file) + " is not a JSON object");
    has_sidecar = true;
  }

  Model m;
  m.path_ = path;
  const std::string kind = has_sidecar ? sidecar.string_at("kind") : "";
  Backend backend = options.backend;
  if (backend == Backend::Auto)
    backend = (kind == kKindTrt || ends_with(path, ".engine") || ends_with(path, ".plan")) ? Backend::TensorRT
                                                                                           : Backend::OnnxRuntime;
  m.backend_ = backend;
  if (backend == Backend::TensorRT) {
    m.impl_ = open_tensorrt(path, has_sidecar ? &sidecar : nullptr, &m.warnings_);
  } else {
    if (kind == kKindOrt) {
      std::string why = ort_mismatch(sidecar, onnxruntime_version(), providers_for(options.device));
      if (why.empty()) why = sidecar_sha_mismatch(sidecar, path, true);
      if (!why.empty()) throw MismatchError(path + " cannot load here: " + why);
    } else if (has_sidecar) {
      std::string why = sidecar_sha_mismatch(sidecar, path, false);  // predict checks a recorded one only
      if (!why.empty()) throw MismatchError(path + " cannot load here: " + why);
    }
    m.impl_ = open_onnxruntime(path, has_sidecar ? &sidecar : nullptr, options, &m.warnings_);
  }

  // the preprocessing recorded at export: ONNX metadata first, else the sidecar (runtimes/predict.py)
  std::string pre_text, prov_text;
  Json prov;
  if (m.impl_->metadata("edgevis.preprocess", &pre_text)) {
    m.preprocess_ = Preprocess::from_json(pre_text);
    if (m.impl_->metadata("edgevis.provenance", &prov_text)) {
      try {
        prov = parse_json(prov_text);
      } catch (const std::runtime_error&) {
        prov = Json{};
      }
    }
  } else if (const Json* pre = has_sidecar ? sidecar.find("preprocess") : nullptr) {
    m.preprocess_ = preprocess_from(*pre);
    prov = sidecar;
  } else {
    throw Error(path + " carries no preprocessing record (not written by `edgevis export`); "
                "export it with edgevis, or add a sidecar JSON with a 'preprocess' entry");
  }
  if (prov.type == Json::Type::Null && has_sidecar) prov = sidecar;
  m.model_name_ = prov.string_at("model");
  m.provenance_ = prov_text.empty() && has_sidecar ? read_file(sidecar_file) : prov_text;

  // runtimes/predict.py check_classifier: the graph's input is one image in the recorded layout
  const std::vector<long long> dims = m.impl_->input_dims();
  const Preprocess& pre = m.preprocess_;
  const std::array<long long, 3> image = image_dims(pre);
  const std::vector<long long> want(image.begin(), image.end());
  auto show = [](const std::vector<long long>& d) {
    std::string s = "(";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + (d[i] > 0 ? std::to_string(d[i]) : std::string("?"));
    return s + ")";
  };
  if (dims.size() != 4)
    throw Error(path + ": input '" + m.impl_->input_name() + "' has " + std::to_string(dims.size()) +
                " dimensions; predict feeds one image as a 4-D (batch, channels, height, width) tensor");
  for (size_t k = 1; k < 4; ++k)
    if (dims[k] > 0 && dims[k] != want[k - 1])
      throw Error(path + ": input '" + m.impl_->input_name() + "' has shape " + show(dims) +
                  ", but the preprocessing it records makes " + pre.layout + " images of " + show(want) +
                  " (input size " + std::to_string(pre.height) + "x" + std::to_string(pre.width) +
                  "); the record and the graph disagree");
  return m;
}

int Model::num_classes() const {
  if (!impl_) throw Error("model is closed");
  return impl_->num_classes();
}

std::vector<float> Model::run(const std::vector<float>& input) {
  if (!impl_) throw Error("model is closed; open it with edgevis::Model::open");
  const size_t want = static_cast<size_t>(3) * preprocess_.height * preprocess_.width;
  if (input.size() != want)
    throw Error("input has " + std::to_string(input.size()) + " values; the model takes 3x" +
                std::to_string(preprocess_.height) + "x" + std::to_string(preprocess_.width) + " = " +
                std::to_string(want));
  return impl_->run(input, image_dims(preprocess_));
}

std::vector<float> Model::logits(const ImageView& image) { return run(preprocess(image, preprocess_)); }

std::vector<Prediction> Model::classify(const ImageView& image, int k) {
  // runtimes/predict.py: class scores of shape (batch, classes), finite
  if (!impl_) throw Error("model is closed; open it with edgevis::Model::open");
  const int rank = impl_->output_rank();
  if (rank > 0 && rank != 2)
    throw Error(path_ + ": output '" + impl_->output_name() + "' has " + std::to_string(rank) +
                " dimensions; predict needs class scores of shape (batch, classes)");
  const std::vector<float> scores = logits(image);
  for (float v : scores)
    if (!std::isfinite(v)) throw Error(file_name(path_) + " returned non-finite or non-numeric scores for this image");
  return top_k(scores, k);
}

// ---------------------------------------------------------------------------------------------
// backends that this build lacks

#ifndef EDGEVIS_HAVE_ONNXRUNTIME
std::unique_ptr<BackendImpl> open_onnxruntime(const std::string& path, const Json*, const Options&,
                                              std::vector<std::string>*) {
  throw Error("cannot run " + path + ": this edgevis library was built without ONNX Runtime "
              "(configure with ONNXRUNTIME_ROOT pointing at an ONNX Runtime release)");
}
std::string onnxruntime_version() {
  throw Error("this edgevis library was built without ONNX Runtime "
              "(configure with ONNXRUNTIME_ROOT pointing at an ONNX Runtime release)");
}
#endif

#ifndef EDGEVIS_HAVE_TENSORRT
std::unique_ptr<BackendImpl> open_tensorrt(const std::string& path, const Json*, std::vector<std::string>*) {
  throw Error("cannot run " + path + ": it is a TensorRT engine, but this edgevis library was built without "
              "TensorRT (configure with TENSORRT_ROOT and the CUDA toolkit on the device that runs it)");
}
std::string tensorrt_version() { throw Error("this edgevis library was built without TensorRT"); }
#endif

}  // namespace edgevis
