// TensorRT backend (TensorRT 10 and 11): createInferRuntime -> deserializeCudaEngine ->
// createExecutionContext, named I/O tensors, enqueueV3 on a CUDA stream, device buffers through
// the CUDA runtime API. Mirrors runtimes/trt.py (check_engine, TrtRunner): before deserializing,
// an engine whose sidecar names another TensorRT version, GPU or sha256 is refused in the same words.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "guard.hpp"
#include "internal.hpp"

namespace edgevis {

namespace {

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw Error(std::string("CUDA ") + what + " failed: " + cudaGetErrorString(err));
}

// TensorRT reports failures through the logger, not as return values with reasons: keep them.
class CapturingLogger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (severity == Severity::kERROR || severity == Severity::kINTERNAL_ERROR) last_error_ = msg ? msg : "";
  }
  std::string last_error() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_error_;
  }

 private:
  std::mutex mutex_;
  std::string last_error_;
};

std::string lib_version() {
  const int v = getInferLibVersion();  // major * 10000 + minor * 100 + patch
  return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." + std::to_string(v % 100);
}

RunningTrt running_info(nvinfer1::IRuntime* runtime) {
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  RunningTrt r;
  r.tensorrt = lib_version();
  r.gpu_name = prop.name;
  r.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  r.dla_cores = runtime ? runtime->getNbDLACores() : -1;
  return r;
}

size_t volume(const nvinfer1::Dims& d) {
  size_t n = 1;
  for (int i = 0; i < d.nbDims; ++i) n *= static_cast<size_t>(d.d[i] < 0 ? 0 : d.d[i]);
  return n;
}

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), bytes(o.bytes) {
    o.ptr = nullptr;
    o.bytes = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
    check_cuda(cudaMalloc(&ptr, n ? n : 1), "cudaMalloc");
    bytes = n;
  }
};

class TrtBackend final : public BackendImpl {
 public:
  TrtBackend(const std::string& path, const Json* sidecar, std::vector<std::string>* warnings) {
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw Error("TensorRT could not create a runtime: " + logger_.last_error());
    // runtimes/trt.py check_engine: refuse before deserializing
    if (sidecar == nullptr) {
      warnings->push_back(file_name(path) + " has no sidecar (" + file_name(path) +
                          ".json): cannot check which TensorRT and GPU built it");
    } else {
      const Json* kind = sidecar->find("kind");
      if (!kind || !kind->is_string() || kind->text != kKindTrt)
        throw Error(path + ": its sidecar does not describe a TensorRT engine (kind " +
                    (kind && kind->is_string() ? "'" + kind->text + "'" : std::string("None")) + ")");
      std::string why = sidecar_sha_mismatch(*sidecar, path, true);
      if (why.empty()) why = engine_mismatch(*sidecar, running_info(runtime_.get()));
      if (!why.empty()) throw MismatchError(path + " cannot load here: " + why);
    }
    const std::string blob = read_file(path);
    engine_.reset(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine_) {
      std::string why = logger_.last_error();
      if (why.empty()) why = "no reason logged";
      const char* kind = why.find("not compatible with this version") != std::string::npos ? "built by another TensorRT version"
                         : why.find("incompatible device") != std::string::npos       ? "built for another GPU"
                                                                                       : "not a TensorRT engine, or truncated";
      throw Error(path + " cannot be loaded (" + kind + "): " + why);
    }
    context_.reset(engine_->createExecutionContext());
    if (!context_) throw Error("TensorRT could not create an execution context for " + path + ": " + logger_.last_error());
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate");
    for (int i = 0; i < engine_->getNbIOTensors(); ++i) {
      const char* name = engine_->getIOTensorName(i);
      if (engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT) inputs_.emplace_back(name);
      else outputs_.emplace_back(name);
    }
    if (inputs_.size() != 1 || outputs_.empty())
      throw Error(path + ": expected one image input and at least one output, found " + std::to_string(inputs_.size()) +
                  " input(s)");
    for (const std::string& n : {inputs_[0], outputs_[0]})
      if (engine_->getTensorDataType(n.c_str()) != nvinfer1::DataType::kFLOAT)
        throw Error(path + ": tensor " + n + " is not float32 (edgevis runs float32 I/O engines)");
    input_dims_ = engine_->getTensorShape(inputs_[0].c_str());  // Model checks it against the recorded layout
    const nvinfer1::Dims out = engine_->getTensorShape(outputs_[0].c_str());
    num_classes_ = out.nbDims > 0 ? static_cast<int>(out.d[out.nbDims - 1]) : -1;
    output_rank_ = out.nbDims > 0 ? out.nbDims : 0;
    buffers_.resize(inputs_.size() + outputs_.size());
  }

  ~TrtBackend() override {
    buffers_.clear();
    if (stream_) cudaStreamDestroy(stream_);
    // context before engine before runtime (unique_ptr members are destroyed in reverse order)
  }

  std::vector<float> run(const std::vector<float>& input, const std::array<long long, 3>& image) override {
    nvinfer1::Dims shape = input_dims_;  // 4-D: Model checked it
    if (shape.d[0] > 1) throw Error("the engine's batch is fixed to " + std::to_string(shape.d[0]) + "; edgevis runs one image");
    shape.d[0] = 1;
    for (int k = 1; k < 4; ++k) shape.d[k] = image[k - 1];
    if (volume(shape) != input.size()) throw Error("input size does not match the engine's input shape");
    if (!context_->setInputShape(inputs_[0].c_str(), shape))
      throw Error("TensorRT refused input shape for " + inputs_[0] + ": " + logger_.last_error());
    buffers_[0].reserve(input.size() * sizeof(float));
    check_cuda(cudaMemcpyAsync(buffers_[0].ptr, input.data(), input.size() * sizeof(float), cudaMemcpyHostToDevice, stream_),
               "cudaMemcpyAsync");
    context_->setTensorAddress(inputs_[0].c_str(), buffers_[0].ptr);
    size_t out_count = 0;
    for (size_t i = 0; i < outputs_.size(); ++i) {
      const nvinfer1::Dims d = context_->getTensorShape(outputs_[i].c_str());
      const size_t n = volume(d);
      if (i == 0) out_count = n;
      const size_t elem = engine_->getTensorDataType(outputs_[i].c_str()) == nvinfer1::DataType::kHALF ? 2 : 4;
      buffers_[1 + i].reserve(n * elem);
      context_->setTensorAddress(outputs_[i].c_str(), buffers_[1 + i].ptr);
    }
    if (!context_->enqueueV3(stream_)) throw Error("TensorRT could not run the engine: " + logger_.last_error());
    std::vector<float> out(out_count);
    check_cuda(cudaMemcpyAsync(out.data(), buffers_[1].ptr, out_count * sizeof(float), cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpyAsync");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    return out;
  }

  int num_classes() const override { return num_classes_; }

  std::string input_name() const override { return inputs_[0]; }
  std::string output_name() const override { return outputs_[0]; }
  int output_rank() const override { return output_rank_; }

  std::vector<long long> input_dims() const override {
    std::vector<long long> d;
    for (int i = 0; i < input_dims_.nbDims; ++i) d.push_back(input_dims_.d[i]);
    return d;
  }

  bool metadata(const std::string&, std::string*) const override { return false; }

 private:
  CapturingLogger logger_;  // outlives everything TensorRT created with it
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  cudaStream_t stream_ = nullptr;
  std::vector<std::string> inputs_, outputs_;
  nvinfer1::Dims input_dims_{};
  int num_classes_ = -1, output_rank_ = 0;
  std::vector<DeviceBuffer> buffers_;
};

}  // namespace

std::string tensorrt_version() { return lib_version(); }

std::unique_ptr<BackendImpl> open_tensorrt(const std::string& path, const Json* sidecar,
                                           std::vector<std::string>* warnings) {
  return std::make_unique<TrtBackend>(path, sidecar, warnings);
}

}  // namespace edgevis
