"""The C++ runtime ships inside the Python package: every file under edgevis/cpp is package data,
the CMake package's version is the Python package's, and `edgevis cpp` prints and writes what it says."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

import edgevis
from edgevis.cpp import cmake_dir

ROOT = Path(__file__).resolve().parents[2]


def test_every_cpp_file_is_package_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["edgevis"]
    pkg = ROOT / "edgevis"
    files = [p.relative_to(pkg).as_posix() for p in (pkg / "cpp").rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert files
    # setuptools' globs do not cross '/', as fnmatch's do: compare folder by folder
    def shipped(f: str) -> bool:
        return any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)
    assert [f for f in files if not shipped(f)] == []
    assert shipped("data/imagenet_classes.txt")  # the class names the library is built with


def test_cmake_package_version_is_the_python_version():
    text = (cmake_dir() / "edgevisConfigVersion.cmake").read_text()
    assert f'set(PACKAGE_VERSION "{edgevis.__version__}")' in text


def test_cli_prints_the_cmake_dir_and_init_keeps_existing_files(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "edgevis", "cpp", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True)
    p = run("--cmake-dir")
    assert p.returncode == 0 and Path(p.stdout.strip()) == cmake_dir()
    assert (Path(p.stdout.strip()) / "edgevisConfig.cmake").is_file()
    p = run("init", tmp_path / "app")
    assert p.returncode == 0, p.stderr
    assert {f.name for f in (tmp_path / "app").iterdir()} == {"CMakeLists.txt", "main.cpp"}
    assert str(cmake_dir()) in (tmp_path / "app" / "CMakeLists.txt").read_text()
    before = (tmp_path / "app" / "main.cpp").read_text()
    (tmp_path / "app" / "main.cpp").write_text("// mine\n")
    p = run("init", tmp_path / "app")
    assert p.returncode != 0 and p.stderr.count("\n") == 1 and "--force" in p.stderr
    assert (tmp_path / "app" / "main.cpp").read_text() == "// mine\n"
    assert run("init", tmp_path / "app", "--force").returncode == 0
    assert (tmp_path / "app" / "main.cpp").read_text() == before
