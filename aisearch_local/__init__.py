"""aisearch_local: a local, wire-compatible Cloudflare AI Search server.

Run it with ``aisearch-local serve`` (see :mod:`aisearch_local.cli`), embed it in tests with
:class:`aisearch_local.testing.LocalServer`, or build the Starlette app yourself with
:func:`aisearch_local.app.create_app`. Importing this package loads nothing heavy.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
