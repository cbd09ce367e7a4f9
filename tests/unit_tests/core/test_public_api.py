"""Guard tests: the public surface is pinned and importing aisearch stays light."""

from __future__ import annotations

import pickle
import subprocess
import sys

import aisearch

EXPECTED_ALL = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "AISearchClient",
    "AISearchError",
    "AISearchPublicClient",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AllInstancesFailedError",
    "AsyncAISearchClient",
    "AsyncAISearchPublicClient",
    "AsyncEventStream",
    "AuthenticationError",
    "BadRequestError",
    "BoostBy",
    "CacheOptions",
    "ChatCompletion",
    "ChatMessage",
    "Choice",
    "Chunk",
    "ChunkItem",
    "ConflictError",
    "ContentPart",
    "EngineStats",
    "EventStream",
    "FanOutResult",
    "FileData",
    "FilePart",
    "ImageURL",
    "ImageURLPart",
    "IndexingError",
    "IndexingTimeoutError",
    "Instance",
    "InstanceError",
    "InstanceStats",
    "InternalServerError",
    "InvalidRequestError",
    "Item",
    "ItemChunk",
    "Job",
    "JobLog",
    "MethodNotAllowedError",
    "Namespace",
    "NotFoundError",
    "OtherPart",
    "PartialFailureError",
    "PermissionDeniedError",
    "QueryRewriteOptions",
    "R2Stats",
    "RateLimitError",
    "RerankingOptions",
    "RetrievalOptions",
    "ScoringDetails",
    "SearchOptions",
    "SearchResult",
    "SearchTarget",
    "SourcesEvent",
    "StreamEndEvent",
    "StreamEvent",
    "StreamInterruptedError",
    "TextDeltaEvent",
    "TextPart",
    "Usage",
    "VectorizeStats",
    "__version__",
    "coerce_options",
    "format_validation_error",
    "to_legacy_filter",
    "validate_filters",
]


def test_all_is_pinned_and_sorted():
    assert aisearch.__all__ == EXPECTED_ALL
    for name in aisearch.__all__:
        assert hasattr(aisearch, name), name


def test_version():
    assert aisearch.__version__ == "0.1.0"


def test_error_tree():
    assert issubclass(aisearch.InvalidRequestError, aisearch.AISearchError)
    assert issubclass(aisearch.InvalidRequestError, ValueError)
    assert issubclass(aisearch.APITimeoutError, aisearch.APIConnectionError)
    for name in (
        "BadRequestError",
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "ConflictError",
        "RateLimitError",
        "InternalServerError",
    ):
        assert issubclass(getattr(aisearch, name), aisearch.APIStatusError)
    for name in (
        "APIResponseValidationError",
        "StreamInterruptedError",
        "IndexingError",
        "IndexingTimeoutError",
        "AllInstancesFailedError",
        "PartialFailureError",
        "APIStatusError",
        "APIConnectionError",
    ):
        assert issubclass(getattr(aisearch, name), aisearch.AISearchError)


def test_all_instances_failed_error_message():
    errors = [
        aisearch.InstanceError(instance_id="a", message="down"),
        aisearch.InstanceError(instance_id="b", message="gone"),
    ]
    err = aisearch.AllInstancesFailedError(errors)
    assert err.errors == errors
    assert str(err) == "all 2 instance(s) failed: a: down; b: gone"
    assert str(aisearch.AllInstancesFailedError([], "custom")) == "custom"


def test_partial_failure_error_keeps_errors_and_results():
    errors = [aisearch.InstanceError(instance_id="b", message="down")]
    err = aisearch.PartialFailureError(errors, ["node"])
    assert err.errors == errors
    assert err.results == err.nodes == ["node"]
    assert str(err) == "1 instance(s) failed: b: down"
    assert aisearch.PartialFailureError(errors).results == []
    # LlamaIndex's InstanceFailureError(errors, nodes=...) keeps working under the new name
    assert aisearch.PartialFailureError(errors=errors, nodes=["n"]).nodes == ["n"]
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), str(again), again.results) == (type(err), str(err), ["node"])


def test_import_loads_no_framework_or_server_code():
    code = (
        "import sys, aisearch\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'langchain', 'llama_index', 'aisearch_local', 'starlette', 'uvicorn', "
        "'numpy', 'langchain_aisearch', 'llamaindex_aisearch'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert out.stderr == ""


def test_import_has_no_side_effects_on_logging():
    code = (
        "import logging, aisearch\n"
        "print(len(logging.getLogger('aisearch').handlers), len(logging.getLogger().handlers))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "0"]
