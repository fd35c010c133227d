"""The C text every emitted model shares: integer helpers, and the plain convolution loop (kept for weights
with a non-zero zero point; the fast product kernels are in :mod:`.gemm`).

Written so that C has no undefined behaviour on any input: sums and products wrap in
unsigned arithmetic (exactly what ONNX Runtime's int64 and int32 kernels do; the converter
proves the values never get there), no shift of a negative number (floor division by a
power of two shifts ``a`` or ``~a``, whichever is non-negative, as unsigned), no shift by 64 or
more, no division by zero or of INT64_MIN by -1. Only ``<stdint.h>`` and ``<string.h>``.
"""

from __future__ import annotations

# The wrapping arithmetic and ONNX's integer Div/Mod, written once for int64 and once more, by substitution, for
# int32 (the fused element-wise steps whose every operand and intermediate the value-range analysis, ranges.py,
# proves inside int32: there the int32 forms give the int64 results exactly)
_ARITH = r"""
static inline {T} ev_add{S}({T} a, {T} b) { return ({T})(({U})a + ({U})b); }
static inline {T} ev_sub{S}({T} a, {T} b) { return ({T})(({U})a - ({U})b); }
static inline {T} ev_mul{S}({T} a, {T} b) { return ({T})(({U})a * ({U})b); }
static inline {T} ev_neg{S}({T} a) { return ({T})(({U})0 - ({U})a); }
static inline {T} ev_abs{S}({T} a) { return a < 0 ? ev_neg{S}(a) : a; }
static inline {T} ev_max{S}({T} a, {T} b) { return a > b ? a : b; }
static inline {T} ev_min{S}({T} a, {T} b) { return a < b ? a : b; }
/* ONNX integer Div: truncation toward zero (C's own, guarded where C is undefined) */
static inline {T} ev_div{S}({T} a, {T} b) { return b == 0 ? 0 : (b == -1 ? ev_neg{S}(a) : a / b); }
/* ONNX Mod with fmod=0: the result takes the sign of the divisor */
static inline {T} ev_mod{S}({T} a, {T} b) {
    {T} r;
    if (b == 0 || b == -1) return 0;
    r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
/* ONNX Mod with fmod=1: the sign of the dividend (C's %) */
static inline {T} ev_fmod{S}({T} a, {T} b) { return (b == 0 || b == -1) ? 0 : a % b; }
/* Mod by a divisor known positive */
static inline {T} ev_modp{S}({T} a, {T} b) { {T} r = a % b; return r < 0 ? r + b : r; }
/* floor(a / b) for b > 0 (the lowering's Div(a - Mod(a, b), b)): the truncated quotient, one less where the
   remainder is negative (one division instruction gives both; q - 1 cannot wrap: b = 1 leaves no remainder) */
static inline {T} ev_floordiv{S}({T} a, {T} b) { {T} q = a / b; return a % b < 0 ? q - 1 : q; }
"""


def _arith(t: str, u: str, suffix: str) -> str:
    return _ARITH.replace("{T}", t).replace("{U}", u).replace("{S}", suffix)


PRELUDE = r"""
/* GCC fills 256-bit vectors by default even for a target with 512-bit ones (-march=native on AVX-512): the int64
   requantization loops get twice the lanes in 512-bit registers. The same integer operations: the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__) && !defined(EV_PORTABLE)
#pragma GCC target("prefer-vector-width=512")
#endif
""" + _arith("int64_t", "uint64_t", "") + _arith("int32_t", "uint32_t", "32") + r"""
/* floor(a / 2**k), 0 <= k <= 63, without shifting a negative number: for a < 0, ~a = -a - 1 >= 0 and
   floor(a / 2**k) = ~(~a >> k); s (all ones for a < 0, else 0) applies ~ by xor. Unlike a form that subtracts
   2**63 >> k, GCC vectorizes it with a per-element k too (a per-channel shift table) */
static inline int64_t ev_floor_shr(int64_t a, int64_t k) {
    uint64_t s = (uint64_t)0 - (uint64_t)(a < 0);
    return (int64_t)((((uint64_t)a ^ s) >> k) ^ s);
}
/* the same on int32: -1 or 0 from k = 32 on */
static inline int32_t ev_floor_shr32(int32_t a, int64_t k) {
    uint32_t s = (uint32_t)0 - (uint32_t)(a < 0);
    return (int32_t)((k > 31 ? 0 : ((uint32_t)a ^ s) >> k) ^ s);
}
/* the exact product of two int32 values (|a * b| <= 2**62): GCC vectorizes it as vpmuldq / smull */
static inline int64_t ev_mulw(int32_t a, int32_t b) { return (int64_t)a * (int64_t)b; }
static inline uint64_t ev_shr_u64(uint64_t a, uint64_t s) { return s >= 64 ? 0 : a >> s; }
static inline uint64_t ev_shl_u64(uint64_t a, uint64_t s) { return s >= 64 ? 0 : a << s; }
/* floor(n / d) for 0 < d whose quotient is proven below 2**B (1 <= B <= 32), by restoring binary long division:
   before step b, n < d * 2**(b + 1); (n >> b) >= d exactly when n >= d * 2**b, and then d << b <= n does not
   wrap. B compare-and-subtract steps, no division instruction: GCC vectorizes a loop of them (B a constant) */
static inline uint32_t ev_udiv_bits(uint32_t n, uint32_t d, int B) {
    uint32_t q = 0;
    for (int b = B - 1; b >= 0; b--) {
        uint32_t ge = (n >> b) >= d;
        n -= ge ? d << b : 0;
        q |= ge << b;
    }
    return q;
}
/* the high 64 bits of a * b (Hacker's Delight 8-2, 32-bit halves: no carry is lost, every partial sum fits 64 bits) */
static inline uint64_t ev_mulhi_u64(uint64_t a, uint64_t b) {
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t t = a1 * b0 + ((a0 * b0) >> 32);
    uint64_t w1 = (t & 0xFFFFFFFFu) + a0 * b1;
    return a1 * b1 + (t >> 32) + (w1 >> 32);
}
/* floor(n / d) for d >= 1 by a divisor invariant over a loop, m = (2**64 - 1) / d computed once: u = n or ~n
   (whichever is non-negative, < 2**63; floor(n / d) = ~floor(~n / d) for n < 0, applied by xor), then
   q = mulhi(u, m) is floor(u / d) or one less (2**64 / d - m < 2 and u < 2**63: u * m / 2**64 > u / d - 1;
   m <= 2**64 / d: q <= u / d), and one compare adds the missing one. No division instruction: it vectorizes */
static inline int64_t ev_floordiv_inv(int64_t n, uint64_t d, uint64_t m) {
    uint64_t s = (uint64_t)0 - (uint64_t)(n < 0), u = (uint64_t)n ^ s, q = ev_mulhi_u64(u, m);
    q += (uint64_t)(u - q * d >= d);
    return (int64_t)(q ^ s);
}
/* the same on uint64 values held in int32 (an element-wise step whose ranges allow it): x in [0, 2**31) and the
   result proven there; the amount s as the int32 it was cast from (a negative one is an amount >= 2**63, and
   (uint32_t)s > 31 exactly when the uint64 amount is >= 32). From 32 on the result is 0, as ev_shr_u64's is:
   x has no bits there, and a left shift of a non-zero x that far would leave the proven range. */
static inline int32_t ev_shr32u(int32_t x, int32_t s) { return (uint32_t)s > 31 ? 0 : (int32_t)((uint32_t)x >> s); }
static inline int32_t ev_shl32u(int32_t x, int32_t s) { return (uint32_t)s > 31 ? 0 : (int32_t)((uint32_t)x << s); }
"""

CONV = r"""
/* ONNX ConvInteger: y[n][o] = sum over c, i, j of (w[o][c][i][j] - ZW) * (x[n][g*cg + c][..] - ZX) (dilations DH, DW;
   a padded position contributes 0, as x's zero point does),
   int32 accumulation wrapping like ONNX Runtime's (uint32 arithmetic: no signed overflow). Each product of an
   (u)int8 less its zero point fits in 16 bits (|.| <= 255), written as int16 x int16 so compilers use
   widening multiplies. */
static void ev_conv_{X}(const {XT} *restrict x, const int8_t *restrict w, int32_t *restrict y, int N, int C, int H, int W, int O, int G,
                        int KH, int KW, int SH, int SW, int PT, int PL, int HO, int WO, int DH, int DW, int ZX, int ZW) {
    int cg = C / G, og = O / G;
    for (int n = 0; n < N; n++) {
        for (int o = 0; o < O; o++) {
            uint32_t *acc = (uint32_t *)(y + ((long)n * O + o) * HO * WO);
            int g = o / og;
            memset(acc, 0, sizeof(uint32_t) * (size_t)HO * (size_t)WO);
            for (int c = 0; c < cg; c++) {
                const {XT} *xc = x + ((long)n * C + (long)g * cg + c) * H * W;
                for (int i = 0; i < KH; i++) {
                    for (int j = 0; j < KW; j++) {
                        int16_t wv = (int16_t)(w[(((long)o * cg + c) * KH + i) * KW + j] - ZW);
                        int jj = j * DW - PL, lo = 0, hi = WO;  /* ox with 0 <= ox*SW + jj < W */
                        if (wv == 0) continue;
                        while (lo < WO && lo * SW + jj < 0) lo++;
                        while (hi > lo && (hi - 1) * SW + jj >= W) hi--;
                        for (int oy = 0; oy < HO; oy++) {
                            int iy = oy * SH + i * DH - PT;
                            const {XT} *row;
                            uint32_t *restrict dst = acc + (long)oy * WO;
                            if (iy < 0 || iy >= H) continue;
                            row = xc + (long)iy * W;  /* indices below stay in [0, W): no pointer outside x */
                            if (SW == 1) {
                                for (int ox = lo; ox < hi; ox++)
                                    dst[ox] += (uint32_t)(int32_t)(wv * (int16_t)(row[ox + jj] - ZX));
                            } else {
                                for (int ox = lo; ox < hi; ox++)
                                    dst[ox] += (uint32_t)(int32_t)(wv * (int16_t)(row[(long)ox * SW + jj] - ZX));
                            }
                        }
                    }
                }
            }
        }
    }
}
"""

SHORT = {"int8_t": "s8", "uint8_t": "u8"}


def conv_kernel(xt: str) -> str:
    return CONV.replace("{X}", SHORT[xt]).replace("{XT}", xt)

