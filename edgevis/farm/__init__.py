"""A device farm: sweep models × precisions × boards across machines on Ray, into one report.

``sweep(SweepConfig(...)) -> SweepResult``. Ray is the optional extra ``edgevis[farm]``,
imported only when a sweep runs on a cluster; ``cluster="local"`` runs the same sweep
here, serially, without it. Names resolve on first use so that ``import edgevis.farm``
stays light.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "sweep": "edgevis.farm.orchestrator",
    "SweepResult": "edgevis.farm.orchestrator",
    "PARTIAL_EXIT": "edgevis.farm.orchestrator",
    "SweepConfig": "edgevis.farm.config",
    "ModelSpec": "edgevis.farm.config",
    "load_sweep_file": "edgevis.farm.config",
    "parse_models": "edgevis.farm.config",
    "parse_devices": "edgevis.farm.config",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgevis.farm' has no attribute {name!r}")
