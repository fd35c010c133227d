/* classify: the top-5 classes of a PNG image with a model emitted by `edgevis codegen`.
 *
 *   classify IMAGE.png [--labels FILE] [--dump-input FILE]
 *
 * The model (MODEL.h, MODEL.c, MODEL_weights.c) runs on integers only. Float appears here, in the app:
 * preparing the pixels (MODEL_input.c) and turning the int32 logits into probabilities for display.
 * PNG decoding: libpng. Build with the Makefile beside this file: make LIB=DIR MODEL=NAME.
 */
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include MODEL_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define UP(x) CAT(UPFX, x)

/* an RGB8 image of w x h pixels from a PNG of any colour type (gray, palette and alpha converted) */
static uint8_t *read_png(const char *path, int *w, int *h) {
    png_image img;
    uint8_t *px;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        fprintf(stderr, "error: %s: %s\n", path, img.message);
        return NULL;
    }
    img.format = PNG_FORMAT_RGB;
    px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        fprintf(stderr, "error: %s: %s\n", path, img.message);
        free(px);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return px;
}

/* the model's input size from an image of another size: shorter side to the input size, bilinear, center
   crop (an approximation of the Python preprocessing's bicubic resize; an image already at the input size is
   used as it is, exactly as Python does) */
static uint8_t *fit(uint8_t *src, int w, int h, int tw, int th) {
    double s = (w < h) ? (double)tw / w : (double)th / h;
    int rw = (int)(w * s + 0.5), rh = (int)(h * s + 0.5), left = (rw - tw) / 2, top = (rh - th) / 2;
    uint8_t *out;
    if (w == tw && h == th) return src;
    out = malloc((size_t)tw * th * 3);
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            double fx = (x + left + 0.5) / s - 0.5, fy = (y + top + 0.5) / s - 0.5;
            int x0 = (int)floor(fx), y0 = (int)floor(fy);
            double ax = fx - x0, ay = fy - y0;
            for (int c = 0; c < 3; c++) {
                double v = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int xx = x0 + dx < 0 ? 0 : (x0 + dx >= w ? w - 1 : x0 + dx);
                        int yy = y0 + dy < 0 ? 0 : (y0 + dy >= h ? h - 1 : y0 + dy);
                        v += (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay) * src[((size_t)yy * w + xx) * 3 + c];
                    }
                out[((size_t)y * tw + x) * 3 + c] = (uint8_t)(v + 0.5);
            }
        }
    free(src);
    return out;
}

static char **read_labels(const char *path, int n) {
    char **names = calloc((size_t)n, sizeof *names), line[512];
    FILE *f = fopen(path, "r");
    if (!f) return names;
    for (int i = 0; i < n && fgets(line, sizeof line, f); i++) {
        size_t n_ = strcspn(line, "\r\n");
        names[i] = malloc(n_ + 1);
        memcpy(names[i], line, n_);
        names[i][n_] = 0;
    }
    fclose(f);
    return names;
}

int main(int argc, char **argv) {
    static int8_t input[UP(_INPUT_SIZE)];
    static int32_t logits[UP(_LOGITS_SIZE)];
    const int H = UP(_INPUT_H), W = UP(_INPUT_W), K = UP(_CLASSES);
    const char *image = NULL, *labels = NULL, *dump = NULL;
    char **names = NULL;
    uint8_t *raw, *arena, *rgb;
    double probs[UP(_CLASSES)], scale = (double)UP(_OUTPUT_SCALE_M) / ldexp(1.0, UP(_OUTPUT_SCALE_SHIFT)), mx, sum = 0;
    int w, h, used[UP(_CLASSES)] = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--labels") && i + 1 < argc) labels = argv[++i];
        else if (!strcmp(argv[i], "--dump-input") && i + 1 < argc) dump = argv[++i];
        else image = argv[i];
    }
    if (!image) {
        fprintf(stderr, "usage: %s IMAGE.png [--labels FILE] [--dump-input FILE]\n", argv[0]);
        return 2;
    }
    if (!(rgb = read_png(image, &w, &h))) return 1;
    rgb = fit(rgb, w, h, W, H);
    CAT(PFX, _preprocess_rgb8)(rgb, input);
    free(rgb);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(input, 1, sizeof input, f) != sizeof input) return 1;
        fclose(f);
    }
    raw = malloc(UP(_ARENA_BYTES) + UP(_ARENA_ALIGN));  /* the arena: aligned by hand (C99 has no aligned_alloc) */
    arena = raw + (UP(_ARENA_ALIGN) - (uintptr_t)raw % UP(_ARENA_ALIGN)) % UP(_ARENA_ALIGN);
    if (CAT(PFX, _run)(input, logits, arena) != 0) return 1;
    free(raw);
    /* the probabilities predict prints: softmax of the dequantized logits (float32, as DequantizeLinear) */
    mx = -HUGE_VAL;
    for (int k = 0; k < K; k++) {
        probs[k] = (double)((float)logits[k] * (float)scale);
        if (probs[k] > mx) mx = probs[k];
    }
    for (int k = 0; k < K; k++) sum += (probs[k] = exp(probs[k] - mx));
    if (labels) names = read_labels(labels, K);
    for (int r = 1; r <= 5 && r <= K; r++) {
        int best = -1;
        for (int k = 0; k < K; k++)
            if (!used[k] && (best < 0 || logits[k] > logits[best])) best = k;
        used[best] = 1;
        if (names && names[best]) printf("%d %d %s %.4f\n", r, best, names[best], probs[best] / sum);
        else printf("%d %d class %d %.4f\n", r, best, best, probs[best] / sum);
    }
    return 0;
}
