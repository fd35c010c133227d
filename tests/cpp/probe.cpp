// Test probe: the library's pieces behind a command line, so pytest compares them with Python.
//   probe resize RAW W H OUT_W OUT_H INTERP OUT        8-bit RGB in, 8-bit RGB out
//   probe preprocess RAW W H STRIDE SPEC_JSON OUT      float32 (3, H, W) out
//   probe decode IMAGE OUT                             the example's decoder: "W H" on stdout, RGB to OUT
//   probe sha256 FILE
//   probe engine-mismatch SIDECAR_JSON TRT GPU CC DLA_CORES
//   probe ort-mismatch SIDECAR_JSON VERSION PROVIDER[,PROVIDER...]
//   probe classes                                       the ImageNet names, one a line
//   probe c-api MODEL RAW W H                           edgevis.h: top-5 as "index logit" lines
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "../../examples/cpp/classify/decode.hpp"
#include "edgevis/edgevis.h"
#include "edgevis/edgevis.hpp"
#include "guard.hpp"
#include "internal.hpp"

namespace {

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw edgevis::Error("cannot read " + path);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::string& path, const void* data, size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!f) throw edgevis::Error("cannot write " + path);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty()) return 2;
  try {
    const std::string& cmd = a[0];
    if (cmd == "resize" && a.size() == 8) {
      std::vector<std::uint8_t> raw = slurp(a[1]);
      edgevis::ImageView v{raw.data(), std::stoi(a[2]), std::stoi(a[3]), 0};
      edgevis::Image out = edgevis::resize(v, std::stoi(a[4]), std::stoi(a[5]), a[6]);
      spit(a[7], out.pixels.data(), out.pixels.size());
    } else if (cmd == "preprocess" && a.size() == 7) {
      std::vector<std::uint8_t> raw = slurp(a[1]);
      edgevis::ImageView v{raw.data(), std::stoi(a[2]), std::stoi(a[3]), static_cast<size_t>(std::stoul(a[4]))};
      std::vector<float> x = edgevis::preprocess(v, edgevis::Preprocess::from_json(a[5]));
      spit(a[6], x.data(), x.size() * sizeof(float));
    } else if (cmd == "decode" && a.size() == 3) {
      edgevis::Image img = load_image(a[1]);
      spit(a[2], img.pixels.data(), img.pixels.size());
      std::printf("%d %d\n", img.width, img.height);
    } else if (cmd == "sha256" && a.size() == 2) {
      std::printf("%s\n", edgevis::sha256_hex_file(a[1]).c_str());
    } else if (cmd == "engine-mismatch" && a.size() == 6) {
      edgevis::RunningTrt running{a[2], a[3], a[4], std::stoll(a[5])};
      std::printf("%s\n", edgevis::engine_mismatch(edgevis::parse_json(a[1]), running).c_str());
    } else if (cmd == "ort-mismatch" && a.size() == 4) {
      std::printf("%s\n", edgevis::ort_mismatch(edgevis::parse_json(a[1]), a[2], split(a[3], ',')).c_str());
    } else if (cmd == "classes" && a.size() == 1) {
      for (const std::string& n : edgevis::imagenet_classes()) std::printf("%s\n", n.c_str());
    } else if (cmd == "c-api" && a.size() == 5) {
      edgevis_model* m = nullptr;
      if (edgevis_open(a[1].c_str(), &m) != EDGEVIS_OK) {
        std::fprintf(stderr, "error: %s\n", edgevis_last_error());
        return 1;
      }
      std::vector<std::uint8_t> raw = slurp(a[2]);
      edgevis_prediction top[5];
      int n = 0;
      edgevis_status s = edgevis_classify(m, raw.data(), std::stoi(a[3]), std::stoi(a[4]), 0, top, 5, &n);
      if (s != EDGEVIS_OK) {
        std::fprintf(stderr, "error: %s\n", edgevis_last_error());
        edgevis_close(m);
        return 1;
      }
      for (int i = 0; i < n; ++i) std::printf("%d %.9g %s\n", top[i].index, static_cast<double>(top[i].logit), top[i].name);
      edgevis_close(m);
    } else {
      std::fprintf(stderr, "probe: bad arguments\n");
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
