"""Uploads: a multipart body streamed straight to disk, each file's type sniffed from its bytes.

Starlette's ``request.form()`` would spool big files into the system temp folder and trust
nothing but the parts' headers; here python-multipart's streaming parser writes every file
into the request's own folder as the bytes arrive, the size limit is checked on the running
total (a client's Content-Length is only an early hint), and a file is kept only if its first
bytes say it is an image or video the model reads. The client's file name is kept for
reporting; on disk a file gets a generated name and the suffix of its sniffed type, so Pillow
and PyAV open it by the right demuxer and no client string ever becomes a path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from lrcn.errors import LrcnError

__all__ = [
    "FILE_FIELD",
    "MAX_FIELD_BYTES",
    "Form",
    "Media",
    "Upload",
    "UploadError",
    "check_declared_size",
    "read_form",
    "sniff",
]

Kind = Literal["image", "video"]
FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024  # a text field (an option value); a longer one is not an option
SNIFF_BYTES = 512  # enough for every signature below (MPEG-TS needs its second sync byte)
_ISO_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}


class UploadError(LrcnError):
    """An upload the server refuses: its HTTP ``status``, a short ``reason`` for the metrics
    (too_large, unsupported_type, wrong_kind, bad_form) and a one-line message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Media:
    """What a file's first bytes say it is: its kind, a suffix its decoder knows, a name."""

    kind: Kind
    suffix: str
    label: str


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the client's ``name`` (for reporting only) and where it was saved."""

    name: str
    path: Path
    media: Media
    size: int


@dataclass
class Form:
    """A parsed multipart body: the files of the ``file`` field, in order, and text fields."""

    files: list[Upload] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def sniff(head: bytes) -> Media | None:
    """The media type of a file from its first bytes (at least 12; 189 to recognise MPEG-TS),
    or None for anything else; names and declared content types are never consulted."""
    if head.startswith(b"\xff\xd8\xff"):
        return Media("image", ".jpg", "a JPEG image")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Media("image", ".png", "a PNG image")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Media("image", ".gif", "a GIF image")
    if head.startswith(b"BM") and len(head) >= 14:
        return Media("image", ".bmp", "a BMP image")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Media("image", ".webp", "a WebP image")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Media("video", ".avi", "an AVI video")
    if head[4:8] == b"ftyp":  # ISO BMFF; HEIF/AVIF photos share the box layout
        brand = head[8:12]
        if brand in _ISO_IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return Media("video", ".mov", "a QuickTime video")
        return Media("video", ".mp4", "an MP4 video")
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska and WebM
        return Media("video", ".mkv", "a Matroska/WebM video")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Media("video", ".mpg", "an MPEG program stream")
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return Media("video", ".ts", "an MPEG transport stream")
    return None


_EXPECTED = {
    "image": "an image (JPEG, PNG, GIF, BMP or WebP)",
    "video": "a video (MP4, MOV, AVI, WebM/MKV or MPEG)",
}


def _client_name(raw: str | None, n: int) -> str:
    """The last component of the client's file name (browsers send only that; other clients
    may send a path); only ever reported back, never used on disk."""
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    return name or f"file-{n + 1}"


class _FormWriter:
    """The parser's callbacks: headers collected per part, file bytes written as they come."""

    def __init__(self, folder: Path, expect: Kind | None) -> None:
        self.folder = folder
        self.expect = expect
        self.form = Form()
        self.ended = False
        self._headers: dict[str, str] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._field: str | None = None
        self._client_name: str | None = None
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self._head = bytearray()
        self._size = 0
        self._value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = None
        self._client_name = None
        self._head = bytearray()
        self._size = 0
        self._value = bytearray()

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").strip().lower()
        self._headers[name] = self._header_value.decode("latin-1").strip()
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition", "")
        _, params = parse_options_header(disposition)
        raw_name = params.get(b"name")
        if raw_name is None:
            raise UploadError(422, "bad_form", "a form part has no name (Content-Disposition)")
        self._field = raw_name.decode("utf-8", "replace")
        raw_filename = params.get(b"filename")
        if raw_filename is None:
            if self._field == FILE_FIELD:
                raise UploadError(
                    422, "bad_form", f"form field {FILE_FIELD!r} must be a file, not text"
                )
            return
        if self._field != FILE_FIELD:
            raise UploadError(
                422,
                "bad_form",
                f"form field {self._field!r} is a file; files go in the field {FILE_FIELD!r}",
            )
        n = len(self.form.files)
        self._client_name = _client_name(raw_filename.decode("utf-8", "replace"), n)
        self._file_path = self.folder / f"upload-{n}.part"
        self._file = self._file_path.open("wb")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None:
            self._file.write(chunk)
            if len(self._head) < SNIFF_BYTES:
                self._head.extend(chunk[: SNIFF_BYTES - len(self._head)])
            self._size += len(chunk)
            return
        self._value.extend(chunk)
        if len(self._value) > MAX_FIELD_BYTES:
            raise UploadError(413, "too_large", f"form field {self._field!r} is longer than 64 KiB")

    def _part_end(self) -> None:
        if self._file is None:
            self._text_field()
            return
        self.close()
        assert self._file_path is not None and self._client_name is not None
        if self._size == 0:  # a browser's form with no file chosen sends an empty part
            self._file_path.unlink()
            return
        media = sniff(bytes(self._head))
        if media is None:
            raise UploadError(
                415,
                "unsupported_type",
                f"{self._client_name}: not an image or video this server reads; expected "
                f"{_EXPECTED[self.expect] if self.expect else 'an image or a video'}",
            )
        if self.expect is not None and media.kind != self.expect:
            raise UploadError(
                415,
                "wrong_kind",
                f"{self._client_name} is {media.label}; "
                f"this model expects {_EXPECTED[self.expect]}",
            )
        n = len(self.form.files)
        path = self._file_path.rename(self.folder / f"input-{n}{media.suffix}")
        self.form.files.append(Upload(self._client_name, path, media, self._size))

    def _text_field(self) -> None:
        assert self._field is not None
        if self._field in self.form.fields:
            raise UploadError(422, "bad_form", f"form field {self._field!r} is given twice")
        try:
            self.form.fields[self._field] = self._value.decode("utf-8")
        except UnicodeDecodeError:
            raise UploadError(
                422, "bad_form", f"form field {self._field!r} is not UTF-8 text"
            ) from None

    def _end(self) -> None:
        self.ended = True


def _limit_text(limit: int) -> str:
    mb = limit / 2**20
    return f"{mb:g} MB" if mb >= 1 else f"{limit} bytes"


def check_declared_size(content_length: str | None, limit: int) -> None:
    """Refuse at once a body whose Content-Length already says it is over ``limit`` bytes."""
    declared = (content_length or "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise UploadError(
            413, "too_large", f"the upload is larger than the limit of {_limit_text(limit)}"
        )


async def read_form(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    folder: Path,
    *,
    limit: int,
    expect: Kind | None = None,
) -> Form:
    """Parse a ``multipart/form-data`` body from ``chunks`` into ``folder``: files of the
    ``file`` field are saved under generated names and must sniff as ``expect`` ("image" or
    "video"); other fields are text. Raises :class:`UploadError` as soon as the body passes
    ``limit`` bytes, a file is not of the expected kind, or the body is malformed; the caller
    removes ``folder`` whatever happens."""
    mime, params = parse_options_header(content_type or "")
    if mime in (b"", b"application/x-www-form-urlencoded"):  # a form, but one without files
        raise UploadError(
            422, "bad_form", f"no file: send multipart/form-data with files in {FILE_FIELD!r}"
        )
    if mime != b"multipart/form-data":
        raise UploadError(
            415, "bad_form", f"the body is {mime.decode('latin-1')}; expected multipart/form-data"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(422, "bad_form", "multipart/form-data without a boundary")
    writer = _FormWriter(folder, expect)
    parser = MultipartParser(boundary, writer.callbacks())  # type: ignore[arg-type]
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise UploadError(
                    413, "too_large", f"the upload is larger than the limit of {_limit_text(limit)}"
                )
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as err:
        raise UploadError(422, "bad_form", f"malformed multipart body ({err})") from None
    finally:
        writer.close()
    if not writer.ended:
        raise UploadError(422, "bad_form", "the multipart body ended before its last boundary")
    return writer.form
