"""The one place where edgevis's stages are composed.

``catalog / your model -> exporters -> graph -> quant -> runtimes | codegen -> profile -> report``:
each stage takes a value and returns a new one and never imports a later stage; the
functions here chain them, from typed configs to typed results (each with ``to_dict()``,
which is what the CLI's ``--json`` prints). The CLI commands and the public API
(``edgevis.export``, ``edgevis.quantize``, ...) call these and nothing else.
"""

from __future__ import annotations

from typing import Any

_NAMES = {
    "export": ".exporting", "export_fp32": ".exporting", "ExportRun": ".exporting",
    "quantize": ".quantizing", "QuantizeRun": ".quantizing", "check_classifier": ".quantizing",
    "PreprocessOptions": ".sources", "resolve_source": ".sources",
    "build": ".building",
    "bench": ".benching", "BenchConfig": ".benching", "BenchResult": ".benching", "run_bench": ".benching",
    "parse_precisions": ".benching",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:  # lazy: `import edgevis.pipeline` pulls in no stage
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(_NAMES[name], __name__), name)
    raise AttributeError(f"module 'edgevis.pipeline' has no attribute {name!r}")
