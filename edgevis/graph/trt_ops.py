"""What TensorRT's ONNX parser takes (onnx-tensorrt ``docs/operators.md``, TensorRT 10.1 and 10.15).

Facts transcribed from NVIDIA's published operator table; the lint in
:mod:`edgevis.graph.lint` reads them. TensorRT 10.0-10.1 parse opsets 9-20, 10.15
opsets 9-24; TensorRT 11 keeps the 10.15 table (its migration guide removes APIs,
not ONNX operators).
"""

OPSET_MIN = 9
OPSET_MAX = {"10.0": 20, "10.15": 24, "11": 24}

SUPPORTED = frozenset({
    'Abs', 'Acos', 'Acosh', 'Add', 'And', 'ArgMax',
    'ArgMin', 'Asin', 'Asinh', 'Atan', 'Atanh', 'Attention',
    'AveragePool', 'BatchNormalization', 'BlackmanWindow', 'Cast', 'CastLike', 'Ceil',
    'Celu', 'Clip', 'Concat', 'Constant', 'ConstantOfShape', 'Conv',
    'ConvTranspose', 'Cos', 'Cosh', 'CumSum', 'DeformConv', 'DepthToSpace',
    'DequantizeLinear', 'Div', 'Dropout', 'Einsum', 'Elu', 'Equal',
    'Erf', 'Exp', 'Expand', 'EyeLike', 'Flatten', 'Floor',
    'GRU', 'Gather', 'GatherElements', 'GatherND', 'Gelu', 'Gemm',
    'GlobalAveragePool', 'GlobalLpPool', 'GlobalMaxPool', 'Greater', 'GreaterOrEqual', 'GridSample',
    'GroupNormalization', 'HammingWindow', 'HannWindow', 'HardSigmoid', 'HardSwish', 'Hardmax',
    'Identity', 'If', 'ImageScaler', 'InstanceNormalization', 'IsInf', 'IsNaN',
    'LRN', 'LSTM', 'LayerNormalization', 'LeakyRelu', 'Less', 'LessOrEqual',
    'Log', 'LogSoftmax', 'Loop', 'LpNormalization', 'LpPool', 'MatMul',
    'Max', 'MaxPool', 'Mean', 'MeanVarianceNormalization', 'Min', 'Mish',
    'Mod', 'Mul', 'Neg', 'NonMaxSuppression', 'NonZero', 'Not',
    'OneHot', 'Or', 'PRelu', 'Pad', 'ParametricSoftplus', 'Pow',
    'QuantizeLinear', 'RMSNormalization', 'RNN', 'RandomNormal', 'RandomNormalLike', 'RandomUniform',
    'RandomUniformLike', 'Range', 'Reciprocal', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
    'ReduceLogSumExp', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceProd', 'ReduceSum',
    'ReduceSumSquare', 'Relu', 'Reshape', 'Resize', 'ReverseSequence', 'RoiAlign',
    'RotaryEmbedding', 'Round', 'STFT', 'ScaledTanh', 'Scan', 'Scatter',
    'ScatterElements', 'ScatterND', 'Selu', 'Shape', 'Shrink', 'Sigmoid',
    'Sign', 'Sin', 'Sinh', 'Size', 'Slice', 'Softmax',
    'Softplus', 'Softsign', 'SpaceToDepth', 'Split', 'Sqrt', 'Squeeze',
    'Sub', 'Sum', 'Tan', 'Tanh', 'TensorScatter', 'ThresholdedRelu',
    'Tile', 'TopK', 'Transpose', 'Trilu', 'Unsqueeze', 'Upsample',
    'Where', 'Xor',
})

# supported only from TensorRT 10.15 on (not in the 10.1 table)
SINCE_10_15 = frozenset({
    'Attention', 'BlackmanWindow', 'HammingWindow', 'HannWindow', 'RMSNormalization', 'RotaryEmbedding',
    'STFT', 'TensorScatter',
})

# marked N in the table
UNSUPPORTED = frozenset({
    'AffineGrid', 'Bernoulli', 'BitShift', 'BitwiseAnd', 'BitwiseNot', 'BitwiseOr',
    'BitwiseXor', 'CenterCropPad', 'Col2Im', 'Compress', 'ConcatFromSequence', 'ConvInteger',
    'DFT', 'Det', 'DynamicQuantizeLinear', 'ImageDecoder', 'MatMulInteger', 'MaxRoiPool',
    'MaxUnpool', 'MelWeightMatrix', 'Multinomial', 'NegativeLogLikelihoodLoss', 'Optional', 'OptionalGetElement',
    'OptionalHasElement', 'QLinearConv', 'QLinearMatMul', 'RegexFullMatch', 'SequenceAt', 'SequenceConstruct',
    'SequenceEmpty', 'SequenceErase', 'SequenceInsert', 'SequenceLength', 'SequenceMap', 'SoftmaxCrossEntropyLoss',
    'SplitToSequence', 'StringConcat', 'StringNormalizer', 'StringSplit', 'TfIdfVectorizer', 'Unique',
})

# supported in floating point only (no INT32/INT64/BOOL in the table's type column)
FLOAT_ONLY = frozenset({
    'Acos', 'Acosh', 'Asin', 'Asinh', 'Atan', 'Atanh',
    'AveragePool', 'BatchNormalization', 'BlackmanWindow', 'Ceil', 'Celu', 'Clip',
    'Conv', 'ConvTranspose', 'Cos', 'Cosh', 'CumSum', 'DeformConv',
    'Dropout', 'Einsum', 'Elu', 'Erf', 'Exp', 'Floor',
    'GRU', 'Gemm', 'GlobalAveragePool', 'GlobalLpPool', 'GlobalMaxPool', 'GridSample',
    'GroupNormalization', 'HammingWindow', 'HannWindow', 'HardSigmoid', 'HardSwish', 'Hardmax',
    'ImageScaler', 'InstanceNormalization', 'IsInf', 'LRN', 'LSTM', 'LayerNormalization',
    'LeakyRelu', 'Log', 'LogSoftmax', 'LpNormalization', 'LpPool', 'MatMul',
    'MaxPool', 'MeanVarianceNormalization', 'Mish', 'NonMaxSuppression', 'NonZero', 'PRelu',
    'ParametricSoftplus', 'QuantizeLinear', 'RMSNormalization', 'RNN', 'RandomNormal', 'RandomNormalLike',
    'RandomUniform', 'RandomUniformLike', 'Reciprocal', 'Resize', 'RoiAlign', 'RotaryEmbedding',
    'Round', 'STFT', 'ScaledTanh', 'Scan', 'Selu', 'Sigmoid',
    'Sin', 'Sinh', 'Softmax', 'Softplus', 'Softsign', 'Sqrt',
    'Tan', 'Tanh', 'ThresholdedRelu', 'Upsample',
})

# the table's restrictions, condensed
RESTRICTIONS = {
    'Attention': 'Q/K/V/attn_mask must be 4D; past_key/past_value/nonpad_kv_seqlen inputs, present_*/qk_matmul_output outputs, qk_matmul_output_mode and softcap unsupported; head counts taken from dim 1 of Q and K/V',
    'AveragePool': '2D/3D pooling only; dilations empty or all 1',
    'Constant': 'sparse_value, value_string(s) attributes unsupported',
    'CumSum': 'axis must be a build-time constant',
    'DeformConv': '1D/2D spatial input only; begin/end pads must be equal per axis',
    'DequantizeLinear': 'x_zero_point must be zero (symmetric only)',
    'Dropout': 'is_training must be an initializer evaluating to False',
    'EyeLike': 'input must have static dims',
    'GRU': 'bidirectional: same activations both directions',
    'GridSample': '4D input only',
    'Hardmax': 'axis dim must be build-time constant',
    'If': 'branch outputs must have same rank and different names',
    'LSTM': 'bidirectional: same activations both directions; input_forget=0; layout=0',
    'LayerNormalization': 'only first output Y supported',
    'Loop': 'scan output length cannot be dynamic; loop-carried shapes must be constant across iterations',
    'LpPool': 'dilations empty or all 1',
    'MaxPool': '2D/3D pooling only; Indices output unsupported; dilations empty or all 1',
    'OneHot': 'depth must be build-time constant',
    'QuantizeLinear': 'y_zero_point must be 0 (symmetric only)',
    'RNN': 'bidirectional: same activations both directions',
    'RandomNormal': 'seed ignored',
    'RandomNormalLike': 'seed ignored',
    'RandomUniform': 'seed ignored',
    'RandomUniformLike': 'seed ignored',
    'ReduceL1': 'axes must be an initializer',
    'ReduceL2': 'axes must be an initializer',
    'ReduceLogSum': 'axes must be an initializer',
    'ReduceLogSumExp': 'axes must be an initializer',
    'ReduceMax': 'axes must be an initializer',
    'ReduceMean': 'axes must be an initializer',
    'ReduceMin': 'axes must be an initializer',
    'ReduceProd': 'axes must be an initializer',
    'ReduceSum': 'axes must be an initializer',
    'ReduceSumSquare': 'axes must be an initializer',
    'Resize': 'modes nearest/linear only (no cubic); coord modes half_pixel/pytorch_half_pixel/tf_half_pixel_for_nn/asymmetric/align_corners; nearest_mode floor/ceil/round_prefer_floor/round_prefer_ceil; aspect policy stretch; no antialias; tensor scales need axes = iota(rank)',
    'RotaryEmbedding': 'position_ids must be INT64',
    'STFT': 'frame_step and window must be initializers; input must be real-valued',
    'ScatterND': 'reduction other than none unsupported',
    'Squeeze': 'axes must be resolvable to a constant',
    'TensorScatter': 'past_cache and update must be 4D; axis must be -2',
    'TopK': 'sorted must be 1; K < 3840',
    'Unsqueeze': 'axes must be resolvable to a constant',
}
