# GENERATED from aisearch/_async/__init__.py by scripts/unasync.py: do not edit by hand.
"""The clients (sync).

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``.
"""
