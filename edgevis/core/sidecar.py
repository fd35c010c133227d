"""The one reader of JSON sidecars, schema-checked.

A sidecar says what produced a file and where it can run; later stages decide on
it (which preprocessing, which precision, whether an engine fits this GPU). A
sidecar that is missing, is not JSON, is JSON but not an object, or holds a key of
the wrong type is *unreadable*: :func:`load_sidecar` returns no data and the
reason, and a caller that relies on it says the file is unverified instead of
trusting it or crashing on it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# the keys later stages read, and the JSON types they must have (None is allowed: "not known")
SCHEMA: dict[str, tuple[type, ...]] = {
    "sha256": (str,), "source_sha256": (str,), "source": (str,), "kind": (str,), "precision": (str,),
    "model": (str,), "weights": (str, dict), "edgevis": (str,), "created": (str,), "onnxruntime": (str,),
    "tensorrt": (str,), "preprocess": (dict,), "gpu": (dict,), "providers": (list,), "dla_core": (int,),
    "optimization": (str,),
}
MAX_BYTES = 64 * 1024 * 1024  # a sidecar is metadata: a larger one is not ours


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".json")


@dataclass(frozen=True)
class Sidecar:
    """What :func:`load_sidecar` found: ``data`` when readable, else ``problem`` (``missing`` is its own case)."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    missing: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    def unverified(self, what: str | os.PathLike[str]) -> str | None:
        """One line saying why ``what`` cannot be checked against its sidecar, or None when it can."""
        if self.ok and self.data.get("sha256"):
            return None
        if self.missing:
            return f"{Path(what).name} is unverified: it has no sidecar ({self.path.name})"
        if not self.ok:
            return f"{Path(what).name} is unverified: its sidecar {self.path.name} is unreadable ({self.problem})"
        return f"{Path(what).name} is unverified: its sidecar {self.path.name} records no sha256"

    def verify(self, what: str | os.PathLike[str]) -> str | None:
        """:meth:`unverified`, and also when the recorded sha256 is not ``what``'s (the file was replaced)."""
        why = self.unverified(what)
        if why is None:
            from .files import sha256_file

            if self.data["sha256"] != sha256_file(what):
                why = (f"{Path(what).name} is unverified: its sidecar {self.path.name} describes another file "
                       "(sha256 differs)")
        return why


def check_schema(data: Any) -> str | None:
    """Why ``data`` is not a sidecar, or None."""
    if not isinstance(data, dict):
        return f"it holds a JSON {type(data).__name__}, not an object"
    for key, types in SCHEMA.items():
        v = data.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, types):
            return f"its {key!r} is a {type(v).__name__}, not a {'/'.join(t.__name__ for t in types)}"
    if isinstance(data.get("providers"), list) and not all(isinstance(p, str) for p in data["providers"]):
        return "its 'providers' is not a list of names"
    return None


def load_sidecar(path: str | os.PathLike[str]) -> Sidecar:
    """The sidecar of the file ``path`` (``NAME.json`` beside it), checked against :data:`SCHEMA`."""
    sc = sidecar_path(path)
    try:
        if not sc.is_file():
            return Sidecar(sc, problem="missing", missing=True)
        if sc.stat().st_size > MAX_BYTES:
            return Sidecar(sc, problem=f"{sc.stat().st_size} bytes, too large for a sidecar")
        data = json.loads(sc.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return Sidecar(sc, problem=f"not JSON: {str(e).splitlines()[0] if str(e) else type(e).__name__}"[:200])
    why = check_schema(data)
    return Sidecar(sc, problem=why) if why else Sidecar(sc, data)
