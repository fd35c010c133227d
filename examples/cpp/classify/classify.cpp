// classify MODEL IMAGE... : the top classes of each image, as `edgevis predict` prints them,
// with the preprocessing the model file records.
//
//   classify [--top N] [--json] [--threads N] [--device cpu|cuda|tensorrt] MODEL IMAGE...
//
// An ONNX file runs on ONNX Runtime (--device picks its execution provider); a TensorRT engine
// (.engine, or a sidecar of kind tensorrt-engine) on TensorRT.
// Bad input (missing or modified model, tampered sidecar, not an image, truncated JPEG) prints
// one "error: ..." line on stderr and exits with status 1.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "decode.hpp"
#include "edgevis/edgevis.hpp"

namespace {

int usage() {
  std::fprintf(stderr, "usage: classify [--top N] [--json] [--threads N] [--device cpu|cuda|tensorrt] MODEL IMAGE...\n");
  return 2;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool parse_int(const char* text, int* out) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int top = 5, threads = 0;
  bool as_json = false;
  edgevis::Device device = edgevis::Device::Cpu;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") {
      as_json = true;
    } else if ((a == "--top" || a == "--threads") && i + 1 < argc) {
      if (!parse_int(argv[++i], a == "--top" ? &top : &threads) || (a == "--top" && top < 1)) return usage();
    } else if (a == "--device" && i + 1 < argc) {
      const std::string d = argv[++i];
      if (d == "cpu") device = edgevis::Device::Cpu;
      else if (d == "cuda") device = edgevis::Device::Cuda;
      else if (d == "tensorrt") device = edgevis::Device::TensorRT;
      else return usage();
    } else if (a == "-h" || a == "--help" || (a.size() > 1 && a[0] == '-')) {
      return usage();
    } else {
      args.push_back(a);
    }
  }
  if (args.size() < 2) return usage();
  try {
    edgevis::Options options;
    options.threads = threads;
    options.device = device;
    edgevis::Model model = edgevis::Model::open(args[0], options);
    for (const std::string& w : model.warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
    for (size_t i = 1; i < args.size(); ++i) {
      const edgevis::Image image = load_image(args[i]);
      const std::vector<edgevis::Prediction> preds = model.classify(image.view(), top);
      if (as_json) {
        std::string line = "{\"model\": " + (model.model_name().empty() ? "null" : quote(model.model_name())) +
                           ", \"model_file\": " + quote(args[0]) + ", \"image\": " + quote(args[i]) + ", \"top\": [";
        for (size_t r = 0; r < preds.size(); ++r) {
          char nums[128];
          std::snprintf(nums, sizeof nums, ", \"probability\": %.17g, \"logit\": %.9g}", preds[r].probability,
                        static_cast<double>(preds[r].logit));
          line += (r ? ", " : "") + std::string("{\"index\": ") + std::to_string(preds[r].index) +
                  ", \"name\": " + quote(preds[r].name) + nums;
        }
        std::printf("%s]}\n", line.c_str());
      } else {
        std::printf("%s on %s\n", model.model_name().empty() ? base_name(args[0]).c_str() : model.model_name().c_str(),
                    base_name(args[i]).c_str());
        std::printf("%5s %6s  %-30s %7s\n", "rank", "class", "name", "prob.");
        for (size_t r = 0; r < preds.size(); ++r)
          std::printf("%5zu %6d  %-30s %7.4f\n", r + 1, preds[r].index, preds[r].name.c_str(), preds[r].probability);
      }
    }
  } catch (const edgevis::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal error: %s\n", e.what());
    return 3;
  }
  return 0;
}
