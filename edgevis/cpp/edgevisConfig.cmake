# CMake package of the edgevis C++ runtime, shipped inside the Python package.
#
#   find_package(edgevis CONFIG REQUIRED)      # edgevis_DIR: `edgevis cpp --cmake-dir`
#   target_link_libraries(app PRIVATE edgevis::runtime)
#
# The library is compiled from source inside the consuming project (it is a few files), so it
# always matches the app's compiler and flags. Backends are compiled where their SDK is found:
#   ONNX Runtime: ONNXRUNTIME_ROOT (CMake variable or environment) = an ONNX Runtime release
#                 folder with include/onnxruntime_cxx_api.h and lib/libonnxruntime.so; else the
#                 SDK .ci/ort_sdk.sh assembles ($EDGEVIS_ORT_SDK, ~/.cache/edgevis/ort-sdk)
#   TensorRT:     TENSORRT_ROOT = a folder with include/NvInfer.h and lib/libnvinfer.so, plus the
#                 CUDA toolkit (find_package(CUDAToolkit))
# Options: EDGEVIS_WITH_ONNXRUNTIME, EDGEVIS_WITH_TENSORRT (ON), EDGEVIS_SANITIZE (OFF; ASan+UBSan).
# Results: edgevis_HAS_ONNXRUNTIME, edgevis_HAS_TENSORRT.
cmake_minimum_required(VERSION 3.16)
include_guard(GLOBAL)

set(_edgevis_root "${CMAKE_CURRENT_LIST_DIR}")
get_filename_component(_edgevis_data "${_edgevis_root}/../data" ABSOLUTE)

option(EDGEVIS_WITH_ONNXRUNTIME "Build the ONNX Runtime backend of edgevis::runtime" ON)
option(EDGEVIS_WITH_TENSORRT "Build the TensorRT backend of edgevis::runtime" ON)
option(EDGEVIS_SANITIZE "Build edgevis::runtime and link its users with AddressSanitizer and UBSan" OFF)

# the ImageNet names, from the very list the Python side reads
set(_edgevis_classes "${_edgevis_data}/imagenet_classes.txt")
if(NOT EXISTS "${_edgevis_classes}")
  message(FATAL_ERROR "edgevis: ${_edgevis_classes} is missing (a broken edgevis install?)")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_edgevis_classes}")
file(READ "${_edgevis_classes}" EDGEVIS_IMAGENET_CLASSES_TEXT)
set(_edgevis_gen "${CMAKE_BINARY_DIR}/_edgevis")
configure_file("${_edgevis_root}/src/imagenet_classes.cpp.in" "${_edgevis_gen}/imagenet_classes.cpp" @ONLY)

add_library(edgevis_runtime STATIC
  "${_edgevis_root}/src/resample.cpp"
  "${_edgevis_root}/src/preprocess.cpp"
  "${_edgevis_root}/src/json.cpp"
  "${_edgevis_root}/src/sha256.cpp"
  "${_edgevis_root}/src/guard.cpp"
  "${_edgevis_root}/src/model.cpp"
  "${_edgevis_root}/src/c_api.cpp"
  "${_edgevis_gen}/imagenet_classes.cpp")
add_library(edgevis::runtime ALIAS edgevis_runtime)
target_include_directories(edgevis_runtime PUBLIC "${_edgevis_root}/include" PRIVATE "${_edgevis_root}/src")
target_compile_features(edgevis_runtime PUBLIC cxx_std_17)
set_target_properties(edgevis_runtime PROPERTIES POSITION_INDEPENDENT_CODE ON)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  # the resize must round as Pillow's build does: no fused multiply-add contraction
  set_source_files_properties("${_edgevis_root}/src/resample.cpp" PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
endif()
if(EDGEVIS_SANITIZE)
  target_compile_options(edgevis_runtime PUBLIC -fsanitize=address,undefined -fno-sanitize-recover=undefined
                                                -fno-omit-frame-pointer)
  target_link_options(edgevis_runtime PUBLIC -fsanitize=address,undefined)
endif()

# --- ONNX Runtime ------------------------------------------------------------------------------
set(edgevis_HAS_ONNXRUNTIME FALSE)
if(EDGEVIS_WITH_ONNXRUNTIME)
  # ONNXRUNTIME_ROOT first; then the SDK .ci/ort_sdk.sh assembles (EDGEVIS_ORT_SDK or its default)
  set(_edgevis_ort_hints ${ONNXRUNTIME_ROOT} $ENV{ONNXRUNTIME_ROOT} $ENV{EDGEVIS_ORT_SDK})
  if(DEFINED ENV{XDG_CACHE_HOME})
    list(APPEND _edgevis_ort_hints "$ENV{XDG_CACHE_HOME}/edgevis/ort-sdk")
  elseif(DEFINED ENV{HOME})
    list(APPEND _edgevis_ort_hints "$ENV{HOME}/.cache/edgevis/ort-sdk")
  endif()
  find_path(EDGEVIS_ORT_INCLUDE_DIR onnxruntime_cxx_api.h
            HINTS ${_edgevis_ort_hints} PATH_SUFFIXES include include/onnxruntime)
  find_library(EDGEVIS_ORT_LIBRARY NAMES onnxruntime HINTS ${_edgevis_ort_hints} PATH_SUFFIXES lib lib64)
  if(EDGEVIS_ORT_INCLUDE_DIR AND EDGEVIS_ORT_LIBRARY)
    target_sources(edgevis_runtime PRIVATE "${_edgevis_root}/src/ort_backend.cpp")
    target_include_directories(edgevis_runtime SYSTEM PRIVATE "${EDGEVIS_ORT_INCLUDE_DIR}")
    target_link_libraries(edgevis_runtime PUBLIC "${EDGEVIS_ORT_LIBRARY}")
    target_compile_definitions(edgevis_runtime PUBLIC EDGEVIS_HAVE_ONNXRUNTIME=1)
    set(edgevis_HAS_ONNXRUNTIME TRUE)
    message(STATUS "edgevis: ONNX Runtime backend: ${EDGEVIS_ORT_LIBRARY}")
  else()
    set(_missing "")
    if(NOT EDGEVIS_ORT_INCLUDE_DIR)
      list(APPEND _missing "onnxruntime_cxx_api.h")
    endif()
    if(NOT EDGEVIS_ORT_LIBRARY)
      list(APPEND _missing "libonnxruntime")
    endif()
    string(REPLACE ";" " and " _missing "${_missing}")
    message(STATUS "edgevis: ONNX Runtime backend disabled: ${_missing} not found "
                   "(set ONNXRUNTIME_ROOT to an ONNX Runtime release folder with include/ and lib/)")
  endif()
endif()

# --- TensorRT ----------------------------------------------------------------------------------
set(edgevis_HAS_TENSORRT FALSE)
if(EDGEVIS_WITH_TENSORRT)
  set(_edgevis_trt_hints ${TENSORRT_ROOT} $ENV{TENSORRT_ROOT})
  find_path(EDGEVIS_TRT_INCLUDE_DIR NvInfer.h HINTS ${_edgevis_trt_hints}
            PATH_SUFFIXES include include/x86_64-linux-gnu include/aarch64-linux-gnu)
  find_library(EDGEVIS_TRT_LIBRARY NAMES nvinfer nvinfer_11 nvinfer_10 HINTS ${_edgevis_trt_hints}
               PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu lib/aarch64-linux-gnu)
  find_package(CUDAToolkit QUIET)
  if(EDGEVIS_TRT_INCLUDE_DIR AND EDGEVIS_TRT_LIBRARY AND TARGET CUDA::cudart)
    target_sources(edgevis_runtime PRIVATE "${_edgevis_root}/src/trt_backend.cpp")
    target_include_directories(edgevis_runtime SYSTEM PRIVATE "${EDGEVIS_TRT_INCLUDE_DIR}")
    target_link_libraries(edgevis_runtime PUBLIC "${EDGEVIS_TRT_LIBRARY}" CUDA::cudart)
    target_compile_definitions(edgevis_runtime PUBLIC EDGEVIS_HAVE_TENSORRT=1)
    set(edgevis_HAS_TENSORRT TRUE)
    message(STATUS "edgevis: TensorRT backend: ${EDGEVIS_TRT_LIBRARY}")
  else()
    set(_missing "")
    if(NOT EDGEVIS_TRT_INCLUDE_DIR)
      list(APPEND _missing "NvInfer.h")
    endif()
    if(NOT EDGEVIS_TRT_LIBRARY)
      list(APPEND _missing "libnvinfer")
    endif()
    if(NOT TARGET CUDA::cudart)
      list(APPEND _missing "the CUDA runtime (CUDAToolkit)")
    endif()
    string(REPLACE ";" ", " _missing "${_missing}")
    message(STATUS "edgevis: TensorRT backend disabled: ${_missing} not found "
                   "(set TENSORRT_ROOT to a TensorRT 10/11 folder with include/ and lib/, and install the CUDA toolkit)")
  endif()
  # Compile (not link) the TensorRT backend against headers alone, e.g. the include/ folder of
  # github.com/NVIDIA/TensorRT, on a machine without TensorRT or a GPU:
  #   -DEDGEVIS_TRT_COMPILE_CHECK=ON -DTENSORRT_ROOT=/path/to/TensorRT   then build edgevis_trt_check
  option(EDGEVIS_TRT_COMPILE_CHECK "Compile the TensorRT backend against TensorRT's headers only (no library)" OFF)
  if(EDGEVIS_TRT_COMPILE_CHECK)
    set(_cuda_inc ${CUDAToolkit_INCLUDE_DIRS})
    if(NOT _cuda_inc)
      find_path(_cuda_inc cuda_runtime_api.h HINTS $ENV{CUDA_HOME} /usr/local/cuda PATH_SUFFIXES include)
    endif()
    if(NOT EDGEVIS_TRT_INCLUDE_DIR OR NOT _cuda_inc)
      message(FATAL_ERROR "edgevis: EDGEVIS_TRT_COMPILE_CHECK needs NvInfer.h (TENSORRT_ROOT) and cuda_runtime_api.h")
    endif()
    add_library(edgevis_trt_check OBJECT "${_edgevis_root}/src/trt_backend.cpp" "${_edgevis_root}/src/model.cpp")
    target_include_directories(edgevis_trt_check PRIVATE "${_edgevis_root}/include" "${_edgevis_root}/src")
    target_include_directories(edgevis_trt_check SYSTEM PRIVATE "${EDGEVIS_TRT_INCLUDE_DIR}" ${_cuda_inc})
    target_compile_definitions(edgevis_trt_check PRIVATE EDGEVIS_HAVE_TENSORRT=1)
    target_compile_features(edgevis_trt_check PRIVATE cxx_std_17)
    message(STATUS "edgevis: edgevis_trt_check compiles the TensorRT backend against ${EDGEVIS_TRT_INCLUDE_DIR}")
  endif()
endif()

if(NOT edgevis_HAS_ONNXRUNTIME AND NOT edgevis_HAS_TENSORRT)
  message(WARNING "edgevis: no backend found (neither ONNX Runtime nor TensorRT): edgevis::runtime can "
                  "preprocess but not run models. Set ONNXRUNTIME_ROOT or TENSORRT_ROOT.")
endif()

set(edgevis_FOUND TRUE)
