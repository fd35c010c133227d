"""The C product kernels, each path against ONNX Runtime bit for bit, on one small integer-only file: depthwise
(a channel multiplier, dilation, a column stride), a 1 x 1 convolution (the transposition path), windowed and
grouped convolutions (im2col), a weight zero point (the plain loop), a uint8 input with a zero point, matmuls
with constant (16-column blocks: 7, 13 and 70 columns) and computed right operands (zero points on both sides, a
broadcast batch), a 16-bit activation's int8 / uint8 halves convolved with the same weights (merged into one int16
convolution: depthwise, 1 x 1), depthwise on a map wide enough for the row-by-row form. Shapes leave tails
everywhere (rows not a multiple of 4, columns not of 3, K not of 16). Built at -O3 -march=native (the vectorized
GEMM), -O2, -O1, and -O0 under ASan + UBSan."""


import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevis.codegen import emit_c

from cbuild import build, ort_int8_and_logits, run, save_integer_file

C, H, W = 6, 9, 11


def _model(seed: int = 3) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits: list = []
    nodes: list = []
    outs: list[str] = []

    def const(v, dtype, name):
        inits.append(numpy_helper.from_array(np.asarray(v, dtype), name))
        return name

    def w8(shape, name, lim=128):
        return const(rng.integers(-lim, lim, shape), np.int8, name)

    def conv(name, x, o, k, x_zp="", w_zp="", **attrs):
        cg = C // attrs.get("group", 1)
        ins = [x, w8((o, cg, k, k), name + "_w"), x_zp, w_zp]
        while ins and not ins[-1]:
            ins.pop()
        nodes.append(helper.make_node("ConvInteger", ins, [name], name=name, kernel_shape=[k, k], **attrs))
        outs.append(name)

    def matmul(name, a, b, a_zp="", b_zp=""):
        ins = [a, b, a_zp, b_zp]
        while ins and not ins[-1]:
            ins.pop()
        nodes.append(helper.make_node("MatMulInteger", ins, [name], name=name))
        outs.append(name)

    nodes.append(helper.make_node("QuantizeLinear", ["x", const(0.02, np.float32, "s"), const(0, np.int8, "z")],
                                  ["q"]))
    # a uint8 copy of the input: q + 128
    nodes += [helper.make_node("Cast", ["q"], ["q64"], to=TensorProto.INT64),
              helper.make_node("Add", ["q64", const(128, np.int64, "c128")], ["u64"]),
              helper.make_node("Cast", ["u64"], ["u"], to=TensorProto.UINT8)]
    conv("dw", "q", 12, 3, group=C, dilations=[2, 2], pads=[2, 2, 2, 2], strides=[1, 2])
    conv("dw_u8", "u", 6, 5, const(100, np.uint8, "zx_dw"), group=C, pads=[2, 1, 2, 1], strides=[2, 1])
    conv("pw", "q", 7, 1)
    # a 1 x 1 convolution whose output only a per-channel requantization reads (fused into its pixel blocks on VNNI)
    nodes.append(helper.make_node("ConvInteger", ["q", w8((7, C, 1, 1), "pwr_w")], ["pwr"], kernel_shape=[1, 1]))
    nodes += [helper.make_node("Cast", ["pwr"], ["pwr64"], to=TensorProto.INT64),
              helper.make_node("Mul", ["pwr64", const(rng.integers(-9, 9, (1, 7, 1, 1)), np.int64, "pwr_m")], ["pwr_a"]),
              helper.make_node("Add", ["pwr_a", const(rng.integers(-99, 99, (1, 7, 1, 1)), np.int64, "pwr_b")],
                               ["pw_req"])]
    outs.append("pw_req")
    conv("win", "q", 5, 3, pads=[1, 1, 1, 1], strides=[2, 2])
    conv("win_u8", "u", 9, 5, const(100, np.uint8, "zx"), pads=[2, 2, 2, 2])
    conv("grouped", "q", 4, 3, group=2, pads=[0, 1, 0, 1], dilations=[1, 2])
    conv("w_zp", "q", 3, 3, "", const(3, np.int8, "zw"), pads=[1, 1, 1, 1])
    # a 16-bit activation convolved as its int8 high and uint8 low halves with the same weights, added back
    # (the integer-only lowering's form; the C convolves the int16 value once: split16.py)
    def split16(tag, x64):  # v = 255 * x - 77 as hi = floor(v / 256) (int8) and lo = v mod 256 (uint8)
        nodes.extend([helper.make_node("Mul", [x64, const(255, np.int64, f"{tag}_c255")], [f"{tag}_v0"]),
                      helper.make_node("Add", [f"{tag}_v0", const(-77, np.int64, f"{tag}_cm77")], [f"{tag}_v1"]),
                      helper.make_node("Mod", [f"{tag}_v1", "c256"], [f"{tag}_lo64"], fmod=0),
                      helper.make_node("Sub", [f"{tag}_v1", f"{tag}_lo64"], [f"{tag}_v2"]),
                      helper.make_node("Div", [f"{tag}_v2", "c256"], [f"{tag}_hi64"]),
                      helper.make_node("Cast", [f"{tag}_hi64"], [f"{tag}_hi"], to=TensorProto.INT8),
                      helper.make_node("Cast", [f"{tag}_lo64"], [f"{tag}_lo"], to=TensorProto.UINT8)])
        return f"{tag}_hi", f"{tag}_lo"

    def pair(tag, halves, w, **attrs):  # Add(Mul(Cast(conv(hi)), 256), Cast(conv(lo)))
        for half in halves:
            nodes.extend([helper.make_node("ConvInteger", [half, w], [f"{tag}_c_{half}"], **attrs),
                          helper.make_node("Cast", [f"{tag}_c_{half}"], [f"{tag}_c_{half}64"], to=TensorProto.INT64)])
        nodes.extend([helper.make_node("Mul", [f"{tag}_c_{halves[0]}64", "c256"], [f"{tag}_h256"]),
                      helper.make_node("Add", [f"{tag}_h256", f"{tag}_c_{halves[1]}64"], [tag])])
        outs.append(tag)

    const(256, np.int64, "c256")
    nodes.append(helper.make_node("Reshape", ["q64", const([1, 2, 3, H * W], np.int64, "sh_w")], ["qw"]))
    wide = split16("s16w", "qw")
    # depthwise on a map 99 wide (the row-by-row form, phase-split columns at stride 2)
    pair("split16_dw", wide, w8((2, 1, 3, 3), "w16"), kernel_shape=[3, 3], group=2, pads=[1, 1, 1, 1],
         strides=[1, 2])
    # 1 x 1: K = 2 and 6 channels, 5 and 7 rows, 297 and 99 pixels (the VNNI path's tails: rows, pixels, blocks)
    pair("split16_pw", wide, w8((5, 2, 1, 1), "w16pw"), kernel_shape=[1, 1])
    pair("split16_pw6", split16("s16n", "q64"), w8((7, C, 1, 1), "w16pw6"), kernel_shape=[1, 1])
    nodes += [helper.make_node("Reshape", ["q", "sh_w"], ["q8w"]),  # int8, row by row, a channel multiplier
              helper.make_node("ConvInteger", ["q8w", w8((4, 1, 3, 3), "w_wide")], ["dw_wide"], kernel_shape=[3, 3],
                               group=2, pads=[0, 2, 1, 0])]
    outs.append("dw_wide")
    nodes.append(helper.make_node("Reshape", ["q", const([2, 3 * H, W], np.int64, "sh_a")], ["a"]))
    nodes.append(helper.make_node("Reshape", ["u", const([2, 3 * H, W], np.int64, "sh_au")], ["au"]))
    nodes.append(helper.make_node("Transpose", ["a"], ["at"], perm=[0, 2, 1]))
    matmul("mm_const", "a", w8((W, 7), "mm_w"))
    # |w| <= 64: ONNX Runtime's AVX2 uint8 x int8 matmul adds product pairs in saturating int16 (vpmaddubsw), which
    # full-range weights overflow; the converter keeps its files inside that bound, and so does this one
    matmul("mm_const_u8", "au", w8((W, 13), "mm_wu", 64), const(90, np.uint8, "za_u"))
    # N = 70: the VNNI matmul's four-vector column blocks, a lone vector and a partial one (rows 27: a row tail)
    matmul("mm_const_wide", "a", w8((W, 70), "mm_w70"), const(-7, np.int8, "za_w"))
    matmul("mm_dynamic", "a", "at", const(-3, np.int8, "za"), const(5, np.int8, "zb"))
    # a computed uint8 operand 11 x 54 broadcast over the batch (the VNNI int16 path: a four-vector block whose last
    # vector is partial), both zero points
    nodes.append(helper.make_node("Reshape", ["u", const([1, W, C * H * W // W], np.int64, "sh_bu")], ["bu"]))
    matmul("mm_dynamic_u8", "au", "bu", const(90, np.uint8, "za_u2"), const(100, np.uint8, "zb_u"))
    flat = []
    for o in outs:
        nodes += [helper.make_node("Reshape", [o, const([1, -1], np.int64, f"{o}_flat")], [o + "_f"]),
                  helper.make_node("Cast", [o + "_f"], [o + "_64"], to=TensorProto.INT64)]
        flat.append(o + "_64")
    nodes += [helper.make_node("Concat", flat, ["cat"], axis=1),
              helper.make_node("Cast", ["cat"], ["cat32"], to=TensorProto.INT32),
              helper.make_node("DequantizeLinear", ["cat32", const(0.5, np.float32, "s_out"),
                                                    const(0, np.int32, "z_out")], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])
    g = helper.make_graph(nodes, "kernels", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    n = next(v for v in inferred.graph.value_info if v.name == "cat").type.tensor_type.shape.dim[1].dim_value
    g = helper.make_graph(nodes, "kernels", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.fixture(scope="module")
def kernels_lib(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kernels")
    path = save_integer_file(_model(), tmp / "kernels.integer_only.onnx", "kernels")
    lib = emit_c(path, tmp / "c")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, C, H, W)).astype(np.float32) * s for s in (0.5, 3.0)]
    xs.append(np.linspace(-3, 3, C * H * W, dtype=np.float32).reshape(1, C, H, W))
    x8, logits = ort_int8_and_logits(path, xs)
    return lib, tmp, x8.reshape(len(xs), -1), logits.reshape(len(xs), -1).astype(np.int32)


def test_every_kernel_path_is_emitted(kernels_lib):
    lib, _, _, _ = kernels_lib
    text = lib.files["model"].read_text()
    for label in ("conv_dw", "conv_1x1", "conv_im2col", "conv_generic", "matmul_const", "matmul_dynamic"):
        assert f'"{label}")' in text, label
    # the split 16-bit pair is one int16 depthwise convolution; both its halves' convolutions are gone
    assert "static void ev_dw_s16_" in text and "_c_s16" not in text
    assert text.count("ev_gemm_vnni16(kernels_w") == 2 and text.count("ev_gemm_s8(kernels_w") == 2  # 1 x 1 pairs
    assert text.count("fused into the convolution above") >= 1  # the requantized 1 x 1
    # the constant matmuls: one weight array (16 columns x 4 k), read by the VNNI kernel and by the portable one
    assert text.count("ev_mm_vnni(S, kernels_w") == 3 and text.count("ev_mm_u8(S, kernels_w") == 3
    assert text.count("ev_mm_vnni16(S, WB") == 2 and text.count("ev_gemm_s16(WB, S") == 2  # computed operands


# every optimization level (GCC 12.2 was once suspected of miscompiling these files at -O1); -O0 under sanitizers
@pytest.mark.parametrize("flags", [("-O3", "-march=native"), ("-O2",), ("-O1",),
                                   ("-O0", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")])
def test_kernels_equal_ort(kernels_lib, flags):
    lib, tmp, x8, logits = kernels_lib
    got = run(build(lib, tmp / f"k{flags[0]}", flags=flags), x8, lib.classes)
    assert np.array_equal(got, logits)
    assert len(np.unique(got)) > got.shape[1]  # the values vary: not constants


def test_kernels_in_small_blocks_equal_ort(tmp_path, monkeypatch):
    """The same file with a GEMM scratch of 2 KiB: every GEMM convolution runs in several pixel blocks with a
    partial last one (the fused requantization reads each block where the convolution left it)."""
    import edgevis.codegen.gemm as gemm

    monkeypatch.setattr(gemm, "SCRATCH_BYTES", 2048)
    path = save_integer_file(_model(), tmp_path / "kernels.integer_only.onnx", "kernels")
    lib = emit_c(path, tmp_path / "c")
    assert lib.files["model"].read_text().count("fused into the convolution above") >= 1
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, C, H, W)).astype(np.float32) * s for s in (0.5, 3.0)]
    x8, logits = ort_int8_and_logits(path, xs)
    x8, logits = x8.reshape(len(xs), -1), logits.reshape(len(xs), -1).astype(np.int32)
    for flags in [("-O3", "-march=native"), ("-O0", "-fsanitize=address,undefined", "-fno-sanitize-recover=all")]:
        assert np.array_equal(run(build(lib, tmp_path / f"k{flags[0]}", flags=flags), x8, lib.classes), logits)
