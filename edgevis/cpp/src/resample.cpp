// Pillow's Image.resize for 8-bit RGB, reproduced arithmetic for arithmetic (Pillow 13's
// libImaging/Resample.c, _imaging.c's _resize and Geometry.c), because the Python side preprocesses with Pillow and the
// C++ side must produce the very same bytes. No C/C++ library does this: OpenCV's INTER_AREA /
// INTER_CUBIC and stb_image_resize use other kernels, supports and rounding (opencv #25620).
//
// The facts reproduced:
// - separable convolution in two passes, each rounding and clipping to 8 bits; horizontal first
//   (over the rows the vertical pass reads only) unless the height shrinks by more than twice
//   what the width does, then vertical first;
// - the filter support is scaled by the downscale factor (antialiasing), the kernel is
//   normalised to sum 1 in double, then turned into 22-bit fixed point, rounding half away
//   from zero; accumulators start at 1 << 21;
// - window bounds are (int)(center -/+ support + 0.5), clamped to the image;
// - NEAREST is not a convolution: it is the affine "scale" transform with a fixed sample
//   position (x + 0.5) * in / out, truncated;
// - the same size returns a copy.
// Compile without FMA contraction (CMake sets -ffp-contract=off) so the double arithmetic
// rounds as Pillow's baseline x86-64/ARM build does.
#include <cmath>
#include <cstring>
#include <vector>

#include "edgevis/edgevis.hpp"
#include "internal.hpp"

namespace edgevis {
namespace {

constexpr double kPi = 3.14159265358979323846;  // M_PI
constexpr int kPrecisionBits = 32 - 8 - 2;

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * kPi;
  // Pillow writes 0.54f + 0.46f * cos(x): float constants promoted to double
  return std::sin(x) / x * (static_cast<double>(0.54f) + static_cast<double>(0.46f) * std::cos(x));
}

double bicubic_filter(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * kPi;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;   // (xmin, count) per output pixel
  std::vector<int> weights;  // ksize per output pixel, 22-bit fixed point
};

Coeffs precompute(int in_size, float in0, float in1, int out_size, const Filter& filter) {
  double scale = static_cast<double>(in1 - in0) / out_size;  // in1 - in0 in float, as Pillow
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = filter.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.assign(static_cast<size_t>(out_size) * 2, 0);
  std::vector<double> kk(static_cast<size_t>(out_size) * c.ksize, 0.0);
  double inv_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &kk[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      double w = filter.fn((x + xmin - center + 0.5) * inv_filterscale);
      k[x] = w;
      ww += w;
    }
    if (ww != 0.0) {
      for (int x = 0; x < xmax; ++x) k[x] /= ww;
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  c.weights.resize(kk.size());
  for (size_t i = 0; i < kk.size(); ++i) {
    c.weights[i] = kk[i] < 0 ? static_cast<int>(-0.5 + kk[i] * (1 << kPrecisionBits))
                             : static_cast<int>(0.5 + kk[i] * (1 << kPrecisionBits));
  }
  return c;
}

inline std::uint8_t clip8(int v) {
  int s = v >> kPrecisionBits;  // arithmetic shift, as Pillow's lookup table index
  return static_cast<std::uint8_t>(s < 0 ? 0 : s > 255 ? 255 : s);
}

// out: width out_w, rows [row0, row0 + rows) of `in`
Image horizontal(const ImageView& in, int out_w, int row0, int rows, const Coeffs& c) {
  Image out{out_w, rows, std::vector<std::uint8_t>(static_cast<size_t>(out_w) * rows * 3)};
  for (int yy = 0; yy < rows; ++yy) {
    const std::uint8_t* line = in.data + static_cast<size_t>(yy + row0) * in.stride;
    std::uint8_t* dst = &out.pixels[static_cast<size_t>(yy) * out_w * 3];
    for (int xx = 0; xx < out_w; ++xx) {
      int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
      const int* k = &c.weights[static_cast<size_t>(xx) * c.ksize];
      int s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < xmax; ++x) {
        const std::uint8_t* p = line + static_cast<size_t>(x + xmin) * 3;
        s0 += p[0] * k[x];
        s1 += p[1] * k[x];
        s2 += p[2] * k[x];
      }
      dst[xx * 3] = clip8(s0);
      dst[xx * 3 + 1] = clip8(s1);
      dst[xx * 3 + 2] = clip8(s2);
    }
  }
  return out;
}

Image vertical(const ImageView& in, int out_h, const Coeffs& c, int shift) {
  Image out{in.width, out_h, std::vector<std::uint8_t>(static_cast<size_t>(in.width) * out_h * 3)};
  for (int yy = 0; yy < out_h; ++yy) {
    const int* k = &c.weights[static_cast<size_t>(yy) * c.ksize];
    int ymin = c.bounds[yy * 2] - shift, ymax = c.bounds[yy * 2 + 1];
    std::uint8_t* dst = &out.pixels[static_cast<size_t>(yy) * in.width * 3];
    for (int xx = 0; xx < in.width * 3; ++xx) {
      int s = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) s += in.data[static_cast<size_t>(y + ymin) * in.stride + xx] * k[y];
      dst[xx] = clip8(s);
    }
  }
  return out;
}

// Geometry.c ImagingScaleAffine with a = (in_w / out_w, 0, 0, 0, in_h / out_h, 0)
Image nearest(const ImageView& in, int out_w, int out_h) {
  Image out{out_w, out_h, std::vector<std::uint8_t>(static_cast<size_t>(out_w) * out_h * 3, 0)};
  double a0 = static_cast<double>(static_cast<float>(in.width)) / out_w;
  double a4 = static_cast<double>(static_cast<float>(in.height)) / out_h;
  auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
  std::vector<int> xin(out_w, -1);
  double xo = 0.0 + a0 * 0.5;
  for (int x = 0; x < out_w; ++x) {
    int xi = coord(xo);
    if (xi >= 0 && xi < in.width) xin[x] = xi;
    xo += a0;
  }
  double yo = 0.0 + a4 * 0.5;
  for (int y = 0; y < out_h; ++y) {
    int yi = coord(yo);
    if (yi >= 0 && yi < in.height) {
      const std::uint8_t* line = in.data + static_cast<size_t>(yi) * in.stride;
      std::uint8_t* dst = &out.pixels[static_cast<size_t>(y) * out_w * 3];
      for (int x = 0; x < out_w; ++x) {
        if (xin[x] >= 0) std::memcpy(dst + x * 3, line + static_cast<size_t>(xin[x]) * 3, 3);
      }
    }
    yo += a4;
  }
  return out;
}

Image copy_of(const ImageView& in) {
  Image out{in.width, in.height, std::vector<std::uint8_t>(static_cast<size_t>(in.width) * in.height * 3)};
  for (int y = 0; y < in.height; ++y)
    std::memcpy(&out.pixels[static_cast<size_t>(y) * in.width * 3], in.data + static_cast<size_t>(y) * in.stride,
                static_cast<size_t>(in.width) * 3);
  return out;
}

}  // namespace

ImageView checked_view(const ImageView& image) {
  ImageView v = image;
  if (v.data == nullptr || v.width <= 0 || v.height <= 0)
    throw Error("empty image (" + std::to_string(v.width) + "x" + std::to_string(v.height) + ")");
  if (v.stride == 0) v.stride = static_cast<size_t>(v.width) * 3;
  if (v.stride < static_cast<size_t>(v.width) * 3)
    throw Error("image stride " + std::to_string(v.stride) + " is less than width * 3 = " +
                std::to_string(static_cast<size_t>(v.width) * 3) + " bytes");
  return v;
}

Image resize(const ImageView& image, int out_w, int out_h, const std::string& interpolation) {
  ImageView in = checked_view(image);
  if (out_w < 1 || out_h < 1) throw Error("resize: height and width must be > 0");
  Filter filter{};
  if (interpolation == "bicubic") filter = {bicubic_filter, 2.0};
  else if (interpolation == "bilinear") filter = {bilinear_filter, 1.0};
  else if (interpolation == "lanczos") filter = {lanczos_filter, 3.0};
  else if (interpolation == "box") filter = {box_filter, 0.5};
  else if (interpolation == "hamming") filter = {hamming_filter, 1.0};
  else if (interpolation != "nearest")
    throw Error("unknown interpolation '" + interpolation +
                "'; known: bicubic, bilinear, nearest, lanczos, box, hamming");
  if (out_w == in.width && out_h == in.height) return copy_of(in);
  if (interpolation == "nearest") return nearest(in, out_w, out_h);

  const bool need_h = out_w != in.width, need_v = out_h != in.height;
  // Pillow 13: when the height shrinks by more than twice what the width does, the vertical
  // pass runs first (on every row); otherwise horizontal first, over the rows the vertical
  // pass will read only
  const bool horizontal_first =
      !((in.height - out_h) > 0 && (in.height - out_h) > (in.width - out_w) * 2);
  Coeffs vc = precompute(in.height, 0.0f, static_cast<float>(in.height), out_h, filter);
  Coeffs hc = precompute(in.width, 0.0f, static_cast<float>(in.width), out_w, filter);
  if (!horizontal_first) {
    if (!need_h) return vertical(in, out_h, vc, 0);
    if (!need_v) return horizontal(in, out_w, 0, in.height, hc);
    Image tmp = vertical(in, out_h, vc, 0);
    return horizontal(tmp.view(), out_w, 0, out_h, hc);
  }
  if (!need_h) return vertical(in, out_h, vc, 0);
  const int first = vc.bounds[0];
  const int last = vc.bounds[(out_h - 1) * 2] + vc.bounds[(out_h - 1) * 2 + 1];
  Image tmp = horizontal(in, out_w, first, last - first, hc);
  if (!need_v) return tmp;
  return vertical(tmp.view(), out_h, vc, first);
}

}  // namespace edgevis
