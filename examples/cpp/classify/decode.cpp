// JPEG through libjpeg-turbo and PNG through libpng: the libraries Pillow decodes with, at
// Pillow's settings (JPEG: libjpeg's defaults, i.e. the ISLOW integer IDCT and fancy upsampling),
// so the RGB bytes are the ones `edgevis predict` sees. Then edgevis.data.images.to_rgb's
// conversions: grayscale replicated, 16-bit grayscale scaled to 8 bits, other 16-bit samples cut
// to their high byte (Pillow's ;16B unpackers), alpha composited on black with Pillow's integer
// formula, Adobe CMYK converted with Pillow's cmyk2rgb. Images over load_image's pixel limit
// (EDGEVIS_MAX_IMAGE_PIXELS, else Pillow's 89,478,485) are refused from the header, before decoding.
#include "decode.hpp"

#include <sys/stat.h>

#include <cstdio>  // before jpeglib.h, which uses FILE and size_t

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using edgevis::Error;
using edgevis::Image;

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("image not found: " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// edgevis.data.images.max_image_pixels, in its words
constexpr long long kDefaultMaxPixels = 89478485;  // Pillow's Image.MAX_IMAGE_PIXELS default
constexpr const char* kPixelsEnv = "EDGEVIS_MAX_IMAGE_PIXELS";

long long max_image_pixels() {
  const char* raw = std::getenv(kPixelsEnv);
  if (raw == nullptr) return kDefaultMaxPixels;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(raw, &end);
  while (end && *end && std::strchr(" \t\n\r\f\v", *end)) ++end;
  if (end == raw || *end != '\0' || !std::isfinite(v) || errno == ERANGE)
    throw Error(std::string(kPixelsEnv) + "='" + raw + "' is not a number of pixels");
  if (std::trunc(v) < 1) throw Error(std::string(kPixelsEnv) + " must be >= 1 (got " + raw + ")");
  return v >= 9.2e18 ? static_cast<long long>(9.2e18) : static_cast<long long>(std::trunc(v));
}

std::string thousands(long long v) {  // Python's f"{v:,}"
  std::string digits = std::to_string(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// load_image refuses, from the header's size, what would decode into more than the limit
void check_pixels(const std::string& path, long long w, long long h, long long limit) {
  if (w * h > limit)
    throw Error("image " + path + " is " + std::to_string(w) + "x" + std::to_string(h) + " = " + thousands(w * h) +
                " pixels, over the limit of " + thousands(limit) +
                " pixels (a guard against decompression bombs); set " + kPixelsEnv + " to allow larger images");
}

// Pillow's AlphaComposite.c on an opaque black background (PRECISION_BITS 7)
inline std::uint8_t over_black(unsigned v, unsigned a) {
  if (a == 0) return 0;
  const unsigned outa255 = a * 255 + 255 * (255 - a);
  const unsigned coef1 = a * 255 * 255 * (1u << 7) / outa255;
  const unsigned coef2 = 255 * (1u << 7) - coef1;
  const unsigned tmp = v * coef1 + 0 * coef2 + (0x80u << 7);
  return static_cast<std::uint8_t>((((tmp >> 8) + tmp) >> 8) >> 7);
}

// ---------------------------------------------------------------------------------------------
// JPEG

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

void jpeg_warn(j_common_ptr cinfo, int level) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  // Pillow refuses a truncated JPEG ("image file is truncated"); libjpeg only warns and pads
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    e->truncated = true;
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
  }
}

// Returns "" on success, else the reason; no C++ object lives across setjmp.
std::string decode_jpeg_raw(const std::string& bytes, std::vector<std::uint8_t>* out, int* w, int* h, int* comps,
                            bool* adobe_cmyk, long long max_pixels, bool* too_large) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  std::memset(&err, 0, sizeof err);
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_warn;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return err.truncated ? std::string("truncated (") + err.message + ")" : std::string(err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<long long>(cinfo.image_width) * cinfo.image_height > max_pixels) {
    *w = static_cast<int>(cinfo.image_width);
    *h = static_cast<int>(cinfo.image_height);
    *too_large = true;
    jpeg_destroy_decompress(&cinfo);
    return "too large";
  }
  // libjpeg's defaults, as Pillow (no draft mode): JDCT_ISLOW, fancy upsampling
  if (cinfo.num_components == 4) {
    cinfo.out_color_space = JCS_CMYK;
    *adobe_cmyk = true;
  } else if (cinfo.num_components == 1) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else {
    cinfo.out_color_space = JCS_RGB;
  }
  jpeg_start_decompress(&cinfo);
  *w = static_cast<int>(cinfo.output_width);
  *h = static_cast<int>(cinfo.output_height);
  *comps = cinfo.output_components;
  out->resize(static_cast<size_t>(*w) * *h * *comps);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->data() + static_cast<size_t>(cinfo.output_scanline) * *w * *comps;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return "";
}

Image decode_jpeg(const std::string& path, const std::string& bytes) {
  std::vector<std::uint8_t> raw;
  int w = 0, h = 0, comps = 0;
  bool cmyk = false, too_large = false;
  const long long limit = max_image_pixels();
  std::string why = decode_jpeg_raw(bytes, &raw, &w, &h, &comps, &cmyk, limit, &too_large);
  if (too_large) check_pixels(path, w, h, limit);
  if (!why.empty()) throw Error("cannot read image " + path + " (corrupt or truncated): " + why);
  Image img{w, h, std::vector<std::uint8_t>(static_cast<size_t>(w) * h * 3)};
  const size_t n = static_cast<size_t>(w) * h;
  for (size_t i = 0; i < n; ++i) {
    std::uint8_t* o = &img.pixels[i * 3];
    if (comps == 1) {
      o[0] = o[1] = o[2] = raw[i];
    } else if (comps == 3) {
      std::memcpy(o, &raw[i * 3], 3);
    } else {
      // Pillow: "CMYK;I" (Adobe polarity: stored inverted), then Convert.c's cmyk2rgb
      const int nk = raw[i * 4 + 3];  // 255 - k, k = 255 - stored
      for (int c = 0; c < 3; ++c) {
        const int v = 255 - raw[i * 4 + c];
        int t = v * nk + 128;  // MULDIV255
        t = ((t >> 8) + t) >> 8;
        const int r = nk - t;
        o[c] = static_cast<std::uint8_t>(r <= 0 ? 0 : r < 256 ? r : 255);
      }
    }
  }
  return img;
}

// ---------------------------------------------------------------------------------------------
// PNG

struct PngReader {
  const std::string* bytes;
  size_t pos;
  char message[256];
};

void png_read_mem(png_structp png, png_bytep data, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->pos + n > r->bytes->size()) png_error(png, "truncated: the file ends early");
  std::memcpy(data, r->bytes->data() + r->pos, n);
  r->pos += n;
}

void png_fail(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof r->message, "%s", msg);
  png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}

std::string decode_png_raw(const std::string& bytes, std::vector<std::uint8_t>* out, int* w, int* h, int* channels,
                           int* depth, long long max_pixels, bool* too_large) {
  PngReader reader{&bytes, 0, {0}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_fail, png_warn);
  if (!png) return "out of memory";
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep>* rows = nullptr;
  if (!info || setjmp(png_jmpbuf(png))) {
    delete rows;
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    return reader.message[0] ? reader.message : "out of memory";
  }
  png_set_read_fn(png, &reader, png_read_mem);
  png_read_info(png, info);
  if (static_cast<long long>(png_get_image_width(png, info)) * png_get_image_height(png, info) > max_pixels) {
    *w = static_cast<int>(png_get_image_width(png, info));
    *h = static_cast<int>(png_get_image_height(png, info));
    *too_large = true;
    png_destroy_read_struct(&png, &info, nullptr);
    return "too large";
  }
  const int color = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    // Pillow: a palette with a tRNS chunk becomes RGBA (to_rgb composites it on black)
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  } else if (color == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);  // 0x55 / 0x11 / 0xFF scaling, as Pillow's L;2 L;4 and "1"
  }
  // grayscale/RGB tRNS is ignored: Pillow keeps it in info and convert("RGB") drops it
  png_read_update_info(png, info);
  *w = static_cast<int>(png_get_image_width(png, info));
  *h = static_cast<int>(png_get_image_height(png, info));
  *channels = png_get_channels(png, info);
  *depth = png_get_bit_depth(png, info);
  const size_t rowbytes = png_get_rowbytes(png, info);
  out->resize(rowbytes * static_cast<size_t>(*h));
  rows = new std::vector<png_bytep>(static_cast<size_t>(*h));
  for (int y = 0; y < *h; ++y) (*rows)[y] = out->data() + rowbytes * static_cast<size_t>(y);
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  delete rows;
  png_destroy_read_struct(&png, &info, nullptr);
  return "";
}

Image decode_png(const std::string& path, const std::string& bytes) {
  std::vector<std::uint8_t> raw;
  int w = 0, h = 0, ch = 0, depth = 0;
  bool too_large = false;
  const long long limit = max_image_pixels();
  std::string why = decode_png_raw(bytes, &raw, &w, &h, &ch, &depth, limit, &too_large);
  if (too_large) check_pixels(path, w, h, limit);
  if (!why.empty()) throw Error("cannot read image " + path + " (corrupt or truncated): " + why);
  Image img{w, h, std::vector<std::uint8_t>(static_cast<size_t>(w) * h * 3)};
  const size_t n = static_cast<size_t>(w) * h;
  const int bps = depth == 16 ? 2 : 1;
  auto sample = [&](size_t i, int c) -> unsigned {
    const std::uint8_t* p = &raw[(i * ch + c) * bps];
    return p[0];  // 8-bit, or the high (first) byte of 16-bit: Pillow's ;16B unpackers
  };
  for (size_t i = 0; i < n; ++i) {
    std::uint8_t* o = &img.pixels[i * 3];
    if (ch == 1) {
      unsigned v;
      if (bps == 2) {
        // to_rgb: "I;16" scaled to 8 bits in float64: clip(v / 65535 * 255 + 0.5)
        const unsigned v16 = (unsigned(raw[i * 2]) << 8) | raw[i * 2 + 1];
        double d = static_cast<double>(v16) / 65535.0 * 255.0 + 0.5;
        v = static_cast<unsigned>(d < 0 ? 0 : d > 255 ? 255 : d);
      } else {
        v = raw[i];
      }
      o[0] = o[1] = o[2] = static_cast<std::uint8_t>(v);
    } else if (ch == 2) {
      const std::uint8_t g = over_black(sample(i, 0), sample(i, 1));
      o[0] = o[1] = o[2] = g;
    } else if (ch == 3) {
      for (int c = 0; c < 3; ++c) o[c] = static_cast<std::uint8_t>(sample(i, c));
    } else {
      const unsigned a = sample(i, 3);
      for (int c = 0; c < 3; ++c) o[c] = over_black(sample(i, c), a);
    }
  }
  return img;
}

}  // namespace

edgevis::Image load_image(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error("image not found: " + path);
  if (S_ISDIR(st.st_mode)) throw Error(path + " is a directory, not an image");
  const std::string bytes = read_all(path);
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return decode_jpeg(path, bytes);
  if (bytes.size() >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(path, bytes);
  throw Error(path + " is not an image of a supported kind (this example reads jpg and png)");
}
