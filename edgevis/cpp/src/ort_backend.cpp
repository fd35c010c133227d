// ONNX Runtime backend through its C++ API (onnxruntime_cxx_api.h): CPU, and the CUDA and
// TensorRT execution providers where the library has them. Mirrors runtimes/ort.py's
// session_from_onnx: an ORT-optimized file loads without optimizing it again.
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <string>
#include <vector>

#include "guard.hpp"
#include "internal.hpp"

namespace edgevis {

namespace {

std::string first_line(const std::string& s) {
  size_t a = s.find_first_not_of(" \n\t");
  if (a == std::string::npos) return "no reason given";
  size_t b = s.find('\n', a);
  return s.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

Ort::Env& env() {
  // one environment per process, as ONNX Runtime wants
  static Ort::Env e(ORT_LOGGING_LEVEL_ERROR, "edgevis");
  return e;
}

class OrtBackend final : public BackendImpl {
 public:
  OrtBackend(const std::string& path, bool optimized, const Options& options) {
    Ort::SessionOptions so;
    if (options.threads > 0) so.SetIntraOpNumThreads(options.threads);
    if (optimized) so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_DISABLE_ALL);
    // runtimes/ort.py check_providers, in its words
    const std::vector<std::string> available = Ort::GetAvailableProviders();
    std::string missing, list;
    for (const std::string& p : providers_for(options.device))
      if (std::find(available.begin(), available.end(), p) == available.end()) missing += (missing.empty() ? "" : ", ") + p;
    for (const auto& p : available) list += (list.empty() ? "" : ", ") + p;
    if (!missing.empty())
      throw Error("execution provider(s) " + missing + " not available in this onnxruntime (" + onnxruntime_version() +
                  "); available: " + list);
    if (options.device == Device::TensorRT) {
      OrtTensorRTProviderOptions trt{};
      so.AppendExecutionProvider_TensorRT(trt);
    }
    if (options.device == Device::Cuda || options.device == Device::TensorRT) {
      OrtCUDAProviderOptions cuda{};
      so.AppendExecutionProvider_CUDA(cuda);
    }
    session_ = Ort::Session(env(), path.c_str(), so);
    if (session_.GetInputCount() != 1 || session_.GetOutputCount() < 1)
      throw Error(path + ": expected one image input and at least one output, found " +
                  std::to_string(session_.GetInputCount()) + " input(s)");
    Ort::AllocatorWithDefaultOptions alloc;
    input_name_ = session_.GetInputNameAllocated(0, alloc).get();
    output_name_ = session_.GetOutputNameAllocated(0, alloc).get();
    // the shape info views its TypeInfo: keep the owner alive while reading it
    Ort::TypeInfo in_type = session_.GetInputTypeInfo(0);
    auto in_info = in_type.GetTensorTypeAndShapeInfo();
    if (in_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
      throw Error(path + ": its input " + input_name_ + " is not float32");
    input_shape_ = in_info.GetShape();  // Model checks it against the recorded layout and size
    Ort::TypeInfo out_type = session_.GetOutputTypeInfo(0);
    auto out_info = out_type.GetTensorTypeAndShapeInfo();
    if (out_info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
      throw Error(path + ": its output " + output_name_ + " is not float32");
    auto out_shape = out_info.GetShape();
    num_classes_ = out_shape.empty() ? -1 : static_cast<int>(out_shape.back());
    output_rank_ = static_cast<int>(out_shape.size());
    Ort::ModelMetadata md = session_.GetModelMetadata();
    for (const char* key : {"edgevis.preprocess", "edgevis.provenance"}) {
      Ort::AllocatedStringPtr v = md.LookupCustomMetadataMapAllocated(key, alloc);
      if (v) metadata_.emplace_back(key, v.get());
    }
  }

  std::vector<float> run(const std::vector<float>& input, const std::array<long long, 3>& image) override {
    // a fixed batch > 1 is filled with copies, as OrtRunner.infer_batched pads
    const int64_t batch = input_shape_.size() == 4 && input_shape_[0] > 0 ? input_shape_[0] : 1;
    std::vector<int64_t> shape{batch, image[0], image[1], image[2]};
    std::vector<float> batched;
    if (batch > 1) {
      batched.reserve(input.size() * static_cast<size_t>(batch));
      for (int64_t b = 0; b < batch; ++b) batched.insert(batched.end(), input.begin(), input.end());
    }
    const std::vector<float>& x = batch > 1 ? batched : input;
    Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    // ORT does not write to inputs; the C API takes a non-const pointer
    Ort::Value in = Ort::Value::CreateTensor<float>(mem, const_cast<float*>(x.data()), x.size(), shape.data(),
                                                    shape.size());
    const char* in_names[] = {input_name_.c_str()};
    const char* out_names[] = {output_name_.c_str()};
    try {
      std::vector<Ort::Value> outs = session_.Run(Ort::RunOptions{nullptr}, in_names, &in, 1, out_names, 1);
      const float* p = outs[0].GetTensorData<float>();
      const size_t n = outs[0].GetTensorTypeAndShapeInfo().GetElementCount() / static_cast<size_t>(batch);
      return std::vector<float>(p, p + n);  // the first image's row
    } catch (const Ort::Exception& e) {
      throw Error("ONNX Runtime failed to run: " + first_line(e.what()));
    }
  }

  int num_classes() const override { return num_classes_; }

  std::string input_name() const override { return input_name_; }
  std::string output_name() const override { return output_name_; }
  int output_rank() const override { return output_rank_; }

  std::vector<long long> input_dims() const override {
    return std::vector<long long>(input_shape_.begin(), input_shape_.end());
  }

  bool metadata(const std::string& key, std::string* value) const override {
    for (const auto& kv : metadata_)
      if (kv.first == key) {
        *value = kv.second;
        return true;
      }
    return false;
  }

 private:
  Ort::Session session_{nullptr};
  std::string input_name_, output_name_;
  std::vector<int64_t> input_shape_;
  int num_classes_ = -1, output_rank_ = 0;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

}  // namespace

std::string onnxruntime_version() { return OrtGetApiBase()->GetVersionString(); }

std::unique_ptr<BackendImpl> open_onnxruntime(const std::string& path, const Json* sidecar, const Options& options,
                                              std::vector<std::string>*) {
  const bool optimized = sidecar != nullptr && sidecar->string_at("kind") == kKindOrt;
  try {
    return std::make_unique<OrtBackend>(path, optimized, options);
  } catch (const Ort::Exception& e) {
    throw Error("ONNX Runtime cannot load " + path + ": " + first_line(e.what()));
  }
}

}  // namespace edgevis
