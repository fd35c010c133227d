"""``edgevis profile`` composed: a first load isolated from native crashes, the profile, the
sidecar's word on the file, and the report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..profile.api import ProfileResult
from ..profile.profiler import ProfileConfig, Progress


@dataclass
class ProfileRun:
    result: ProfileResult
    report_files: dict[str, Path] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``profile --json`` object."""
        files = self.report_files
        return {**self.result.to_dict(), "report": {k: str(v) for k, v in files.items()} if files else None}


def runtime_name(result: dict[str, Any]) -> str:
    m = result["model"]
    if m["runtime"] == "openvino":  # the precision that ran, read back from the compiled model, always said
        return f"OpenVINO CPU, {m.get('inference_precision', {}).get('label', m['precision'])}"
    return "TensorRT" if m["runtime"] == "trt" else f"ONNX Runtime ({', '.join(m['providers'])})"


def profile_with_report(model_file: str | os.PathLike[str], config: ProfileConfig, *,
                        report_dir: str | os.PathLike[str] | None = None,
                        progress: Progress | None = None, invocation: str | None = None) -> ProfileRun:
    from ..core.files import ensure_writable_dir
    from ..core.names import is_engine
    from ..core.sidecar import load_sidecar
    from ..profile.profiler import profile_file

    path = Path(model_file)
    if report_dir is not None:
        ensure_writable_dir(report_dir)  # before minutes of measuring, not after
    if not is_engine(path) and path.suffix.lower() != ".blob" and config.runtime in ("auto", "ort"):
        from ..runtimes.isolate import check_loads
        from ..runtimes.ort import DEVICES

        check_loads(path, providers=config.providers or DEVICES.get(config.device))  # a native crash: one error line
    result = profile_file(path, config, progress=progress)
    warnings = list(result["warnings"])
    side = load_sidecar(path)
    doubt = None if side.missing else side.verify(path)  # hashes the file: once
    if doubt:  # a sidecar that cannot vouch for the file is said so
        warnings.append(doubt)
    written = None
    if report_dir is not None:
        from ..report import new_report, write_report

        from .benching import file_provenance

        prov = file_provenance(path) if not side.missing and not doubt else None
        entry = {"label": result["model"]["precision"], "precision": result["model"]["precision"],
                 "file": str(path), "fidelity": None, "profile": result, "provenance": prov}
        report = new_report("profile", f"{path.name} on {runtime_name(result)}", result["device"], [entry],
                            model=(side.data or {}).get("model") if prov else path.name, warnings=result["warnings"])
        if invocation:
            report["invocation"] = invocation
        written = write_report(report, report_dir)
    return ProfileRun(ProfileResult(result), written, warnings)
