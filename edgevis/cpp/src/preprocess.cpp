// edgevis.data.preprocess.preprocess in C++: resize (Pillow's arithmetic, resample.cpp), center
// crop with torchvision's rounding (PIL fills what lies past the border with zeros), /255,
// RGB -> BGR where the model takes BGR, mean/std in float32 as numpy does, HWC -> CHW unless NHWC.
#include <cfenv>
#include <cmath>
#include <string>
#include <vector>

#include "edgevis/edgevis.hpp"
#include "internal.hpp"

namespace edgevis {

namespace {

// Python's round(): half to even (the default floating-point rounding mode)
int py_round(double v) { return static_cast<int>(std::nearbyint(v)); }

}  // namespace

std::vector<float> preprocess(const ImageView& image, const Preprocess& spec) {
  ImageView in = checked_view(image);
  const int th = spec.height, tw = spec.width;
  if (th < 1 || tw < 1) throw Error("preprocess: input size must be >= 1 (got " + std::to_string(th) + "x" +
                                    std::to_string(tw) + ")");
  if (!(spec.crop_pct > 0)) throw Error("preprocess: crop_pct must be > 0");
  if (spec.channel_order != "RGB" && spec.channel_order != "BGR")
    throw Error("preprocess: channel order must be RGB or BGR (got '" + spec.channel_order + "')");
  if (spec.layout != "NCHW" && spec.layout != "NHWC")
    throw Error("preprocess: layout must be NCHW or NHWC (got '" + spec.layout + "')");
  const bool bgr = spec.channel_order == "BGR", nhwc = spec.layout == "NHWC";
  int nw, nh;
  if (th == tw) {
    const int size = static_cast<int>(std::floor(th / spec.crop_pct));
    const int w = in.width, h = in.height;
    // Python: int(size * h / w), the product in integers, then one correctly rounded division
    if (w <= h) {
      nw = size;
      nh = static_cast<int>(static_cast<double>(static_cast<long long>(size) * h) / w);
    } else {
      nw = static_cast<int>(static_cast<double>(static_cast<long long>(size) * w) / h);
      nh = size;
    }
  } else {
    nw = static_cast<int>(std::floor(tw / spec.crop_pct));
    nh = static_cast<int>(std::floor(th / spec.crop_pct));
  }
  Image r = resize(in, nw, nh, spec.interpolation);
  const int top = py_round((r.height - th) / 2.0);
  const int left = py_round((r.width - tw) / 2.0);

  float mean[3], std_[3];
  for (int c = 0; c < 3; ++c) {
    mean[c] = static_cast<float>(spec.mean[c]);
    std_[c] = static_cast<float>(spec.std[c]);
  }
  const float zero[3] = {(0.0f - mean[0]) / std_[0], (0.0f - mean[1]) / std_[1], (0.0f - mean[2]) / std_[2]};
  std::vector<float> out(static_cast<size_t>(3) * th * tw);
  const size_t plane = static_cast<size_t>(th) * tw;
  // channel c of pixel o: NCHW keeps planes, NHWC keeps pixels together
  auto at = [&](int c, size_t o) -> float& { return nhwc ? out[o * 3 + c] : out[c * plane + o]; };
  for (int y = 0; y < th; ++y) {
    const int sy = y + top;
    for (int x = 0; x < tw; ++x) {
      const int sx = x + left;
      const size_t o = static_cast<size_t>(y) * tw + x;
      if (sy < 0 || sy >= r.height || sx < 0 || sx >= r.width) {
        for (int c = 0; c < 3; ++c) at(c, o) = zero[c];
        continue;
      }
      const std::uint8_t* p = &r.pixels[(static_cast<size_t>(sy) * r.width + sx) * 3];
      for (int c = 0; c < 3; ++c) {
        const float v = static_cast<float>(p[bgr ? 2 - c : c]) / 255.0f;  // float32 array / 255.0 stays float32
        at(c, o) = (v - mean[c]) / std_[c];  // mean and std are in the model's channel order
      }
    }
  }
  return out;
}

}  // namespace edgevis
