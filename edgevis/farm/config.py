"""What a sweep measures: models × precisions × boards, and how (typed, frozen, validated).

A sweep is given on the command line (``--models lsnet_t,deit_tiny_patch16_224
--precisions fp32,int8 --devices orin-nano,x86``) or, for larger matrices, in a TOML
file read with the standard library's ``tomllib`` (``tomli`` on Python 3.10)::

    precisions = ["fp32", "int8"]
    devices = ["orin-nano", "x86"]
    calib = "digits/train"
    holdout = "digits/test"
    rounds = 3

    [profile]              # any of warmup, iters, duration, batch, threads, energy, device
    iters = 200

    [[models]]
    name = "lsnet_t"
    weights = "lsnet_t.pth"
    input_size = [224, 224]
    label = "lsnet_t"      # optional; names the cells (default: name, or name@HxW)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core.errors import EdgevisError
from ..profile.profiler import ProfileConfig

CLUSTER_HELP = "local (this machine, serially, no Ray), auto (the Ray cluster this machine belongs to), " \
               "ray://HOST:PORT (Ray client) or HOST:PORT (a head's GCS address)"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")


def check_name(kind: str, name: str) -> str:
    """Board names and model labels name files (``cells/<model>__<precision>__<board>.json``) and Ray
    resources (``board:NAME``): letters, digits and ``_ . @ + -`` only, no ``__``."""
    if not _NAME.match(name) or "__" in name:
        raise EdgevisError(f"{kind} {name!r} is not a usable name: use letters, digits and _ . @ + - "
                           "(no '__', no spaces or slashes)")
    return name


@dataclass(frozen=True)
class ModelSpec:
    """One model of the sweep: a catalog name, its weights and input size; ``label`` names its cells."""

    name: str
    weights: str | None = None
    input_size: tuple[int, int] | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.input_size is not None:
            size = tuple(int(v) for v in self.input_size)
            if len(size) != 2 or min(size) < 1:
                raise EdgevisError(f"model {self.name}: input_size takes two sizes >= 1 (got {self.input_size})")
            object.__setattr__(self, "input_size", size)
        if not self.label:
            h_w = self.input_size
            label = self.name if h_w is None else f"{self.name}@{h_w[0]}" if h_w[0] == h_w[1] \
                else f"{self.name}@{h_w[0]}x{h_w[1]}"
            object.__setattr__(self, "label", label)
        check_name("model label", self.label)


def parse_models(text: str, weights: str | None = None,
                 input_size: tuple[int, int] | None = None) -> tuple[ModelSpec, ...]:
    """``lsnet_t,deit_tiny_patch16_224`` or ``test_lsnet@64,test_lsnet@48x48``: the same ``weights``
    and ``input_size`` for every model, unless a name carries its own size after ``@``."""
    out: list[ModelSpec] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        name, _, size = item.partition("@")
        hw = input_size
        if size:
            try:
                parts = [int(v) for v in size.lower().split("x")]
            except ValueError:
                raise EdgevisError(f"--models: {item!r}: the size after @ is H or HxW, e.g. {name}@224") from None
            hw = (parts[0], parts[-1]) if len(parts) in (1, 2) else None
            if hw is None:
                raise EdgevisError(f"--models: {item!r}: the size after @ is H or HxW, e.g. {name}@224")
        out.append(ModelSpec(name, weights, hw))
    if not out:
        raise EdgevisError("--models is empty; e.g. lsnet_t,deit_tiny_patch16_224")
    return tuple(out)


def parse_devices(text: str) -> tuple[str, ...]:
    devices = tuple(dict.fromkeys(check_name("board", t.strip()) for t in text.split(",") if t.strip()))
    if not devices:
        raise EdgevisError("--devices is empty; name the boards, e.g. orin-nano,x86")
    return devices


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: every model at every precision on every board (``board:NAME`` Ray resources)."""

    models: tuple[ModelSpec, ...]
    precisions: tuple[str, ...] = ("fp32", "int8")
    devices: tuple[str, ...] = ("local",)
    cluster: str = "local"
    report_dir: Path = Path("edgevis_sweep")
    output_dir: Path = Path("edgevis_out")  # the head's exported files, one folder per model label
    calib_dir: Path | None = None
    holdout_dir: Path | None = None
    rounds: int = 3  # each cell is profiled in this many rounds, each in a fresh process
    profile: ProfileConfig = field(default_factory=lambda: ProfileConfig(runtime="ort"))
    reuse: bool = True  # reuse exported files whose sidecars match (as bench)
    resume: bool = True  # skip finished cells whose artifacts and settings match
    retries: int = 1  # Ray's max_retries for a cell whose worker or node died
    cell_timeout_s: float = 1800.0  # a cell running longer than this fails
    board_grace_s: float = 20.0  # a board gone from the cluster this long fails its cells
    probe_timeout_s: float = 60.0  # the version check on each board at the start

    def __post_init__(self) -> None:
        from ..pipeline.benching import PRECISIONS

        if not self.models:
            raise EdgevisError("a sweep needs at least one model")
        labels = [m.label for m in self.models]
        if len(set(labels)) != len(labels):
            dup = next(x for x in labels if labels.count(x) > 1)
            raise EdgevisError(f"two models are labelled {dup!r}; give them different input sizes or labels")
        bad = [p for p in self.precisions if p not in PRECISIONS.values()]
        if bad:
            raise EdgevisError(f"unknown precision {bad[0]!r}; choose from fp32, int8, integer-only")
        if not self.precisions or self.precisions[0] != "fp32":
            raise EdgevisError("the first precision must be fp32, the baseline ratios are taken against")
        if not self.devices:
            raise EdgevisError("a sweep needs at least one board (--devices)")
        for d in self.devices:
            check_name("board", d)
        if self.rounds < 1:
            raise EdgevisError(f"--rounds must be >= 1 (got {self.rounds})")
        if self.retries < 0:
            raise EdgevisError(f"--retries must be >= 0 (got {self.retries})")
        for flag, v in (("--cell-timeout", self.cell_timeout_s), ("board grace", self.board_grace_s),
                        ("probe timeout", self.probe_timeout_s)):
            if v <= 0:
                raise EdgevisError(f"{flag} must be > 0 seconds (got {v})")
        if self.profile.runtime not in ("ort", "trt"):
            raise EdgevisError(f"a sweep runs ort or trt (got {self.profile.runtime!r})")
        if self.profile.runtime == "trt" and "integer-only" in self.precisions:
            raise EdgevisError("integer-only models run on ONNX Runtime only (TensorRT has no ConvInteger/"
                               "MatMulInteger); sweep them with --runtime ort")
        if not (self.cluster in ("local", "auto") or self.cluster.startswith("ray://") or ":" in self.cluster):
            raise EdgevisError(f"unknown --cluster {self.cluster!r}; use {CLUSTER_HELP}")

    @property
    def cells(self) -> list[tuple[str, str, str]]:
        """(model label, precision, board) of every cell, board by board."""
        return [(m.label, p, d) for d in self.devices for m in self.models for p in self.precisions]


_PROFILE_KEYS = {"warmup": "warmup", "iters": "iters", "duration": "duration_s", "batch": "batches",
                 "threads": "threads", "energy": "energy", "device": "device", "runtime": "runtime",
                 "idle": "idle_s", "tolerance": "tolerance", "per_layer": "per_layer"}
_TOP_KEYS = {"models", "precisions", "devices", "cluster", "report", "output_dir", "calib", "holdout", "rounds",
             "weights", "input_size", "profile", "retries", "cell_timeout", "reuse", "resume"}


def load_sweep_file(path: str | os.PathLike[str], **overrides: Any) -> SweepConfig:
    """A :class:`SweepConfig` from a TOML sweep file (see the module docstring); relative paths in the
    file are relative to the file; ``overrides`` (SweepConfig field names) win over the file."""
    try:
        import tomllib
    except ImportError:  # Python 3.10 (JetPack 6): the same parser as the tomli package
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            from ..core.errors import missing_dependency

            raise missing_dependency("tomli", "farm", "sweep files on Python 3.10") from None

    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgevisError(f"sweep file not found: {p}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise EdgevisError(f"cannot read sweep file {p}: {e}") from None
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise EdgevisError(f"{p}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")

    def rel(v: Any) -> Path | None:
        return None if v is None else (p.parent / str(v))

    def as_tuple(v: Any) -> tuple[str, ...]:
        return tuple(str(x) for x in v) if isinstance(v, list) else tuple(s for s in str(v).split(",") if s)

    try:
        models = []
        for m in doc.get("models") or []:
            if isinstance(m, str):
                models += parse_models(m, _weights(doc.get("weights"), p), doc.get("input_size"))
                continue
            extra = set(m) - {"name", "weights", "input_size", "label"}
            if extra or "name" not in m:
                raise EdgevisError(f"{p}: a [[models]] table takes name, weights, input_size, label"
                                   + (f" (not {sorted(extra)[0]!r})" if extra else " (name is missing)"))
            models.append(ModelSpec(str(m["name"]), _weights(m.get("weights", doc.get("weights")), p),
                                    m.get("input_size", doc.get("input_size")), str(m.get("label", ""))))
        prof = doc.get("profile") or {}
        bad = sorted(set(prof) - set(_PROFILE_KEYS))
        if bad:
            raise EdgevisError(f"{p}: unknown [profile] key {bad[0]!r} (known: {', '.join(sorted(_PROFILE_KEYS))})")
        pkw = {_PROFILE_KEYS[k]: v for k, v in prof.items()}
        if "batches" in pkw:
            pkw["batches"] = tuple(int(b) for b in (pkw["batches"] if isinstance(pkw["batches"], list)
                                                     else str(pkw["batches"]).split(",")))
        pkw.setdefault("runtime", "ort")
        kw: dict[str, Any] = {"models": tuple(models), "profile": ProfileConfig(**pkw)}
        if "precisions" in doc:
            from ..pipeline.benching import parse_precisions

            kw["precisions"] = parse_precisions(",".join(as_tuple(doc["precisions"])))
        if "devices" in doc:
            kw["devices"] = parse_devices(",".join(as_tuple(doc["devices"])))
        for key, name in (("cluster", "cluster"), ("rounds", "rounds"), ("retries", "retries"),
                          ("cell_timeout", "cell_timeout_s"), ("reuse", "reuse"), ("resume", "resume")):
            if key in doc:
                kw[name] = doc[key]
        for key, name in (("report", "report_dir"), ("output_dir", "output_dir"), ("calib", "calib_dir"),
                          ("holdout", "holdout_dir")):
            if key in doc:
                kw[name] = rel(doc[key])
        known = {f.name for f in fields(SweepConfig)}
        kw.update({k: v for k, v in overrides.items() if k in known and v is not None})
        return SweepConfig(**kw)
    except TypeError as e:  # a value of the wrong type in the file
        raise EdgevisError(f"{p}: {e}") from None


def _weights(v: Any, p: Path) -> str | None:
    if v is None or v == "builtin":
        return v
    return str(p.parent / str(v))

