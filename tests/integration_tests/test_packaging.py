"""The built distributions hold what a user installs: four typed packages, the corpus, the license.

Builds the wheel and the sdist from the working tree with ``uv build`` (the Makefile installs
uv into the virtual environment; the build backend, hatchling, comes from the package index
like every other dependency) and reads the archives.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aisearch", "langchain_aisearch", "llamaindex_aisearch", "aisearch_local")


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (make venv installs it)")
    return found


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [_uv(), "build", "--quiet", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def _corpus_files() -> set[str]:
    corpus = ROOT / "aisearch_local" / "sample_corpus"
    return {
        p.relative_to(ROOT).as_posix()
        for p in corpus.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_wheel_holds_typed_packages_corpus_license_and_entry_point(dist: tuple[Path, Path]):
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = HeaderParser().parsestr(zf.read(meta_name).decode())
        (entry_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = zf.read(entry_name).decode()
        license_names = [n for n in names if "/licenses/" in n and n.endswith("LICENSE")]
        license_text = zf.read(license_names[0]).decode() if license_names else ""

    for package in PACKAGES:
        assert f"{package}/__init__.py" in names
        assert f"{package}/py.typed" in names, f"{package} ships without py.typed"
    missing = _corpus_files() - names
    assert not missing, f"sample corpus files missing from the wheel: {sorted(missing)[:5]}"
    assert "MIT License" in license_text
    assert meta["License-Expression"] == "MIT"
    assert "aisearch-local = aisearch_local.cli:main" in entry_points
    # nothing but the four packages and the metadata
    tops = {n.split("/")[0] for n in names}
    assert tops == {*PACKAGES, wheel.name.split("-")[0] + "-" + meta["Version"] + ".dist-info"}
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert meta.get_all("Keywords")
    for extra in ("langchain", "llamaindex", "local", "semantic", "all"):
        assert extra in (meta.get_all("Provides-Extra") or [])


def test_sdist_holds_sources_corpus_and_license(dist: tuple[Path, Path]):
    _, sdist = dist
    with tarfile.open(sdist) as tf:
        names = {m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name}
    assert "LICENSE" in names
    assert "pyproject.toml" in names
    for package in PACKAGES:
        assert f"{package}/py.typed" in names
    assert not _corpus_files() - names
