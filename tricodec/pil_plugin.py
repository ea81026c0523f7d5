"""Pillow plugin: ``Image.open`` reads ``.tric`` files and ``img.save`` writes them.

    import tricodec.pil_plugin
    tricodec.pil_plugin.register()          # done by ``import tricodec``
    im = Image.open("photo.png.tric")       # size, mode and metadata from the header; no pixels decoded yet
    im.load()                               # decodes (tricodec.decode), checks the pixel CRC
    im.save("copy.tric")                    # == tricodec.encode(im); also im.save(buf, format="TRIC")

Format detection is by content (the magic ``b"TRIC"``), so a file without the ``.tric`` extension opens
too. ``save`` accepts ``device=`` and ``model=`` like :func:`tricodec.encode`; ``register(device=...,
model=...)`` sets the defaults that ``open`` and ``save`` use.

Errors: a file whose container is broken (bad version, truncated, trailing bytes ...) is refused by
``Image.open``; one whose pixels do not decode (corrupted lanes, CRC mismatch) by ``load()``. Both raise
:class:`TricImageError`, which is a :class:`tricodec.DecodeError` *and* an :class:`OSError` (what
Pillow's own plugins raise), so either ``except`` catches it. A 16-bit colour or grey+alpha file (modes
``RGB;16`` / ``RGBA;16`` / ``LA;16``) opens with mode ``RGB`` / ``RGBA`` / ``LA`` (as Pillow opens a
16-bit PNG) but ``load()`` refuses it
rather than truncate it: use :func:`tricodec.decode_array`. Saving an image tricodec cannot encode
raises :class:`TricSaveError` (an :class:`tricodec.EncodeError` and an :class:`OSError`).
"""
from __future__ import annotations

from typing import IO

import numpy as np
from PIL import Image, ImageFile

from . import codec, container, metadata
from .errors import DecodeError, EncodeError, TricodecError
from .pixels import DEEP_MODES

FORMAT = "TRIC"
EXTENSION = ".tric"
MIME = "image/x-tric"

# Defaults for ``open`` (which takes no options) and ``save`` (where ``device=``/``model=`` override them).
_defaults: dict = {"device": "auto", "model": None}


class TricImageError(DecodeError, OSError):
    """A ``.tric`` file that Pillow was asked to open or load cannot be decoded."""


class TricSaveError(EncodeError, OSError):
    """An image that Pillow was asked to save as ``.tric`` cannot be encoded."""


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == container.MAGIC


class TricImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "tricodec lossless image"

    #: the file's :class:`tricodec.container.Header` (mode ``RGB;16`` / ``RGBA;16`` for 16-bit colour)
    tric_header: container.Header | None = None
    _tric_data: bytes | None = None

    def _open(self) -> None:
        assert self.fp is not None
        if not _accept(self.fp.read(4)):
            raise SyntaxError("not a tricodec file")
        self.fp.seek(0)
        data = self.fp.read()
        try:
            header = codec.read_header(data)
            meta = codec.read_metadata(data)
        except DecodeError as e:
            raise TricImageError(f"cannot open tricodec file: {e}") from None
        self.tric_header = header
        self._tric_data = data
        self._size = (header.width, header.height)
        mode = {"RGBA;16": "RGBA", "RGB;16": "RGB", "LA;16": "LA"}.get(header.mode, header.mode)
        if isinstance(getattr(type(self), "mode", None), property):
            self._mode = mode
        else:  # Pillow 10.0: a plain attribute
            self.mode = mode
        metadata.apply(self, meta)
        # The pixels come from load() below, not from a Pillow tile decoder: this placeholder tile only
        # keeps Pillow's "not loaded yet" checks (``if im.tile``) truthful until then.
        tile = ("tric", (0, 0) + self.size, 0, None)
        self.tile = [ImageFile._Tile(*tile) if hasattr(ImageFile, "_Tile") else tile]  # Pillow < 11: a tuple

    def _decode(self):
        try:
            return codec.decode_any(self._tric_data, device=_defaults["device"], model=_defaults["model"])
        except DecodeError as e:
            raise TricImageError(f"cannot decode tricodec file: {e}") from None
        except TricodecError as e:  # the backend or the weights, not the file
            raise TricImageError(str(e)) from None

    def load(self):
        if self._tric_data is not None:
            if self.tric_header.mode in DEEP_MODES:
                raise TricImageError(f"16-bit image ({self.tric_header.mode}): Pillow cannot hold it "
                                     "without truncating it; use tricodec.decode_array")
            decoded = self._decode()
            if isinstance(decoded, np.ndarray) or decoded.mode != self.mode or decoded.size != self.size:
                raise TricImageError("decoded image does not match the header")  # pragma: no cover
            self.im = decoded.im
            if decoded.palette is not None:
                self.palette = decoded.palette.copy()
                self.palette.dirty = 0  # decoded.im already carries it
            self.info.update(decoded.info)
            self.tile = []
            self.readonly = 0
            self._tric_data = None
            if self.fp is not None and self._exclusive_fp and self._close_exclusive_fp_after_loading:
                self.fp.close()
            self.fp = None
        return Image.Image.load(self)

    def verify(self) -> None:
        """Decode the pixels and check their CRC (16-bit colour files included); keep nothing."""
        if self._tric_data is not None:
            self._decode()
        super().verify()


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    info = im.encoderinfo
    if info.get("append_images"):
        raise TricSaveError("a .tric file holds one image: append_images is not supported")
    try:
        data = codec.encode(im, device=info.get("device", _defaults["device"]),
                            model=info.get("model", _defaults["model"]))
    except TricodecError as e:  # EncodeError, or the backend / weights asked for
        raise TricSaveError(str(e)) from None
    fp.write(data)


def register(*, device: str | None = None, model=None) -> None:
    """Register the ``TRIC`` format with Pillow (open, save, ``.tric``, MIME type). Idempotent.

    ``device`` and ``model`` (as for :func:`tricodec.encode`) become the defaults of ``Image.open(...).load()``
    and ``img.save(..., format="TRIC")``; left out, the current ones stay (``"auto"``, the shipped model)."""
    if device is not None:
        _defaults["device"] = device
    if model is not None:
        _defaults["model"] = model
    # Every Pillow plugin first, in Pillow's own order: Pillow 11+ imports a plugin by file extension on
    # open, and tries formats in the order they were registered, so which reader a file gets would
    # depend on what the program opened before (a multi-size .ico opened after a .tga reads as TGA).
    Image.init()
    Image.register_open(FORMAT, TricImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_save_all(FORMAT, _save)  # one frame only: codec.encode refuses multi-frame images
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
