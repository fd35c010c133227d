// The C API (edgevis.h): every call catches, keeps the message for edgevis_last_error(), and
// returns a status; no exception crosses it.
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "edgevis/edgevis.h"
#include "edgevis/edgevis.hpp"

struct edgevis_model {
  edgevis::Model model;
};

namespace {

thread_local std::string g_last_error;

template <class F>
edgevis_status guarded(F&& f) {
  try {
    f();
    g_last_error.clear();
    return EDGEVIS_OK;
  } catch (const edgevis::MismatchError& e) {
    g_last_error = e.what();
    return EDGEVIS_MISMATCH;
  } catch (const edgevis::Error& e) {
    g_last_error = e.what();
    return EDGEVIS_ERROR;
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return EDGEVIS_ERROR;
  } catch (const std::exception& e) {
    g_last_error = std::string("internal error: ") + e.what();
    return EDGEVIS_INTERNAL;
  } catch (...) {
    g_last_error = "internal error";
    return EDGEVIS_INTERNAL;
  }
}

edgevis_status bad(const char* what) {
  g_last_error = what;
  return EDGEVIS_ERROR;
}

}  // namespace

extern "C" {

const char* edgevis_last_error(void) { return g_last_error.c_str(); }

edgevis_status edgevis_open(const char* path, edgevis_model** out) {
  if (path == nullptr || out == nullptr) return bad("edgevis_open: path and out must not be NULL");
  *out = nullptr;
  return guarded([&] { *out = new edgevis_model{edgevis::Model::open(path)}; });
}

void edgevis_close(edgevis_model* model) { delete model; }

edgevis_status edgevis_input_size(const edgevis_model* model, int* height, int* width) {
  if (model == nullptr || height == nullptr || width == nullptr) return bad("edgevis_input_size: NULL argument");
  *height = model->model.preprocessing().height;
  *width = model->model.preprocessing().width;
  return EDGEVIS_OK;
}

edgevis_status edgevis_preprocess(const edgevis_model* model, const uint8_t* rgb, int width, int height,
                                  size_t stride, float* out, size_t out_len) {
  if (model == nullptr || out == nullptr) return bad("edgevis_preprocess: NULL argument");
  return guarded([&] {
    std::vector<float> x = edgevis::preprocess({rgb, width, height, stride}, model->model.preprocessing());
    if (out_len < x.size())
      throw edgevis::Error("edgevis_preprocess: out holds " + std::to_string(out_len) + " floats, " +
                           std::to_string(x.size()) + " needed");
    std::memcpy(out, x.data(), x.size() * sizeof(float));
  });
}

edgevis_status edgevis_run(edgevis_model* model, const float* input, size_t input_len, float* out, size_t out_len,
                           size_t* n) {
  if (model == nullptr || input == nullptr || out == nullptr || n == nullptr) return bad("edgevis_run: NULL argument");
  return guarded([&] {
    std::vector<float> y = model->model.run(std::vector<float>(input, input + input_len));
    *n = y.size() < out_len ? y.size() : out_len;
    std::memcpy(out, y.data(), *n * sizeof(float));
  });
}

edgevis_status edgevis_classify(edgevis_model* model, const uint8_t* rgb, int width, int height, size_t stride,
                                edgevis_prediction* top, int k, int* n) {
  if (model == nullptr || top == nullptr || n == nullptr || k < 0) return bad("edgevis_classify: bad argument");
  return guarded([&] {
    std::vector<edgevis::Prediction> p = model->model.classify({rgb, width, height, stride}, k);
    *n = static_cast<int>(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      top[i].index = p[i].index;
      std::strncpy(top[i].name, p[i].name.c_str(), sizeof top[i].name - 1);
      top[i].name[sizeof top[i].name - 1] = '\0';
      top[i].probability = p[i].probability;
      top[i].logit = p[i].logit;
    }
  });
}

}  // extern "C"
