"""The pytest plugin (``aisearch_local.pytest_plugin``), run in a user's suite by ``pytester``.

The inner suites run in this process (``runpytest``) with pytest-randomly off, so that their
tests run in the order written; the plugin is loaded from its ``pytest11`` entry point, as in a
project that installed ``aisearch-py[local]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from aisearch_local.sample_corpus import SAMPLE_CORPUS_DIR

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
INNER = ("-p", "no:randomly", "-p", "no:cacheprovider", "-p", "no:asyncio")


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """The inner sessions run in this process: none may leave a variable behind."""
    from aisearch._config import ENV_NAMES

    before = {k: os.environ.get(k) for k in ENV_NAMES}
    yield
    assert {k: os.environ.get(k) for k in ENV_NAMES} == before


def test_seeded_instance_environment_and_cleanup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import os
        from aisearch import AISearchClient

        FOLDER = {str(SAMPLE_CORPUS_DIR / "brewing")!r}
        CREATED = []
        BEFORE = os.environ.get("AISEARCH_BASE_URL")

        def test_search_a_seeded_instance(aisearch_instance, aisearch_server):
            name = aisearch_instance(source=FOLDER)
            CREATED.append(name)
            assert name.startswith("test-")
            assert os.environ["AISEARCH_BASE_URL"] == aisearch_server.base_url
            with AISearchClient() as client:  # application code: configured by the environment
                result = client.search(name, "espresso extraction time")
            assert result.chunks
            assert all(os.path.isfile(os.path.join(FOLDER, c.item.key)) for c in result.chunks)

        def test_named_empty_instance(aisearch_instance):
            assert aisearch_instance("my-app") == "my-app"
            with AISearchClient() as client:
                assert client.search("my-app", "anything").chunks == []

        def test_the_instances_are_gone_and_the_env_restored(aisearch_server):
            assert os.environ.get("AISEARCH_BASE_URL") == BEFORE
            with AISearchClient(
                account_id=aisearch_server.account_id,
                api_token=aisearch_server.token,
                base_url=aisearch_server.base_url,
            ) as client:
                ids = {{i.id for i in client.list_instances()}}
            assert CREATED and CREATED[0] not in ids and "my-app" not in ids
        """
    )
    pytester.runpytest(*INNER).assert_outcomes(passed=3)


def test_fault_fixture_injects_and_refuses_bad_fields(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from aisearch import AISearchClient, APIStatusError
        from aisearch_local.pytest_plugin import AISearchFixtureError

        def test_fault(aisearch_instance, aisearch_fault):
            name = aisearch_instance()
            aisearch_fault(name, status=503, code=7503, times=1)
            with AISearchClient(max_retries=0) as client:
                with pytest.raises(APIStatusError) as info:
                    client.search(name, "q")
                assert info.value.status_code == 503
                assert client.search(name, "q").chunks == []  # times=1: once only
            # an instance the test does not create (deleting one clears its fault)
            aisearch_fault("made-by-the-app", latency_ms=5)

        def test_bad_field(aisearch_instance, aisearch_fault):
            name = aisearch_instance()
            with pytest.raises(AISearchFixtureError, match="status.*between 400 and 599"):
                aisearch_fault(name, status=200)
            with pytest.raises(AISearchFixtureError, match="unknown fault field"):
                aisearch_fault(name, stauts=503)

        def test_faults_are_cleared_after_a_test(aisearch_server, aisearch_instance):
            assert aisearch_server.service.faults == {}
        """
    )
    pytester.runpytest(*INNER).assert_outcomes(passed=3)


def test_bad_source_folder_is_named(pytester: pytest.Pytester, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    pytester.makepyfile(
        f"""
        import pytest
        from aisearch_local.pytest_plugin import AISearchFixtureError

        def test_missing(aisearch_instance):
            with pytest.raises(AISearchFixtureError) as info:
                aisearch_instance(source={str(missing)!r})
            assert str(info.value) == (
                "aisearch_instance(source={str(missing)!r}): {missing} is not a folder"
            )

        def test_bad_name(aisearch_instance):
            with pytest.raises(AISearchFixtureError, match="400.*id"):
                aisearch_instance("Not_Valid!")
        """
    )
    pytester.runpytest(*INNER).assert_outcomes(passed=2)


def test_harmless_when_unused_and_disabled_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_nothing_of_the_server_is_loaded():
            assert "aisearch_local.testing" not in sys.modules
            assert "uvicorn" not in sys.modules

        def test_uses_the_fixture(aisearch_env):
            pass
        """
    )
    # a subprocess: this process has loaded the server already
    result = pytester.runpytest_subprocess(*INNER, "-k", "nothing")
    result.assert_outcomes(passed=1, deselected=1)
    result = pytester.runpytest_subprocess(*INNER, "-p", "no:aisearch_local")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'aisearch_env' not found*"])


def test_the_readme_fixture_example_runs(pytester: pytest.Pytester) -> None:
    """The README's "Testing your application" pytest block, as a user's test file."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Testing your application", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "one ```py block (the README runner skips it: it needs pytest)"
    docs = pytester.mkdir("tests")
    (docs / "docs").mkdir()
    (docs / "docs" / "espresso.md").write_text(
        "# Espresso\n\nPull a double shot in 25 to 30 seconds.\n", encoding="utf-8"
    )
    (docs / "test_app.py").write_text(blocks[0], encoding="utf-8")
    pytester.runpytest(*INNER).assert_outcomes(passed=2)


@pytest.fixture(scope="module")
def two_instance_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of two instances: default/brew (brewing) and team/beans (beans)."""
    from aisearch_local.service import LocalService
    from aisearch_local.snapshot import export_snapshot

    svc = LocalService(None)
    brew = svc.create_instance(
        "default", {"id": "brew"}, source_dir=str(SAMPLE_CORPUS_DIR / "brewing")
    )
    svc.sync_source(brew)
    svc.create_namespace("team", None, {})
    beans = svc.create_instance(
        "team", {"id": "beans"}, source_dir=str(SAMPLE_CORPUS_DIR / "beans")
    )
    svc.sync_source(beans)
    path = tmp_path_factory.mktemp("snap") / "two.zip"
    export_snapshot(svc.store, path)
    svc.close()
    return path


def test_instances_seeded_from_a_snapshot(
    pytester: pytest.Pytester, two_instance_snapshot: Path
) -> None:
    pytester.makepyfile(
        f"""
        import pytest
        from aisearch import AISearchClient
        from aisearch_local.pytest_plugin import AISearchFixtureError

        SNAP = {str(two_instance_snapshot)!r}

        def test_one_instance_of_the_snapshot_under_the_tests_name(aisearch_instance):
            name = aisearch_instance(snapshot=SNAP, snapshot_instance="team/beans")
            assert name.startswith("test-")
            with AISearchClient() as client:
                assert client.search(name, "arabica robusta").chunks
                keys = {{item.key for item in client.list_items(name)}}
            assert keys and all(not k.startswith("brewing") for k in keys)

        def test_the_same_snapshot_twice_under_two_names(aisearch_instance):
            a = aisearch_instance("a", snapshot=SNAP, snapshot_instance="brew")
            b = aisearch_instance("b", snapshot=SNAP, snapshot_instance="default/brew")
            with AISearchClient() as client:
                ra = client.search(a, "espresso extraction time")
                rb = client.search(b, "espresso extraction time")
            assert [c.score for c in ra.chunks] == [c.score for c in rb.chunks] != []

        def test_mistakes_are_named(aisearch_instance):
            with pytest.raises(AISearchFixtureError, match="holds 2 .* snapshot_instance="):
                aisearch_instance(snapshot=SNAP)
            with pytest.raises(AISearchFixtureError, match="no instance default/nope in"):
                aisearch_instance(snapshot=SNAP, snapshot_instance="nope")
            with pytest.raises(AISearchFixtureError, match="pass no source= and no config"):
                aisearch_instance(snapshot=SNAP, snapshot_instance="brew", chunk_size=64)
            with pytest.raises(AISearchFixtureError, match="no such file"):
                aisearch_instance(snapshot=SNAP + ".missing")

        def test_snapshot_instances_are_deleted_after_their_test(aisearch_server):
            with AISearchClient(
                account_id=aisearch_server.account_id,
                api_token=aisearch_server.token,
                base_url=aisearch_server.base_url,
            ) as client:
                assert {{i.id for i in client.list_instances()}} & {{"a", "b"}} == set()
        """
    )
    pytester.runpytest(*INNER).assert_outcomes(passed=4)
