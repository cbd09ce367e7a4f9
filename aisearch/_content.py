"""Message content parts: ``text``, ``image_url`` and ``file`` (API.md 4.1 and 18.1).

The last user message of a search or chat may carry a list of parts instead of a string::

    ChatMessage(role="user", content=[
        TextPart(text="What is this grinder?"),
        ImageURLPart(image_url={"url": "https://example.com/grinder.png"}),
    ])

Parsing is lenient (a part of a type this client does not know is kept as an ``OtherPart``, so
an answer never fails on it); :func:`check_parts` is the strict check of what a caller sends:
known types, an ``http(s)`` or ``data:image/...;base64,`` image URL, a file with ``file_data`` (a
base64 data URL of at most 10 MiB decoded, API.md 5.1) or ``file_id``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from aisearch._exceptions import InvalidRequestError

__all__ = [
    "PART_TYPES",
    "ContentPart",
    "FileData",
    "FilePart",
    "ImageURL",
    "ImageURLPart",
    "OtherPart",
    "TextPart",
    "check_parts",
    "content_error",
]

PART_TYPES = ("text", "image_url", "file")
"""The content part types the API takes."""

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Most decoded bytes of a ``file`` part's ``file_data`` (API.md 5.1)."""

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII)


class _Part(BaseModel):
    """Base of content parts: extra fields kept; ``type`` always serialised."""

    model_config = ConfigDict(extra="allow")

    def model_post_init(self, context: Any, /) -> None:  # noqa: ARG002
        # ``type`` has a default, and only set fields are sent: mark it set so it is sent.
        self.__pydantic_fields_set__.add("type")


class TextPart(_Part):
    """``{"type": "text", "text": ...}``."""

    type: Literal["text"] = "text"
    """Part discriminator."""
    text: str
    """The text."""


class ImageURL(BaseModel):
    """The ``image_url`` object of an image part."""

    model_config = ConfigDict(extra="allow")

    url: str
    """``https://...`` or ``data:image/<type>;base64,<data>``."""
    detail: Literal["auto", "low", "high"] | None = None
    """OpenAI's image detail hint, when sent."""


class ImageURLPart(_Part):
    """``{"type": "image_url", "image_url": {"url": ...}}``: an image to search with.

    A vector search of an image needs an image-capable embedding model on the instance (else
    400 / 7089, ``BadRequestError``).
    """

    type: Literal["image_url"] = "image_url"
    """Part discriminator."""
    image_url: ImageURL
    """The image."""


class FileData(BaseModel):
    """The ``file`` object of a file part."""

    model_config = ConfigDict(extra="allow")

    filename: str | None = None
    """File name."""
    file_data: str | None = None
    """``data:<mime>;base64,<data>``, at most 10 MiB decoded."""
    file_id: str | None = None
    """An uploaded file's id."""


class FilePart(_Part):
    """``{"type": "file", "file": {"filename", "file_data" | "file_id"}}``."""

    type: Literal["file"] = "file"
    """Part discriminator."""
    file: FileData
    """The file."""


class OtherPart(_Part):
    """A part of a type this client does not know (kept when parsing; refused when sending)."""

    type: Any = None
    """The part's ``type`` as sent."""


def _tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in PART_TYPES else "other"


ContentPart = Annotated[
    Annotated[TextPart, Tag("text")]
    | Annotated[ImageURLPart, Tag("image_url")]
    | Annotated[FilePart, Tag("file")]
    | Annotated[OtherPart, Tag("other")],
    Discriminator(_tag),
]
"""A message content part, told apart by its ``type``."""


def content_error(exc: ValidationError) -> str:
    """One readable problem of a list of parts: ``[1].image_url.url: must be a string (got 5)``.

    The first error of the list branch, its location without pydantic's union and tag names.
    """
    errors = exc.errors(include_url=False)
    err = next((e for e in errors if str(e["loc"][:1]).startswith("('list")), errors[0])
    loc = err["loc"][1:]
    where = f"[{loc[0]}]" if loc else ""
    tag = loc[1] if len(loc) > 1 else None
    where += "".join(f".{name}" for name in loc[2:])
    text = repr(err["input"])
    got = text if len(text) <= 80 else text[:80] + "..."
    if tag == "other" and not loc[2:]:
        problem = f"must be a {{type, ...}} part object (got {type(err['input']).__name__})"
    elif err["type"] == "string_type":
        problem = f"must be a string (got {got})"
    elif err["type"] == "missing":
        problem = "field required"
    elif err["type"] == "literal_error":
        problem = f"must be one of {(err.get('ctx') or {}).get('expected')} (got {got})"
    else:
        problem = f"{err['msg'][:1].lower()}{err['msg'][1:]} (got {got})"
    return f"{where}: {problem}"


def _data_url(url: str, path: str, *, image: bool) -> None:
    head = _DATA_URL.match(url)
    want = "data:image/<type>;base64,<data>" if image else "data:<mime>;base64,<data>"
    if head is None:
        raise InvalidRequestError(f"{path}: must be a base64 data URL ({want})")
    if image and not head.group(1).lower().startswith("image/"):
        raise InvalidRequestError(f"{path}: must be an image data URL (got {head.group(1)!r})")
    data = url[head.end() :]
    size = len(data) * 3 // 4 - (len(data) - len(data.rstrip("=")))
    if not image and size > MAX_FILE_BYTES:
        raise InvalidRequestError(
            f"{path}: a file may carry at most 10 MiB decoded (got {size / 2**20:.1f} MiB)"
        )


def check_parts(content: object, path: str) -> None:
    """Refuse the parts the API would refuse, before the network.

    An unknown part type, an image URL that is neither ``http(s)`` nor an image data URL, a
    file without ``file_data`` or ``file_id``, a file over 10 MiB decoded.

    Args:
        content: A validated message content (a string, parts or ``None``).
        path: The content's field path (``messages[0].content``).

    Raises:
        InvalidRequestError: Naming the part and what is allowed.
    """
    if not isinstance(content, list):
        return
    for j, part in enumerate(content):
        where = f"{path}[{j}]"
        if isinstance(part, OtherPart):
            got = part.type if isinstance(part.type, str) else type(part.type).__name__
            raise InvalidRequestError(
                f"{where}.type: must be one of 'text', 'image_url' or 'file' (got {got!r:.80})"
            )
        if isinstance(part, ImageURLPart):
            url = part.image_url.url
            if url[:5].lower() == "data:":
                _data_url(url, f"{where}.image_url.url", image=True)
            elif not url.lower().startswith(("https://", "http://")):
                # the URL itself is not echoed: it may be signed
                scheme = url.partition(":")[0] if ":" in url else ""
                raise InvalidRequestError(
                    f"{where}.image_url.url: must be an http(s) URL or a "
                    f"data:image/<type>;base64,... URL (got scheme {scheme[:16]!r})"
                )
        elif isinstance(part, FilePart):
            if part.file.file_data is None and part.file.file_id is None:
                raise InvalidRequestError(
                    f"{where}.file: must carry file_data (a base64 data URL) or file_id"
                )
            if part.file.file_data is not None:
                _data_url(part.file.file_data, f"{where}.file.file_data", image=False)
