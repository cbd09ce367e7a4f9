"""A missing optional extra is named with its install command; other import errors are not."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisearch._extras import require_extra


def test_an_installed_module_passes() -> None:
    require_extra("json", "local", "aisearch-local")


def test_a_missing_module_names_the_extra_and_the_command() -> None:
    with pytest.raises(ModuleNotFoundError) as info:
        require_extra("no_such_framework.core", "langchain", "langchain_aisearch")
    assert str(info.value) == (
        'langchain_aisearch needs the [langchain] extra: pip install "aisearch-py[langchain]"'
    )
    assert info.value.name == "no_such_framework"


def test_a_module_missing_inside_the_framework_is_not_reworded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "half_installed.py").write_text("import some_dependency_it_lacks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="some_dependency_it_lacks") as info:
        require_extra("half_installed", "llamaindex", "llamaindex_aisearch")
    assert "extra" not in str(info.value)
