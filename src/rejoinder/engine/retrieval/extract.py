"""The text of a stored file, for its chunks: PDF (pypdf), HTML (Beautiful Soup), and anything
that is text (plain, Markdown, source code, JSON, CSV …) as it is. The parsers are imported by
their first use: a gateway that never ingests a file never loads them."""

from __future__ import annotations

import io

from rejoinder.providers.translate import is_text

_HTML = ("text/html", "application/xhtml+xml")


class Unreadable(ValueError):
    """A file whose text cannot be had: `code` is OpenAI's (`unsupported_file`, `invalid_file`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def text_of(filename: str, media_type: str, content: bytes) -> str:
    if media_type == "application/pdf" or filename.lower().endswith(".pdf"):
        return _pdf(content)
    if media_type in _HTML:
        from bs4 import BeautifulSoup

        return BeautifulSoup(content, "html.parser").get_text("\n", strip=True)
    if is_text(media_type) or media_type == "application/octet-stream" and _looks_like_text(content):
        return content.decode("utf-8", "replace")
    raise Unreadable("unsupported_file", f"Files of type {media_type} cannot be searched: only text, Markdown, HTML, source code and PDF.")


def _pdf(content: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise Unreadable("invalid_file", f"The PDF could not be read ({type(exc).__name__}).") from None


def _looks_like_text(content: bytes) -> bool:
    head = content[:4096]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a character cut at the end of the sample
    return True
