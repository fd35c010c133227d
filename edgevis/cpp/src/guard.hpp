// Refusals shared by the backends (edgevis/runtimes/guard.py in C++).
#pragma once

#include <string>
#include <vector>

#include "internal.hpp"

namespace edgevis {

inline constexpr const char* kKindTrt = "tensorrt-engine";
inline constexpr const char* kKindOrt = "onnxruntime-optimized";

struct RunningTrt {
  std::string tensorrt;            // "10.16.0"
  std::string gpu_name;            // "NVIDIA H200"
  std::string compute_capability;  // "9.0"
  long long dla_cores = -1;        // -1: unknown
};

// Why an engine described by `sidecar` cannot run under `running`, or "".
std::string engine_mismatch(const Json& sidecar, const RunningTrt& running);
// Why an ORT-optimized model described by `sidecar` cannot load here, or "".
std::string ort_mismatch(const Json& sidecar, const std::string& running_version,
                         const std::vector<std::string>& providers);

}  // namespace edgevis
