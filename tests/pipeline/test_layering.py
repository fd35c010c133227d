"""No stage imports a later stage (DESIGN.md): read every import in edgevis, top-level or inside a function.

The stages in pipeline order: catalog -> exporters -> graph -> quant -> codegen -> profile -> report.
core and data are below all of them; runtimes (ways to run a model) is usable by every stage and
uses only core and data itself. pipeline, farm and cli compose the stages and may import any.
"""

import ast
from pathlib import Path

import edgevis

ROOT = Path(edgevis.__file__).parent
ORDER = ["catalog", "exporters", "graph", "quant", "codegen", "profile", "report"]
BASE = {"core", "data"}
COMPOSERS = {"pipeline", "farm", "cli"}


def allowed(src: str, dst: str) -> bool:
    if dst == src or dst in BASE or src in COMPOSERS:
        return True
    if src in BASE:
        return False  # core and data import no stage
    if dst == "runtimes":
        return True
    if src == "runtimes":
        return False
    if dst in COMPOSERS:
        return False
    if src in ORDER and dst in ORDER:
        return ORDER.index(dst) < ORDER.index(src)
    return True  # top-level modules (cpp package data, __init__)


def imported_packages(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, edgevis subpackage) of every edgevis import in ``path`` (``source``: its text, if not on disk).
    A name of the lazy top-level API (``from .. import quantize``, ``from edgevis import bench``) counts as
    an import of the subpackage that defines it."""
    rel = path.relative_to(ROOT).parts
    out = []
    for node in ast.walk(ast.parse(source if source is not None else path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-1])[: len(rel) - 1 - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module == "edgevis" or (node.module or "").startswith("edgevis."):
                parts = node.module.split(".")[1:]
            else:
                continue
            if not parts:  # from .. import x / from edgevis import x: x may be a subpackage or a lazy API name
                for a in node.names:
                    lazy = edgevis._LAZY.get(a.name, "")
                    out.append((node.lineno, lazy.split(".")[1] if lazy else a.name))
                continue
            out.append((node.lineno, parts[0]))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("edgevis."):
                    out.append((node.lineno, a.name.split(".")[1]))
    return out


def test_no_stage_imports_a_later_stage():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).parts
        if len(rel) < 2:
            continue
        src = rel[0]
        for line, dst in imported_packages(path):
            if not (ROOT / dst).is_dir():
                continue  # a top-level module or name (edgevis.__version__)
            if not allowed(src, dst):
                bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {src} imports {dst}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path):
    # the rule itself: quant -> profile (what issue 13 found) and runtimes -> graph are refused
    assert not allowed("quant", "profile") and not allowed("runtimes", "graph") and not allowed("exporters", "graph")
    assert allowed("profile", "quant") and allowed("quant", "runtimes") and allowed("pipeline", "report")
    f = ROOT / "quant" / "int8.py"
    assert ("runtimes" in {d for _, d in imported_packages(f)}) and ("core" in {d for _, d in imported_packages(f)})
    # the spellings that reach a later stage without naming its package
    seen = imported_packages(f, "from .. import bench, __version__\nfrom edgevis import profile\nfrom .. import report\n")
    assert [d for _, d in seen] == ["pipeline", "__version__", "profile", "report"]
