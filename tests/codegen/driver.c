/* Test driver for an emitted model: reads int8 inputs from argv[1], writes int32 logits to argv[2].
   Build with -DMODEL_HEADER='"NAME.h"' -DPFX=NAME -DUPFX=NAME_UPPER. Every run is checked:
   - the arena is surrounded by guard bytes and the logits by guard words: nothing outside is written;
   - the model runs twice, on an arena filled with two different patterns: it reads nothing it did not write;
   - the input buffer is unchanged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include MODEL_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define RUN CAT(PFX, _run)
#define INPUT_SIZE CAT(UPFX, _INPUT_SIZE)
#define LOGITS_SIZE CAT(UPFX, _LOGITS_SIZE)
#define ARENA_BYTES CAT(UPFX, _ARENA_BYTES)
#define GUARD 256

static uint8_t buf[GUARD + ARENA_BYTES + GUARD] __attribute__((aligned(64)));
static int32_t logits[2][LOGITS_SIZE + GUARD];
static int8_t input[INPUT_SIZE], copy[INPUT_SIZE];

static int guards_ok(int k) {
    for (int i = 0; i < GUARD; i++)
        if (buf[i] != 0xA5 || buf[GUARD + ARENA_BYTES + i] != 0xA5 || logits[k][LOGITS_SIZE + i] != 0x5A5A5A5A)
            return 0;
    return 1;
}

int main(int argc, char **argv) {
    FILE *f, *g;
    if (argc != 3) return 2;
    f = fopen(argv[1], "rb");
    g = fopen(argv[2], "wb");
    if (!f || !g) return 2;
    while (fread(input, 1, sizeof input, f) == sizeof input) {
        memcpy(copy, input, sizeof input);
        for (int k = 0; k < 2; k++) {
            memset(buf, 0xA5, sizeof buf);
            memset(buf + GUARD, k ? 0x00 : 0xFF, ARENA_BYTES);
            for (int i = 0; i < LOGITS_SIZE + GUARD; i++) logits[k][i] = 0x5A5A5A5A;
            if (RUN(input, logits[k], buf + GUARD) != 0) { fprintf(stderr, "run failed\n"); return 3; }
            if (!guards_ok(k)) { fprintf(stderr, "wrote outside the arena or the logits\n"); return 4; }
        }
        if (memcmp(logits[0], logits[1], sizeof(int32_t) * LOGITS_SIZE) != 0) {
            fprintf(stderr, "output depends on the arena's previous contents\n");
            return 5;
        }
        if (memcmp(copy, input, sizeof input) != 0) { fprintf(stderr, "input modified\n"); return 6; }
        fwrite(logits[0], sizeof(int32_t), LOGITS_SIZE, g);
    }
    fclose(f);
    fclose(g);
    return 0;
}
