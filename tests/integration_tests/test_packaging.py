"""The built distributions hold what a user installs: five typed packages, the corpus, the license.

Builds the wheel and the sdist from the working tree with ``uv build`` (the Makefile installs
uv into the virtual environment; the build backend, hatchling, and its readme plugin,
hatch-fancy-pypi-readme, come from the package index like every other dependency) and reads
the archives. The description PyPI shows is README.md with every relative link made absolute
against the repository URL of ``[project.urls]``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "aisearch", "langchain_aisearch", "llamaindex_aisearch", "aisearch_local", "aisearch_eval"
)  # fmt: skip


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
    ui = {f"aisearch_local/ui/{name}" for name in ("index.html", "app.js", "style.css")}
    assert ui <= names, f"the explorer's files missing from the wheel: {sorted(ui - names)}"
    assert "MIT License" in license_text
    assert meta["License-Expression"] == "MIT"
    assert "aisearch-local = aisearch_local.cli:main" in entry_points
    assert "aisearch-eval = aisearch_eval.cli:main" in entry_points
    assert "aisearch_eval/data/coffee_questions.jsonl" in names
    # nothing but the five packages and the metadata
    tops = {n.split("/")[0] for n in names}
    assert tops == {*PACKAGES, wheel.name.split("-")[0] + "-" + meta["Version"] + ".dist-info"}
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert meta.get_all("Keywords")
    for extra in ("langchain", "llamaindex", "local", "semantic", "eval", "all"):
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


# -- project URLs and the description PyPI shows ------------------------------------------------

DOCUMENTATION = "https://developers.cloudflare.com/ai-search/"
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]*)")  # [text](target) and ![alt](target)
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S*?)>?(?:\s|$)", re.MULTILINE)  # [ref]: target
HTML_LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']*)""", re.IGNORECASE)


def _links(markdown: str) -> list[str]:
    return [
        m.group(1)
        for pattern in (LINK_TARGET, REFERENCE, HTML_LINK)
        for m in pattern.finditer(markdown)
    ]


def _absolute(target: str) -> bool:
    return re.match(r"https?://", target) is not None


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")
    with (ROOT / "pyproject.toml").open("rb") as f:
        data: dict = tomllib.load(f)
    return data


def _repository() -> str:
    url: str = _project()["project"]["urls"]["Repository"]
    return url


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        (meta_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        return HeaderParser().parsestr(zf.read(meta_name).decode())


def _sdist_metadata(sdist: Path) -> Message:
    with tarfile.open(sdist) as tf:
        (member,) = [
            m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
        ]
        data = tf.extractfile(member)
        assert data is not None
        return HeaderParser().parsestr(data.read().decode())


def test_the_repository_url_is_written_once_and_everything_derives_from_it():
    project = _project()
    repo = _repository()
    assert repo.startswith("https://")
    assert project["project"]["urls"]["Issues"] == f"{repo}/issues"
    subs = project["tool"]["hatch"]["metadata"]["hooks"]["fancy-pypi-readme"]["substitutions"]
    assert subs and all(s["replacement"].startswith(f"]({repo}") for s in subs)
    # nowhere else: the readme, the docs and the code link relatively or not at all
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    holders = [
        name
        for name in tracked
        if name != "pyproject.toml"
        and (ROOT / name).is_file()
        and repo.removeprefix("https://") in (ROOT / name).read_text(errors="replace")
    ]
    assert holders == []


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_metadata_has_the_project_urls_and_only_absolute_links(dist: tuple[Path, Path], kind):
    wheel, sdist = dist
    meta = _wheel_metadata(wheel) if kind == "wheel" else _sdist_metadata(sdist)
    repo = _repository()
    assert sorted(meta.get_all("Project-URL") or []) == sorted(
        [f"Repository, {repo}", f"Issues, {repo}/issues", f"Documentation, {DOCUMENTATION}"]
    )
    assert meta["Description-Content-Type"] == "text/markdown"
    description = meta.get_payload()
    assert isinstance(description, str)
    assert description.startswith("# aisearch-py\n")  # the README, whole
    readme = (ROOT / "README.md").read_text()
    assert len(_links(description)) == len(_links(readme)) > 20
    relative = [t for t in _links(description) if not _absolute(t)]
    assert not relative, f"relative links on PyPI: {relative[:5]}"
    assert f"]({repo}/blob/main/docs/langchain.md)" in description
    assert f"]({repo}#install)" in description
    assert f"]({repo}/blob/main/docs/images/explorer.png?raw=true)" in description  # shown


def test_the_repository_readme_keeps_relative_links_to_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    files = [t for t in _links(readme) if not _absolute(t) and not t.startswith("#")]
    assert files, "README.md links no file of the repository relatively"
    missing = [t for t in files if not (ROOT / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
