"""Optional extras: importing what an extra installs, or saying how to install it."""

from __future__ import annotations

from importlib import import_module

__all__ = ["require_extra"]


def require_extra(module: str, extra: str, user: str) -> None:
    """Import ``module``; when it is not installed, say which extra of aisearch-py installs it.

    Raises:
        ModuleNotFoundError: ``"<user> needs the [<extra>] extra: pip install ..."`` when
            ``module`` (or its top-level package) is missing; another missing module is
            re-raised as it is.
    """
    try:
        import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != module.partition(".")[0]:
            raise
        message = f'{user} needs the [{extra}] extra: pip install "aisearch-py[{extra}]"'
        raise ModuleNotFoundError(message, name=exc.name) from exc
