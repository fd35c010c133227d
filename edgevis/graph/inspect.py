"""What is inside an ONNX file: the readers moved to :mod:`edgevis.core.onnxfile`.

Every stage reads ONNX files (exporters, quant, runtimes), so the loaders live in
``core``, below all of them; this module keeps the names importable from ``graph``.
"""

from ..core.onnxfile import (  # noqa: F401
    META_PREPROCESS,
    META_PROVENANCE,
    PROTOBUF_LIMIT,
    QDQ_OPS,
    TensorIndex,
    get_metadata,
    has_qdq,
    load_onnx,
    op_histogram,
    random_array,
    random_feed,
    read_json_metadata,
    set_metadata,
    static_batch,
)
