"""The clients (async).

The async module (``aisearch/_async/``) is written by hand; its sync twin (``aisearch/_sync/``)
is generated from it by ``scripts/unasync.py``.
"""
