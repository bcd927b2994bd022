"""The Files API as data: OpenAI's `File` object, what an upload may say (its `purpose` and
`expires_after`), and the media types a file is read as."""

from __future__ import annotations

import mimetypes

from msgspec import UNSET, Struct, UnsetType

from rejoinder.protocol.errors import invalid

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
EXPIRY_SECONDS = (3600, 2_592_000)  # what `expires_after.seconds` may be: one hour to 30 days
BATCH_EXPIRY = 2_592_000  # a `batch` file with no `expires_after` goes after 30 days, as OpenAI's do


class FileObject(Struct, tag="file", tag_field="object"):
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    expires_at: int | UnsetType = UNSET  # absent for a file that never expires
    status: str = "processed"  # (deprecated by OpenAI; a stored file is always ready)


class FileDeleted(Struct, tag="file", tag_field="object"):
    id: str
    deleted: bool = True


def purpose_of(value: str | None) -> str:
    if value not in PURPOSES:
        raise invalid("purpose", f"Invalid 'purpose': expected one of {', '.join(PURPOSES)}, got '{(value or '')[:64]}'.")
    return value


def expires_at(anchor: str | None, seconds: str | None, purpose: str, now: int) -> int | None:
    """When a file uploaded `now` expires: `expires_after` (anchor `created_at`, 3,600 to
    2,592,000 seconds), else 30 days for `batch` files and never for the rest."""
    if anchor is None and seconds is None:
        return now + BATCH_EXPIRY if purpose == "batch" else None
    if anchor != "created_at":
        raise invalid("expires_after.anchor", "Invalid 'expires_after.anchor': expected 'created_at'.")
    try:
        after = int(seconds or "")
    except ValueError:
        raise invalid("expires_after.seconds", "Invalid 'expires_after.seconds': expected an integer.") from None
    low, high = EXPIRY_SECONDS
    if not low <= after <= high:
        raise invalid("expires_after.seconds", f"Invalid 'expires_after.seconds': expected a value between {low} and {high}, got {after}.")
    return now + after


def media_type(declared: str | None, filename: str) -> str:
    """What a file is: the type its upload declared (unless a generic one), else what its name
    says, else plain bytes."""
    if declared and declared != "application/octet-stream":
        return declared.split(";", 1)[0].strip().lower()
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
