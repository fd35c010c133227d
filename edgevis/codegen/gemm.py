"""Fast int8 products: convolutions and matmuls as a register-blocked GEMM, and a direct depthwise kernel.

Every ``ConvInteger`` and ``MatMulInteger`` is ``y[o][p] = sum_k (w[o][k] - ZW) * (x[p][k] - ZX)`` with
int32 accumulation that wraps. Sums of integers modulo 2**32 do not depend on their order, so any
blocking gives the reference's bits: the kernels below only reorder the sum.

* **GEMM** (pointwise, dense and grouped convolutions; matmuls with a computed right operand): ``ev_gemm``
  multiplies a row block of ``w`` (``MR`` = 4 rows, K contiguous) with ``NR`` = 3 rows of ``x`` (pixels, K
  contiguous) in twelve scalar accumulators; GCC -O3 vectorizes its k loop into multiply-adds. Constant weights
  are packed at generation time: rows padded to a multiple of ``MR``, K to a multiple of ``KALIGN``, with zeros (a zero
  weight adds nothing). The ``x`` side is packed at run time into an arena scratch of ``NB`` pixels at a
  time: im2col for a window, a transposition for a 1 x 1 convolution. With constant weights
  (``ev_gemm_u8``) ``x`` is packed as uint8, the activation plus a bias (128 for int8, 0 for uint8; a
  padded position holds the zero point plus the bias), and a per-row correction
  ``(zero point + bias) * sum_k w`` computed at generation time takes the bias and the zero point back out
  modulo 2**32: uint8 x int8 sums of four are ``vpdpbusd`` on AVX-512 VNNI / AVX-VNNI (about 1.5x the
  int16 multiply-adds). A computed matmul operand (``ev_gemm_s16``) is packed as int16 less its zero point
  (``vpmaddwd`` / ``vpdpwssd`` on x86, ``smlal`` on aarch64).
* **Constant-weight matmuls** (``ev_mm_u8`` / ``ev_mm_vnni``): the weights packed 16 output columns x 4 k per
  64 bytes, four biased uint8 activations of a row broadcast against them (see MMV below): no horizontal sums.
* **Depthwise** (one input channel per output): one kernel per geometry, every size, stride, pad and
  zero point a compile-time constant. Each input channel is copied once into zero-bordered int32
  planes of ``x - ZX`` in the arena, rows and columns split by stride phase; every tap then reads
  contiguous columns with no border test, the taps are written out (one expression per output, its
  sum in a register), and small maps run as one flat loop per channel (``dw_kernel``).

Written by hand: no C library does bit-exact int8 products with ONNX zero points, C99 only, no malloc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .model import IntGraph, Node

MR, NR, KALIGN = 4, 3, 16
SCRATCH_BYTES = 48 * 1024  # the x block a GEMM packs at a time: L1/L2-sized


def round_up(n: int, m: int) -> int:
    return (n + m - 1) // m * m


@dataclass(frozen=True)
class Gemm:
    """How one product runs: ``rows`` (w side), ``cols`` (x side, blocked by ``nb``), K padded to ``kp``."""

    rows: int
    cols: int
    k: int
    kp: int
    nb: int  # columns packed at a time (a multiple of NR)
    w_scratch: int = 0  # bytes of a run-time packed w side (a dynamic matmul operand), 0 when constant
    t_scratch: int = 0  # bytes after the x block: one unpacked 16-column weight block (ev_mm_u8's T)

    @property
    def scratch(self) -> int:
        return self.w_scratch + 2 * self.nb * self.kp + self.t_scratch


def gemm_layout(rows: int, cols: int, k: int, dynamic_w: bool = False) -> Gemm:
    kp = round_up(max(k, 1), KALIGN)
    nb = min(round_up(cols, NR), max(NR, SCRATCH_BYTES // (2 * kp) // NR * NR))
    # a dynamic w side: packed as MR-row blocks (ev_pack), or 16 columns at a time on AVX-512 VNNI (ev_packb16)
    return Gemm(rows, cols, k, kp, nb, 2 * round_up(rows, 16) * kp if dynamic_w else 0)


def pack_rows(w: np.ndarray, rows: int, k: int, dtype: type = np.int8) -> np.ndarray:
    """``w`` (rows x k) padded with zeros to a multiple of MR rows and KALIGN columns, flat."""
    out = np.zeros((round_up(rows, MR), round_up(max(k, 1), KALIGN)), dtype)
    out[:rows, :k] = np.asarray(w).reshape(rows, k)
    return out.reshape(-1)


GEMM = r"""
/* {DOC}
   w: O rounded up to 4 rows of KP; x: P rounded up to 3 rows of KP; KP a multiple of 16. The 4 x 3 block of
   scalar sums is what GCC -O3 vectorizes into widening multiply-adds over k. */
static void ev_gemm_{NAME}(const {WT} *restrict w, const {XT} *restrict x,{CORR_ARG} int32_t *restrict y, int O, int P,
                       int KP, long so, long sp) {
    uint32_t *restrict yu = (uint32_t *)y;
    for (int o = 0; o < O; o += 4) {
        const {WT} *w0 = w + (long)o * KP, *w1 = w0 + KP, *w2 = w1 + KP, *w3 = w2 + KP;
        for (int p = 0; p < P; p += 3) {
            const {XT} *x0 = x + (long)p * KP, *x1 = x0 + KP, *x2 = x1 + KP;
            uint32_t s00 = 0, s01 = 0, s02 = 0, s10 = 0, s11 = 0, s12 = 0, s20 = 0, s21 = 0, s22 = 0, s30 = 0,
                     s31 = 0, s32 = 0;
            for (int k = 0; k < KP; k++) {
                int32_t a0 = w0[k], a1 = w1[k], a2 = w2[k], a3 = w3[k], b0 = x0[k], b1 = x1[k], b2 = x2[k];
                s00 += (uint32_t)(a0 * b0); s01 += (uint32_t)(a0 * b1); s02 += (uint32_t)(a0 * b2);
                s10 += (uint32_t)(a1 * b0); s11 += (uint32_t)(a1 * b1); s12 += (uint32_t)(a1 * b2);
                s20 += (uint32_t)(a2 * b0); s21 += (uint32_t)(a2 * b1); s22 += (uint32_t)(a2 * b2);
                s30 += (uint32_t)(a3 * b0); s31 += (uint32_t)(a3 * b1); s32 += (uint32_t)(a3 * b2);
            }
            {
                uint32_t r[4][3] = {{s00, s01, s02}, {s10, s11, s12}, {s20, s21, s22}, {s30, s31, s32}};
                for (int i = 0; i < 4 && o + i < O; i++)
                    for (int j = 0; j < 3 && p + j < P; j++)
                        yu[(long)(o + i) * so + (long)(p + j) * sp] = r[i][j]{CORR};
            }
        }
    }
}
"""
# the int16 form (a computed matmul operand, packed less its zero point) and the uint8 form (constant weights):
# one blocked loop, two operand types; the uint8 form subtracts the per-row correction (u8_correction)
GEMM_S16_DOC = ("y[o*so + p*sp] = sum over k < KP of w[o][k] * x[p][k] for o < O, p < P (int32, wrapping as "
                "uint32), x int16.")
GEMM_U8_DOC = ("The constant-weight GEMM on uint8 activations: y[o*so + p*sp] = sum over k < KP of w[o][k] * x[p][k] "
               "- corr[o]\n   (int32, wrapping as uint32), where x = the activation plus a bias (128 for int8, 0 for "
               "uint8) and\n   corr[o] = (zero point + bias) * sum_k w[o][k] (mod 2**32, computed at generation time): "
               "modulo 2**32 the\n   reference's sum_k w * (x - ZX) exactly. uint8 x int8 products summed four at a "
               "time are what GCC -O3 turns into\n   vpdpbusd (AVX-512 VNNI / AVX-VNNI), a widening multiply-add "
               "elsewhere.")


def _gemm(name: str, wt: str, xt: str, doc: str, corrected: bool) -> str:
    subs = {"{DOC}": doc, "{NAME}": name, "{WT}": wt, "{XT}": xt,
            "{CORR_ARG}": " const int32_t *restrict corr," if corrected else "",
            "{CORR}": " - (uint32_t)corr[o + i]" if corrected else ""}
    return re.sub("|".join(re.escape(k) for k in subs), lambda m: subs[m.group(0)], GEMM)

PACK = r"""
/* N rows of (a - Z) as int16, KP wide: row r, column k from a[r*RS + k*KS] (k < K; 0 beyond); rows N..NR zero */
static void ev_pack_{X}(const {XT} *restrict a, long RS, long KS, int N, int NR, int K, int KP, int Z, int16_t *restrict out) {
    for (int r = 0; r < NR; r++) {
        int16_t *o = out + (long)r * KP;
        int k = 0;
        if (r < N) {
            const {XT} *ar = a + (long)r * RS;
            if (KS == 1)
                for (; k < K; k++) o[k] = (int16_t)(ar[k] - Z);
            else
                for (; k < K; k++) o[k] = (int16_t)(ar[(long)k * KS] - Z);
        }
        for (; k < KP; k++) o[k] = 0;
    }
}
"""



PACK_U8 = r"""
static inline uint8_t ev_u_{X}({XT} v) { return {TOU}; }  /* the activation plus its bias, as uint8 */
/* N rows of the biased activation as uint8, KP wide: row r, column k from a[r*RS + k*KS] (k < K; 0 beyond, where
   the weights are 0); rows N..NR zero */
static void ev_packu_{X}(const {XT} *restrict a, long RS, long KS, int N, int NR, int K, int KP, uint8_t *restrict out) {
    for (int r = 0; r < NR; r++) {
        uint8_t *o = out + (long)r * KP;
        int k = 0;
        if (r < N) {
            const {XT} *ar = a + (long)r * RS;
            if (KS == 1)
                for (; k < K; k++) o[k] = ev_u_{X}(ar[k]);
            else
                for (; k < K; k++) o[k] = ev_u_{X}(ar[(long)k * KS]);
        }
        for (; k < KP; k++) o[k] = 0;
    }
}
/* im2col of output pixels P0 .. P0+N-1 as biased uint8 (rows N..NR zero): PADU (the zero point plus the bias: a
   term the correction takes back to 0) where the window leaves the image */
static void ev_im2colu_{X}(const {XT} *restrict x, int C, int H, int W, int KH, int KW, int SH, int SW, int PT, int PL,
                          int WO, int DH, int DW, int PADU, long P0, int N, int NR, int KP, uint8_t *restrict out) {
    for (int r = 0; r < NR; r++) {
        uint8_t *o = out + (long)r * KP;
        int k = 0;
        if (r < N) {
            int oy = (int)((P0 + r) / WO), ox = (int)((P0 + r) % WO);
            for (int c = 0; c < C; c++)
                for (int i = 0; i < KH; i++) {
                    int iy = oy * SH + i * DH - PT;
                    const {XT} *row = x + ((long)c * H + (iy < 0 ? 0 : (iy >= H ? H - 1 : iy))) * W;
                    for (int j = 0; j < KW; j++, k++) {
                        int ix = ox * SW + j * DW - PL;
                        o[k] = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? (uint8_t)PADU : ev_u_{X}(row[ix]);
                    }
                }
        }
        for (; k < KP; k++) o[k] = 0;
    }
}
"""

U8_BIAS = {"int8_t": 128, "uint8_t": 0}


def gemm_u8_kernel() -> str:
    return _gemm("u8", "int8_t", "uint8_t", GEMM_U8_DOC, corrected=True)


def packu_kernels(xt: str) -> dict[str, str]:
    """The uint8 packing's C, by kernel key: the bias helper, the row packing, the im2col (each emitted only where
    used: an unused static function is a warning, an error under -Werror)."""
    tou = "(uint8_t)((uint8_t)v ^ 0x80u)" if xt == "int8_t" else "v"
    text = PACK_U8.replace("{X}", XSHORT[xt]).replace("{XT}", xt).replace("{TOU}", tou)
    rows, im2col = text.index("/* N rows of the biased"), text.index("/* im2col of output pixels")
    return {f"u8_{xt}": text[:rows], f"packu_{xt}": text[rows:im2col], f"im2colu_{xt}": text[im2col:]}


def u8_correction(w_rows: np.ndarray, zero_point: int, xt: str) -> np.ndarray:
    """``(zero_point + bias) * sum_k w[o][k]`` per row of ``w_rows`` (rows x k), modulo 2**32 as int32."""
    v = (zero_point + U8_BIAS[xt]) * np.asarray(w_rows, np.int64).sum(axis=-1)
    return ((v + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32).reshape(-1)


@dataclass(frozen=True)
class ConvPlan:
    kind: str  # "dw" (direct depthwise), "gemm" (im2col or 1 x 1 packing + GEMM), "generic" (the plain loop)
    gemm: Gemm | None = None
    pointwise: bool = False  # 1 x 1, stride 1, no padding: the x side is a transposition, no im2col
    dw_geometry: tuple[int, ...] = ()  # depthwise: its sizes in DW_PARAMS order (one kernel per geometry)

    @property
    def scratch(self) -> int:
        """Arena bytes the kernel uses while it runs (packed GEMM operands, the depthwise padded plane)."""
        if self.gemm is not None:
            return self.gemm.scratch
        return dw_plane_bytes(self.dw_geometry) if self.dw_geometry else 0


def conv_plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...], attrs: dict, zw: int, zx: int = 0) -> ConvPlan:
    """The kernel of one ConvInteger (input N x C x H x W, weights O x C/G x KH x KW; zero points zx, zw)."""
    N, C, H, W = x_shape
    O, cg, KH, KW = w_shape
    G = int(attrs.get("group", 1))
    st = list(attrs.get("strides", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    dil = list(attrs.get("dilations", [1, 1]))
    ho = (H + pads[0] + pads[2] - dil[0] * (KH - 1) - 1) // st[0] + 1
    wo = (W + pads[1] + pads[3] - dil[1] * (KW - 1) - 1) // st[1] + 1
    if cg == 1 and G == C and O % C == 0:
        return ConvPlan("dw", dw_geometry=(C, H, W, O, KH, KW, st[0], st[1], pads[0], pads[1], ho, wo, dil[0], dil[1],
                                           zx, zw))
    if zw != 0:  # weights less a non-zero zero point may leave int8: the plain loop
        return ConvPlan("generic")
    pw = KH == KW == 1 and st == [1, 1] and not any(pads)
    return ConvPlan("gemm", gemm_layout(O // G, ho * wo, cg * KH * KW), pw)


def scalar_zero_point(g: IntGraph, n: Node, i: int) -> int | None:
    """Input ``i`` of ``n`` as a constant scalar zero point (0 where absent); None when it is not one."""
    z = n.inputs[i] if len(n.inputs) > i else ""
    if not z:
        return 0
    v = g.tensors[z].value
    return None if v is None or np.asarray(v).size != 1 else int(np.asarray(v).reshape(-1)[0])


def product_plan(g: IntGraph, n: Node) -> ConvPlan:
    """The kernel of a ConvInteger or MatMulInteger node (a matmul's GEMM: rows = N of B, columns = M of A)."""
    x, w = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]]
    zw = scalar_zero_point(g, n, 3)
    if n.op == "ConvInteger":
        zx = scalar_zero_point(g, n, 2)
        if zw is None or zx is None or len(x.shape) != 4 or len(w.shape) != 4:
            return ConvPlan("generic")
        return conv_plan(x.shape, w.shape, n.attrs, zw, zx)
    if len(x.shape) < 2 or len(w.shape) < 2:
        return ConvPlan("generic")
    M, K = x.shape[-2:]
    N = w.shape[-1]
    const = w.value is not None and w.ctype == "int8_t" and zw == 0 and int(np.prod(w.shape[:-2], dtype=np.int64)) == 1
    gm = gemm_layout(N, M, K, dynamic_w=not const)
    return ConvPlan("gemm", replace(gm, t_scratch=16 * gm.kp) if const else gm)


WSHORT = {"int8_t": "s8", "int16_t": "s16"}
XSHORT = {"int8_t": "s8", "uint8_t": "u8", "int16_t": "s16"}


def gemm_kernel(wt: str) -> str:
    return _gemm(WSHORT[wt], wt, "int16_t", GEMM_S16_DOC, corrected=False)


def pack_kernels(xt: str) -> str:
    return PACK.replace("{X}", XSHORT[xt]).replace("{XT}", xt)


DW_PARAMS = ("C", "H", "W", "O", "KH", "KW", "SH", "SW", "PT", "PL", "HO", "WO", "DH", "DW", "ZX", "ZW")

DW_FLAT_BELOW = 32  # output maps narrower than this are computed as one flat loop per channel (see dw_kernel)

DW_PLANE = r"""
        if (o % OG == 0) {  /* a new input channel: its zero-bordered plane of (x - ZX), split by stride phase */
            const {XT} *xc = x + (long)(o / OG) * H * W;
            for (int a = 0; a < SH; a++)
                for (int b = 0; b < SW; b++)
                    for (int r = 0; r < HQ; r++) {
                        int32_t *dst = P + ((long)(a * SW + b) * HQ + r) * WQ;
                        int iy = r * SH + a - PT;
                        /* the columns k inside the image: lo <= k < hi (k*SW + b - PL in [0, W)) */
                        int lo = PL - b <= 0 ? 0 : (PL - b + SW - 1) / SW;
                        int hi = W - 1 + PL - b < 0 ? 0 : (W - 1 + PL - b) / SW + 1, k = 0;
                        if (hi > WQ) hi = WQ;
                        if (iy < 0 || iy >= H) hi = 0;
                        if (lo > hi) lo = hi;
                        for (; k < lo; k++) dst[k] = 0;
                        {
                            const {XT} *row = xc + (long)(iy < 0 ? 0 : iy) * W + b - PL;
                            for (; k < hi; k++) dst[k] = (int32_t)row[(long)k * SW] - ZX;
                        }
                        for (; k < WQ; k++) dst[k] = 0;
                    }
        }"""


def _dw_dims(g: dict[str, int]) -> tuple[int, int, bool]:
    """The phase planes' rows and columns (HQ, WQ) of a geometry, and whether it runs flat."""
    hp = (g["HO"] - 1) * g["SH"] + (g["KH"] - 1) * g["DH"] + 1
    wp = (g["WO"] - 1) * g["SW"] + (g["KW"] - 1) * g["DW"] + 1
    return -(-hp // g["SH"]), -(-wp // g["SW"]), g["WO"] < DW_FLAT_BELOW


def dw_plane_bytes(geometry: tuple[int, ...]) -> int:
    """Arena bytes of the depthwise kernel's scratch for a geometry in ``DW_PARAMS`` order: the phase planes
    (int32), and for a flat kernel its int32 rows of WQ outputs."""
    g = dict(zip(DW_PARAMS, geometry))
    hq, wq, flat = _dw_dims(g)
    return 4 * g["SH"] * g["SW"] * hq * wq + (4 * g["HO"] * wq if flat else 0)


def dw_kernel(xt: str, fn: str, geometry: tuple[int, ...]) -> str:
    """The depthwise ConvInteger of one geometry (``DW_PARAMS`` order) as C.

    Per input channel, the padded input (a padded position holds 0 = the zero point less itself) is copied once
    into SH x SW phase planes of (x - ZX) as int32 (int16 planes cost GCC widening multiplies and shuffles per
    tap: 1.36x the time): padded row ``r*SH + a``, column ``k*SW + b`` at plane ``(a, b)``, row ``r``, column
    ``k`` (HQ x WQ each). Tap ``(i, j)`` of output ``(oy, ox)`` is then plane
    ``((i*DH) % SH, (j*DW) % SW)`` at row ``oy + (i*DH) / SH``, column ``ox + (j*DW) / SW``: every tap reads
    contiguous columns, with no border test and no gather, also at stride 2. The taps are written out, their
    weights held in locals, so each output is one expression over the taps (the accumulator stays in a
    register; GCC vectorizes the loop over outputs). A map narrower than
    ``DW_FLAT_BELOW`` is computed as one flat loop over ``f = oy*WQ + ox`` (tap offsets ``(i*DH/SH)*WQ + ...``
    are constant; the columns ox >= WO it also computes read initialized plane values and are dropped), its
    rows then copied out: long vectors where rows are short. Products are int32 (|w - ZW| <= 255,
    |x - ZX| <= 2**16), their sum wraps as uint32: the reference's int32 sum, in any order."""
    g = dict(zip(DW_PARAMS, geometry))
    hq, wq, flat = _dw_dims(g)
    KH, KW, SH, SW, DH, DW = (g[k] for k in ("KH", "KW", "SH", "SW", "DH", "DW"))
    consts = ", ".join(f"{k} = {v}" for k, v in zip(DW_PARAMS, geometry))
    taps = [(i, j, (i * DH) % SH * SW + (j * DW) % SW, ((i * DH) // SH) * wq + (j * DW) // SW)
            for i in range(KH) for j in range(KW)]
    wdecl = "\n".join(f"        const int32_t w{i}_{j} = (int32_t)wo[{i * KW + j}] - ZW;" for i in range(KH)
                      for j in range(KW))
    base = "0" if flat else "(long)oy * WQ"
    qdecl = "\n".join(f"            const int32_t *q{p} = P + (long){p} * HQ * WQ + {base};"
                      for p in sorted({t[2] for t in taps}))
    expr = "\n                    + ".join(f"(uint32_t)(w{i}_{j} * q{p}[f + {off}])" for i, j, p, off in taps)
    if flat:
        body = f"""        {{
{qdecl}
            uint32_t *restrict T = (uint32_t *)(P + PLANE);
            uint32_t *restrict dst = (uint32_t *)(y + (long)o * HO * WO);
            for (int f = 0; f < (HO - 1) * WQ + WO; f++)
                T[f] = {expr};
            for (int oy = 0; oy < HO; oy++)
                for (int ox = 0; ox < WO; ox++) dst[oy * WO + ox] = T[oy * WQ + ox];
        }}"""
    else:
        body = f"""        for (int oy = 0; oy < HO; oy++) {{
{qdecl}
            uint32_t *restrict dst = (uint32_t *)(y + ((long)o * HO + oy) * WO);
            for (int f = 0; f < WO; f++)
                dst[f] = {expr};
        }}"""
    return f"""
/* Depthwise ConvInteger for one geometry (sizes below, compile-time constants): see edgevis/codegen/gemm.py
   dw_kernel. Per input channel, SH x SW phase planes (HQ x WQ int32 each) of the zero-bordered (x - ZX) in the
   arena (P){", then the int32 outputs of one flat loop over oy*WQ + ox" if flat else ""}; each output is the sum
   of its KH x KW taps, int32 products summed as uint32 (wrapping like the reference). */
static void {fn}(const {xt} *restrict x, const int8_t *restrict w, int32_t *restrict y, int32_t *restrict P) {{
    enum {{ {consts} }};
    enum {{ HQ = {hq}, WQ = {wq}, PLANE = SH * SW * HQ * WQ, OG = O / C }};
    for (int o = 0; o < O; o++) {{
        const int8_t *wo = w + (long)o * KH * KW;
{DW_PLANE.replace("{XT}", xt)}
{wdecl}
{body}
    }}
}}
"""


# ---- An x86 path for 1 x 1 convolutions: AVX-512 VNNI intrinsics behind a macro -----------------------------
# The portable ev_gemm_u8 reduces over k for each (row, pixel) pair: GCC turns that into vpdpbusd plus a
# horizontal sum per output, which dominates for the small K of expansion layers (K = 16: 22 GMAC/s on a Xeon).
# Where the compiler targets AVX-512 VNNI (and EV_PORTABLE is not defined) a 1 x 1 convolution instead packs
# 16 pixels x 4 channels of biased uint8 per 64 bytes and multiplies them with 4 broadcast weights per row:
# each vpdpbusd adds 4 products to 16 pixels' sums at once, and the sums are stored as they are, 16 pixels per
# store (NCHW outputs are contiguous in pixels). The same products, the same correction, summed modulo 2**32 in
# another order: the portable path's bits exactly (both are tested against ONNX Runtime). -mgeneral-regs-only,
# other CPUs and other compilers see only the portable path.
VNNI_HEAD = r"""
#if !defined(EV_PORTABLE) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define EV_VNNI512 1
#include <immintrin.h>
#else
#define EV_VNNI512 0
#endif
"""

VNNI_PACK = r"""
#if EV_VNNI512
/* Pixels p < N of a 1 x 1 convolution's input (channel k at x + k*KS, pixels contiguous) as biased uint8 in
   blocks of 16 pixels x 4 channels: S[(v*KP/4 + q)*64 + i*4 + t] = channel 4q + t of pixel 16v + i (0 beyond
   K channels or N pixels) */
static void ev_packv_{X}(const {XT} *restrict x, long KS, int N, int K, int KP, uint8_t *restrict S) {
    const int NV = (N + 15) / 16;
    for (int q = 0; q < KP / 4; q++)
        for (int v = 0; v < NV; v++) {
            uint8_t *d = S + ((long)v * (KP / 4) + q) * 64;
            if (16 * v + 16 <= N && 4 * q + 4 <= K) {
                const {XT} *r0 = x + (long)(4 * q) * KS, *r1 = r0 + KS, *r2 = r1 + KS, *r3 = r2 + KS;
                const __m128i f = _mm_set1_epi8({FLIP});
                __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r0 + 16 * v)), f);
                __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r1 + 16 * v)), f);
                __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r2 + 16 * v)), f);
                __m128i e = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(r3 + 16 * v)), f);
                __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
                __m128i ce0 = _mm_unpacklo_epi8(c, e), ce1 = _mm_unpackhi_epi8(c, e);
                _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(ab0, ce0));
                _mm_storeu_si128((__m128i *)(d + 16), _mm_unpackhi_epi16(ab0, ce0));
                _mm_storeu_si128((__m128i *)(d + 32), _mm_unpacklo_epi16(ab1, ce1));
                _mm_storeu_si128((__m128i *)(d + 48), _mm_unpackhi_epi16(ab1, ce1));
            } else {
                for (int i = 0; i < 16; i++)
                    for (int t = 0; t < 4; t++) {
                        int p = 16 * v + i, k = 4 * q + t;
                        d[i * 4 + t] = (p < N && k < K) ? ev_u_{X}(x[(long)k * KS + p]) : (uint8_t)0;
                    }
            }
        }
}
#endif
"""

VNNI_IM2COL = r"""
#if EV_VNNI512
/* im2col of output pixels P0 .. P0+N-1 as biased uint8 in ev_packv's layout (16 pixels x 4 columns per 64
   bytes; 0 beyond the C*KH*KW columns or N pixels): PADU (the zero point plus the bias) where the window leaves the image */
static void ev_im2colv_{X}(const {XT} *restrict x, int C, int H, int W, int KH, int KW, int SH, int SW, int PT,
                          int PL, int WO, int DH, int DW, int PADU, long P0, int N, int KP, uint8_t *restrict out) {
    const int NR = (N + 15) / 16 * 16;
    for (int r = 0; r < NR; r++) {
        uint8_t *o = out + (long)(r / 16) * KP * 16 + (r % 16) * 4;
        int k = 0;
        if (r < N) {
            int oy = (int)((P0 + r) / WO), ox = (int)((P0 + r) % WO);
            for (int c = 0; c < C; c++)
                for (int i = 0; i < KH; i++) {
                    int iy = oy * SH + i * DH - PT;
                    const {XT} *row = x + ((long)c * H + (iy < 0 ? 0 : (iy >= H ? H - 1 : iy))) * W;
                    for (int j = 0; j < KW; j++, k++) {
                        int ix = ox * SW + j * DW - PL;
                        o[(k >> 2) * 64 + (k & 3)] =
                            (iy < 0 || iy >= H || ix < 0 || ix >= W) ? (uint8_t)PADU : ev_u_{X}(row[ix]);
                    }
                }
        }
        for (; k < KP; k++) o[(k >> 2) * 64 + (k & 3)] = 0;
    }
}
#endif
"""

# The VNNI GEMM, one loop for both operand types (4 output rows x 2 blocks of 16 pixels, the weights broadcast G
# at a time as one int32): uint8 pixels x int8 weights by vpdpbusd less the row's correction (ev_gemm_vnni), or
# int16 x int16 by vpdpwssd (ev_gemm_vnni16, split16.py's merged halves).
VNNI_GEMM_LOOP = r"""
static inline __m512i {BC}(const {WT} *w) { int32_t t; memcpy(&t, w, 4); return _mm512_set1_epi32(t); }
{DOC}
static void {FN}(const {WT} *restrict w, const {ST} *restrict S,{CORR}
                 int32_t *restrict y, int O, int N, int KP, long P) {
    const int NV = (N + 15) / 16, KQ = KP / {G};
    for (int o = 0; o < O; o += 4) {
        const {WT} *w0 = w + (long)o * KP, *w1 = w0 + KP, *w2 = w1 + KP, *w3 = w2 + KP;
        const int rows = O - o < 4 ? O - o : 4;
        for (int v = 0; v < NV; v += 2) {
            const {ST} *xa = S + (long)v * KQ * {SV}, *xb = xa + (long)KQ * {SV};
            const int two = v + 1 < NV;
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            if (two)
                for (int q = 0; q < KQ; q++) {
                    __m512i xv = _mm512_loadu_si512(xa + q * {SV}), xu = _mm512_loadu_si512(xb + q * {SV});
                    __m512i c0 = {BC}(w0 + {G} * q), c1 = {BC}(w1 + {G} * q), c2 = {BC}(w2 + {G} * q),
                            c3 = {BC}(w3 + {G} * q);
                    a0 = {DP}(a0, xv, c0); b0 = {DP}(b0, xu, c0);
                    a1 = {DP}(a1, xv, c1); b1 = {DP}(b1, xu, c1);
                    a2 = {DP}(a2, xv, c2); b2 = {DP}(b2, xu, c2);
                    a3 = {DP}(a3, xv, c3); b3 = {DP}(b3, xu, c3);
                }
            else
                for (int q = 0; q < KQ; q++) {
                    __m512i xv = _mm512_loadu_si512(xa + q * {SV});
                    a0 = {DP}(a0, xv, {BC}(w0 + {G} * q));
                    a1 = {DP}(a1, xv, {BC}(w1 + {G} * q));
                    a2 = {DP}(a2, xv, {BC}(w2 + {G} * q));
                    a3 = {DP}(a3, xv, {BC}(w3 + {G} * q));
                }
            {
                __m512i acc[2][4] = {{a0, a1, a2, a3}, {b0, b1, b2, b3}};
                for (int h = 0; h < 1 + two; h++) {
                    int p = 16 * (v + h), left = N - p;
                    __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
                    for (int i = 0; i < rows; i++)
                        _mm512_mask_storeu_epi32(y + (long)(o + i) * P + p, m,
                                                 {OUT});
                }
            }
        }
    }
}
"""


def _vnni_gemm(fn: str, doc: str, wt: str, st: str, group: int, step: int, dp: str, corrected: bool) -> str:
    subs = {"{FN}": fn, "{DOC}": doc, "{WT}": wt, "{ST}": st, "{G}": str(group), "{SV}": str(step), "{DP}": dp,
            "{BC}": f"ev_bcast{group}", "{CORR}": " const int32_t *restrict corr," if corrected else "",
            "{OUT}": "_mm512_sub_epi32(acc[h][i], _mm512_set1_epi32(corr[o + i]))" if corrected else "acc[h][i]"}
    out = VNNI_GEMM_LOOP
    for k, v in subs.items():
        out = out.replace(k, v)
    return out


VNNI_GEMM = "\n#if EV_VNNI512" + _vnni_gemm(
    "ev_gemm_vnni",
    "/* y[o*P + p] = sum over k of w[o][k] * S(p, k) - corr[o] for o < O, p < N (int32, wrapping): S packed by\n"
    "   ev_packv (16 pixels x 4 channels per 64 bytes), w as for ev_gemm_u8 (O rounded up to 4 rows of KP) */",
    "int8_t", "uint8_t", 4, 64, "_mm512_dpbusd_epi32", True) + "#endif\n"


def vnni_pw_kernels(xt: str, pointwise: bool = True) -> dict[str, str]:
    """The AVX-512 VNNI uint8 path's C by kernel key (each inside ``#if EV_VNNI512``; see above): the packing of
    a 1 x 1 convolution's input, or the im2col of a windowed one, and the GEMM."""
    flip = "(char)0x80" if xt == "int8_t" else "0"
    if pointwise:
        pack = {f"packv_{xt}": VNNI_PACK.replace("{X}", XSHORT[xt]).replace("{XT}", xt).replace("{FLIP}", flip)}
    else:
        pack = {f"im2colv_{xt}": VNNI_IM2COL.replace("{X}", XSHORT[xt]).replace("{XT}", xt)}
    return {"vnni_head": VNNI_HEAD, **pack, "gemm_vnni": VNNI_GEMM}


def vnni_block(gm: Gemm) -> int:
    """Pixels the VNNI path packs at a time into the GEMM's scratch (a multiple of 32); 0 where too few fit."""
    return min(round_up(gm.cols, 32), gm.scratch // gm.kp // 32 * 32)


# The int16 form (a 1 x 1 convolution of a 16-bit activation, split16.py): 16 pixels x 2 channels per 64 bytes,
# a pair of int16 weights broadcast per row, vpdpwssd (2 products per lane and instruction).
VNNI16 = r"""
#if EV_VNNI512
/* Pixels p < N of a 1 x 1 convolution's int16 input (channel k at x + k*KS, pixels contiguous) in blocks of 16
   pixels x 2 channels: S[(v*KP/2 + q)*32 + i*2 + t] = channel 2q + t of pixel 16v + i (0 beyond K or N) */
static void ev_packv2_s16(const int16_t *restrict x, long KS, int N, int K, int KP, int16_t *restrict S) {
    const int NV = (N + 15) / 16;
    for (int q = 0; q < KP / 2; q++)
        for (int v = 0; v < NV; v++) {
            int16_t *d = S + ((long)v * (KP / 2) + q) * 32;
            if (16 * v + 16 <= N && 2 * q + 2 <= K) {
                const int16_t *r0 = x + (long)(2 * q) * KS + 16 * v, *r1 = r0 + KS;
                __m128i a0 = _mm_loadu_si128((const __m128i *)r0), a1 = _mm_loadu_si128((const __m128i *)(r0 + 8));
                __m128i b0 = _mm_loadu_si128((const __m128i *)r1), b1 = _mm_loadu_si128((const __m128i *)(r1 + 8));
                _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi16(a0, b0));
                _mm_storeu_si128((__m128i *)(d + 8), _mm_unpackhi_epi16(a0, b0));
                _mm_storeu_si128((__m128i *)(d + 16), _mm_unpacklo_epi16(a1, b1));
                _mm_storeu_si128((__m128i *)(d + 24), _mm_unpackhi_epi16(a1, b1));
            } else {
                for (int i = 0; i < 16; i++)
                    for (int t = 0; t < 2; t++) {
                        int p = 16 * v + i, k = 2 * q + t;
                        d[i * 2 + t] = (p < N && k < K) ? x[(long)k * KS + p] : (int16_t)0;
                    }
            }
        }
}
""" + _vnni_gemm(
    "ev_gemm_vnni16",
    "/* y[o*P + p] = sum over k of w[o][k] * S(p, k) for o < O, p < N (int32, wrapping): S packed by ev_packv2_s16,\n"
    "   w int16 (O rounded up to 4 rows of KP) */",
    "int16_t", "int16_t", 2, 32, "_mm512_dpwssd_epi32", False) + """#endif
"""


def vnni16_pw_kernels() -> dict[str, str]:
    """The AVX-512 VNNI 1 x 1 path for an int16 input (inside ``#if EV_VNNI512``)."""
    return {"vnni_head": VNNI_HEAD, "vnni16": VNNI16}


# ---- A constant-weight matmul with the activations as the broadcast side ------------------------------------
# ev_gemm_u8 sums each output across a vector at the end (a horizontal sum per output): costly for a
# transformer's matmuls (K = 192 .. 768, every output its own reduction). Here the weights (K x N) are packed by
# column blocks: 16 output columns x 4 k per 64 bytes, W[(j*KP/4 + q)*64 + c*4 + t] = B[4q + t][16j + c] (0 beyond K
# rows or N columns), and four biased uint8 activations of a row are broadcast against them: each vpdpbusd adds 4
# products to 16 outputs of the row, no horizontal sum. The same products and correction as ev_gemm_u8, summed
# modulo 2**32 in another order: the reference's bits. The portable form (ev_mm_u8) reads the same layout (one
# weight array for both paths): it unpacks 16 columns at a time as rows of B transposed for ev_gemm_u8.
MMV = r"""
/* y[m*SY + n] = sum over k < KP of S[m*KP + k] * B[k][n] - corr[n] for m < M, n < N (int32, wrapping as uint32):
   S the biased uint8 rows (ev_packu; M rounded up to 3 rows, the extra ones zero), W the weights packed 16 columns
   x 4 k per 64 bytes (gemm.py, MMV). Each block of 16 columns is unpacked into T as 16 rows of KP (B transposed)
   and multiplied by ev_gemm_u8. */
static void ev_mm_u8(const uint8_t *restrict S, const int8_t *restrict W, const int32_t *restrict corr,
                     int32_t *restrict y, int M, int N, int KP, long SY, int8_t *restrict T) {
    const int NV = (N + 15) / 16, KQ = KP / 4;
    for (int j = 0; j < NV; j++) {
        const int8_t *wj = W + (long)j * KQ * 64;
        for (int q = 0; q < KQ; q++)
            for (int c = 0; c < 16; c++) memcpy(T + (long)c * KP + 4 * q, wj + q * 64 + c * 4, 4);
        ev_gemm_u8(T, S, corr + 16 * j, y + 16 * j, N - 16 * j < 16 ? N - 16 * j : 16, M, KP, 1, SY);
    }
}
"""

MMV_VNNI = r"""
#if EV_VNNI512
/* {DOC}: 4 rows x 4 column vectors (64 outputs) in 16 accumulators; S holds M rounded up to 4 rows (the extra rows
   zero), W {KG} k x 16 columns per 64 bytes */
static void {FN}(const {ST} *restrict S, const {WT} *restrict W, const int32_t *restrict corr, int32_t *restrict y,
                  int M, int N, int KP, long SY) {
    const int NV = (N + 15) / 16, KQ = KP / {KG};
    for (int j = 0; j < NV; j += 4) {
        const int nv = NV - j < 4 ? NV - j : 4;
        const {WT} *w0 = W + (long)j * KQ * {VE};
        __m512i cv[4];
        __mmask16 mk[4];
        for (int v = 0; v < 4; v++) {
            int left = N - 16 * (j + v);
            mk[v] = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u);
            cv[v] = corr ? _mm512_maskz_loadu_epi32(mk[v], corr + 16 * (j + (v < nv ? v : 0)))
                         : _mm512_setzero_si512();  /* corr NULL: nothing to take out */
        }
        for (int m = 0; m < M; m += 4) {
            const {ST} *s0 = S + (long)m * KP, *s1 = s0 + KP, *s2 = s1 + KP, *s3 = s2 + KP;
            const int rows = M - m < 4 ? M - m : 4;
            __m512i acc[4][4];
            for (int r = 0; r < 4; r++)
                for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_si512();
            if (nv == 4) {
                const {WT} *w1 = w0 + (long)KQ * {VE}, *w2 = w1 + (long)KQ * {VE}, *w3 = w2 + (long)KQ * {VE};
                for (int q = 0; q < KQ; q++) {
                    __m512i b0 = _mm512_loadu_si512(w0 + q * {VE}), b1 = _mm512_loadu_si512(w1 + q * {VE}),
                            b2 = _mm512_loadu_si512(w2 + q * {VE}), b3 = _mm512_loadu_si512(w3 + q * {VE});
                    __m512i a = ev_bcast32(s0 + {KG} * q);
                    acc[0][0] = {DP}(acc[0][0], a, b0); acc[0][1] = {DP}(acc[0][1], a, b1);
                    acc[0][2] = {DP}(acc[0][2], a, b2); acc[0][3] = {DP}(acc[0][3], a, b3);
                    a = ev_bcast32(s1 + {KG} * q);
                    acc[1][0] = {DP}(acc[1][0], a, b0); acc[1][1] = {DP}(acc[1][1], a, b1);
                    acc[1][2] = {DP}(acc[1][2], a, b2); acc[1][3] = {DP}(acc[1][3], a, b3);
                    a = ev_bcast32(s2 + {KG} * q);
                    acc[2][0] = {DP}(acc[2][0], a, b0); acc[2][1] = {DP}(acc[2][1], a, b1);
                    acc[2][2] = {DP}(acc[2][2], a, b2); acc[2][3] = {DP}(acc[2][3], a, b3);
                    a = ev_bcast32(s3 + {KG} * q);
                    acc[3][0] = {DP}(acc[3][0], a, b0); acc[3][1] = {DP}(acc[3][1], a, b1);
                    acc[3][2] = {DP}(acc[3][2], a, b2); acc[3][3] = {DP}(acc[3][3], a, b3);
                }
            } else
                for (int v = 0; v < nv; v++) {
                    const {WT} *wv = w0 + (long)v * KQ * {VE};
                    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
                    for (int q = 0; q < KQ; q++) {
                        __m512i b = _mm512_loadu_si512(wv + q * {VE});
                        c0 = {DP}(c0, ev_bcast32(s0 + {KG} * q), b);
                        c1 = {DP}(c1, ev_bcast32(s1 + {KG} * q), b);
                        c2 = {DP}(c2, ev_bcast32(s2 + {KG} * q), b);
                        c3 = {DP}(c3, ev_bcast32(s3 + {KG} * q), b);
                    }
                    acc[0][v] = c0; acc[1][v] = c1; acc[2][v] = c2; acc[3][v] = c3;
                }
            for (int r = 0; r < rows; r++)
                for (int v = 0; v < nv; v++)
                    _mm512_mask_storeu_epi32(y + (long)(m + r) * SY + 16 * (j + v), mk[v],
                                             _mm512_sub_epi32(acc[r][v], cv[v]));
        }
    }
}
#endif
"""


def pack_cols16(b: np.ndarray, k: int, n: int) -> np.ndarray:
    """``b`` (k x n) packed for ev_mm_u8 / ev_mm_vnni: 16 columns x 4 k per 64 bytes (zeros beyond), flat."""
    kp, nv = round_up(max(k, 1), KALIGN), (n + 15) // 16
    full = np.zeros((kp, nv * 16), np.int8)
    full[:k, :n] = np.asarray(b).reshape(k, n)
    # [q][t][j][c] -> [j][q][c][t]
    return full.reshape(kp // 4, 4, nv, 16).transpose(2, 0, 3, 1).reshape(-1).copy()


BCAST32 = r"""
#if EV_VNNI512
static inline __m512i ev_bcast32(const void *p) { int32_t t; memcpy(&t, p, 4); return _mm512_set1_epi32(t); }
#endif
"""


def _mmv(fn: str, st: str, wt: str, doc: str) -> str:
    u8 = st == "uint8_t"
    subs = {"{FN}": fn, "{ST}": st, "{WT}": wt, "{DOC}": doc, "{KG}": "4" if u8 else "2", "{VE}": "64" if u8 else "32",
            "{DP}": "_mm512_dpbusd_epi32" if u8 else "_mm512_dpwssd_epi32"}
    return re.sub("|".join(re.escape(k) for k in subs), lambda m: subs[m.group(0)], MMV_VNNI)


def mm_kernels() -> dict[str, str]:
    """The constant-weight matmul's C by kernel key: the portable ev_mm_u8 (on ev_gemm_u8) and, inside
    ``#if EV_VNNI512``, ev_mm_vnni."""
    return {"gemm_u8": gemm_u8_kernel(), "mm_u8": MMV, "vnni_head": VNNI_HEAD, "bcast32": BCAST32,
            "mm_vnni": _mmv("ev_mm_vnni", "uint8_t", "int8_t", "ev_mm_u8 on AVX-512 VNNI (vpdpbusd)")}


MMV16_PACK = r"""
#if EV_VNNI512
/* B (K x N, row k at b + k*N) less Z as int16 in ev_mm_vnni16's layout: 16 columns x 2 k per 64 bytes,
   W[(j*KP/2 + q)*32 + c*2 + t] = B[2q + t][16j + c] - Z (0 beyond K rows or N columns) */
static void ev_packb16_{X}(const {XT} *restrict b, int K, int N, int KP, int Z, int16_t *restrict W) {
    const int NV = (N + 15) / 16, KQ = KP / 2;
    for (int q = 0; q < KQ; q++) {
        const {XT} *r0 = b + (long)(2 * q) * N, *r1 = r0 + N;
        const int h0 = 2 * q < K, h1 = 2 * q + 1 < K;
        for (int j = 0; j < NV; j++) {
            int16_t *d = W + ((long)j * KQ + q) * 32;
            if (h1 && 16 * j + 16 <= N)
                for (int c = 0; c < 16; c++) {
                    d[2 * c] = (int16_t)(r0[16 * j + c] - Z);
                    d[2 * c + 1] = (int16_t)(r1[16 * j + c] - Z);
                }
            else
                for (int c = 0; c < 16; c++) {
                    int n = 16 * j + c;
                    d[2 * c] = (int16_t)(h0 && n < N ? r0[n] - Z : 0);
                    d[2 * c + 1] = (int16_t)(h1 && n < N ? r1[n] - Z : 0);
                }
        }
    }
}
#endif
"""


def mm16_kernels(bt: str) -> dict[str, str]:
    """A computed matmul operand's path on AVX-512 VNNI (inside ``#if EV_VNNI512``): B packed less its zero point
    as int16 pairs (ev_packb16), A's rows as int16 less theirs (ev_pack), vpdpwssd (ev_mm_vnni16)."""
    return {"vnni_head": VNNI_HEAD, "bcast32": BCAST32,
            f"packb16_{bt}": MMV16_PACK.replace("{X}", XSHORT[bt]).replace("{XT}", bt),
            "mm_vnni16": _mmv("ev_mm_vnni16", "int16_t", "int16_t",
                              "y[m*SY + n] = sum over k < KP of S[m*KP + k] * W(k, n) on AVX-512 VNNI (vpdpwssd)")}
