"""``edgevis.build``: what runs on the device, from an ONNX file (an ORT session saved for a fast
start, or a TensorRT engine), with its provenance sidecar."""

from __future__ import annotations

import os
from typing import Any


def build(model_file: str | os.PathLike[str], runtime: str = "ort", config: Any = None,
          output: str | os.PathLike[str] | None = None) -> Any:
    """``runtime="ort"``: :class:`~edgevis.runtimes.ort_build.OrtBuild` (config: ``OrtBuildConfig``);
    ``runtime="trt"``: :class:`~edgevis.runtimes.trt.TrtBuild` (config: ``TrtBuildConfig``; needs TensorRT);
    ``runtime="openvino"``: :class:`~edgevis.runtimes.openvino.OvBuild` (config: ``OvConfig``; needs the openvino extra)."""
    from ..core.errors import EdgevisError
    from ..runtimes.isolate import check_loads

    if runtime == "ort":
        from ..runtimes.ort_build import OrtBuildConfig, build_ort

        config = config or OrtBuildConfig()
        # a first load in a child process, as the session will be made: a native crash is one error line
        check_loads(model_file, optimization=config.optimization, providers=config.provider_list())
        return build_ort(model_file, output, config)
    if runtime == "openvino":
        from ..runtimes.openvino import OvConfig, build_openvino

        check_loads(model_file)  # the build checks its result against ORT on the source
        return build_openvino(model_file, output, config or OvConfig())
    from ..core.names import as_runtime

    if as_runtime(runtime) == "trt":
        from ..runtimes.trt import TrtBuildConfig, engine_from_onnx

        return engine_from_onnx(model_file, output, config or TrtBuildConfig())
    raise EdgevisError(f"unknown runtime {runtime!r}; use ort, trt or openvino")
