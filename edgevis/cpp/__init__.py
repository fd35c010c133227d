"""The C++ runtime shipped inside the package: where its CMake package lies, and a starter app.

``find_package(edgevis CONFIG REQUIRED)`` with ``edgevis_DIR`` set to :func:`cmake_dir` gives the
target ``edgevis::runtime`` (headers ``edgevis/edgevis.hpp`` and the C API ``edgevis/edgevis.h``);
the library compiles from the sources here inside the consuming project, with the ONNX Runtime
and TensorRT backends its SDKs allow. :func:`init_app` writes a minimal app that builds against it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import EdgevisError

APP_FILES = ("CMakeLists.txt", "main.cpp")


def cmake_dir() -> Path:
    """The folder holding ``edgevisConfig.cmake`` (pass it as ``-Dedgevis_DIR=...``)."""
    return Path(__file__).resolve().parent


def _app_cmake(name: str) -> str:
    # HINTS: the installed package this app was generated from; -Dedgevis_DIR overrides it
    return f"""# A minimal app on the edgevis C++ runtime (written by `edgevis cpp init`).
#   cmake -S . -B build && cmake --build build && build/{name} MODEL IMAGE.ppm
cmake_minimum_required(VERSION 3.16)
project({name} LANGUAGES CXX)

find_package(edgevis CONFIG REQUIRED HINTS "{cmake_dir().as_posix()}")

add_executable({name} main.cpp)
target_compile_features({name} PRIVATE cxx_std_17)
target_link_libraries({name} PRIVATE edgevis::runtime)
"""


_APP_MAIN = r"""// A minimal app on the edgevis C++ runtime (written by `edgevis cpp init`): the top-5 classes
// of a binary PPM (P6) image, with the preprocessing the model file records. For JPEG and PNG,
// see examples/cpp/classify in the edgevis repository (libjpeg-turbo and libpng, as Pillow).
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <edgevis/edgevis.hpp>

static edgevis::Image read_ppm(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw edgevis::Error("image not found: " + path);
  std::string magic;
  int w = 0, h = 0, maxval = 0;
  f >> magic >> w >> h >> maxval;
  f.get();
  if (!f || magic != "P6" || w < 1 || h < 1 || maxval != 255 || w > 65535 || h > 65535)
    throw edgevis::Error(path + " is not a binary 8-bit PPM (P6) image");
  edgevis::Image img{w, h, std::vector<std::uint8_t>(static_cast<size_t>(w) * h * 3)};
  if (!f.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size())))
    throw edgevis::Error("cannot read image " + path + " (truncated)");
  return img;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL IMAGE.ppm\n", argv[0]);
    return 2;
  }
  try {
    edgevis::Model model = edgevis::Model::open(argv[1]);
    edgevis::Image image = read_ppm(argv[2]);
    for (const edgevis::Prediction& p : model.classify(image.view(), 5))
      std::printf("%d\t%.6f\t%s\n", p.index, p.probability, p.name.c_str());
  } catch (const edgevis::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
"""


def init_app(directory: str | os.PathLike[str], *, name: str = "edgevis_app", force: bool = False) -> list[Path]:
    """Write ``CMakeLists.txt`` and ``main.cpp`` of a minimal app into ``directory``; returns the files.
    Existing files are kept unless ``force``."""
    from ..core.files import atomic_outputs, ensure_writable_dir

    if not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise EdgevisError(f"app name {name!r}: use letters, digits and underscores, starting with a letter")
    d = Path(directory)
    files = {"CMakeLists.txt": _app_cmake(name), "main.cpp": _APP_MAIN}
    taken = [n for n in files if (d / n).exists()]
    if taken and not force:
        raise EdgevisError(f"{d} already holds {', '.join(taken)}; pass --force to overwrite")
    ensure_writable_dir(d)
    targets = [d / n for n in files]
    with atomic_outputs(*targets) as tmps:  # both files or neither
        for tmp, text in zip(tmps, files.values()):
            Path(tmp).write_text(text)
    return targets
