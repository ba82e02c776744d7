"""Strict reading of text files block by block: a decoding error or a NUL byte named exactly."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pipeline.extract.base import ExtractError

SCAN_BLOCK = 1 << 18


class TextCheck:
    """Decodes a file fed block by block (``feed(b"")`` at the end); the first decoding error
    or NUL byte is an :class:`ExtractError` naming ``origin``, the line, the byte offset and the
    fix."""

    def __init__(self, origin: str, encoding: str) -> None:
        self._origin = origin
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._offset = 0
        self._lines = 1

    def feed(self, block: bytes) -> str:
        """The text of ``block`` (an empty ``block`` ends the file: a cut-off character fails)."""
        pending = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(block, final=not block)
        except UnicodeDecodeError as error:
            if not block:
                raise self._error(self._lines, self._offset, error) from None
            at = self._offset - pending + error.start
            line = self._lines + block[: max(0, at - self._offset)].count(b"\n")
            raise self._error(line, at, error) from None
        _refuse_nul(self._origin, text, self._lines)
        self._lines += text.count("\n")
        self._offset += len(block)
        return text

    def _error(self, line: int, at: int, error: UnicodeDecodeError) -> ExtractError:
        return ExtractError(
            f"{self._origin}:{line}: not valid {self._encoding} at byte offset {at} "
            f"({error.reason}); set `encoding:` for this source to the export's encoding (often "
            "cp1252 or latin-1)"
        )


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")


def check_text(
    path: Path, origin: str, encoding: str, *, opener: Callable[[Path], BinaryIO] = _open_binary
) -> None:
    """Decode the whole file in blocks; a decoding error or a NUL byte is an :class:`ExtractError`
    naming ``origin``, the line, the byte offset and the fix."""
    check = TextCheck(origin, encoding)
    try:
        with opener(path) as handle:
            while block := handle.read(SCAN_BLOCK):
                check.feed(block)
    except OSError as error:
        raise ExtractError(f"{origin}: cannot read the file: {error.strerror}") from None
    check.feed(b"")


def _refuse_nul(origin: str, text: str, first_line: int) -> None:
    at = text.find("\x00")
    if at >= 0:
        line = first_line + text.count("\n", 0, at)
        raise ExtractError(
            f"{origin}:{line}: the file contains a NUL byte (\\0); the export is probably "
            "truncated, binary or UTF-16 (then set `encoding: utf-16`). The pipeline refuses it "
            "rather than change finance data silently: fix or re-run the export"
        )
