/* edgevis C API: the C++ runtime behind status codes, for applications built without exceptions.
 *
 *   edgevis_model* m = NULL;
 *   if (edgevis_open("model.onnx", &m) != EDGEVIS_OK) { fprintf(stderr, "error: %s\n", edgevis_last_error()); }
 *   edgevis_prediction top[5]; int n = 0;
 *   edgevis_classify(m, rgb, width, height, stride, top, 5, &n);
 *   edgevis_close(m);
 *
 * edgevis_last_error() is the message of the last failed call on this thread.
 */
#ifndef EDGEVIS_EDGEVIS_H
#define EDGEVIS_EDGEVIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum edgevis_status {
  EDGEVIS_OK = 0,
  EDGEVIS_ERROR = 1,          /* bad file, bad argument, runtime failure */
  EDGEVIS_MISMATCH = 2,       /* built for another runtime version / GPU, or the sidecar describes another file */
  EDGEVIS_INTERNAL = 3        /* a bug: please report it */
} edgevis_status;

typedef struct edgevis_model edgevis_model;

typedef struct edgevis_prediction {
  int index;
  char name[128];
  double probability;
  float logit;
} edgevis_prediction;

const char* edgevis_last_error(void);

edgevis_status edgevis_open(const char* path, edgevis_model** out);
void edgevis_close(edgevis_model* model);

/* The recorded input size (the tensor is 3 x height x width floats). */
edgevis_status edgevis_input_size(const edgevis_model* model, int* height, int* width);

/* Preprocess 8-bit RGB pixels (row stride in bytes) into `out` (3 * height * width floats). */
edgevis_status edgevis_preprocess(const edgevis_model* model, const uint8_t* rgb, int width, int height,
                                  size_t stride, float* out, size_t out_len);

/* Run on a preprocessed tensor; writes up to out_len logits and their count into *n. */
edgevis_status edgevis_run(edgevis_model* model, const float* input, size_t input_len, float* out,
                           size_t out_len, size_t* n);

/* Top-k classes of an RGB image. */
edgevis_status edgevis_classify(edgevis_model* model, const uint8_t* rgb, int width, int height, size_t stride,
                                edgevis_prediction* top, int k, int* n);

#ifdef __cplusplus
}
#endif

#endif /* EDGEVIS_EDGEVIS_H */
