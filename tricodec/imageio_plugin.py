"""imageio plugin (v3 plugin API): ``imageio.v3.imread("x.tric")``, ``imwrite``, ``improps``, ``immeta``.

    import imageio.v3 as iio
    import tricodec                          # registers the plugin when imageio is installed
    array = iio.imread("photo.png.tric")     # == tricodec.decode_array(data): 16-bit files as uint16
    iio.imwrite("copy.tric", array)          # == tricodec.encode(array)
    iio.imread(data, extension=".tric")      # bytes in memory; or plugin="tricodec" for any name
    iio.imread("anim.png.tric", index=2)     # frame 2 of a multi-frame file; index=... all of them stacked

Registration (:func:`register`) is what imageio documents for plugins outside its tree: a
``PluginConfig`` in ``imageio.config.known_plugins`` and a ``FileExtension`` for ``.tric`` (this plugin
first) in ``imageio.config.known_extensions``. Reading is recognised by content (the magic ``b"TRIC"``),
and the plugin comes first in imageio's search through every plugin, so ``.tric`` data under any other
name (or bytes without ``extension=``) reads here too, at full depth; writing needs the
``.tric`` extension (``extension=".tric"`` for bytes). ``read``/``write`` accept ``device=`` and ``model=`` like
:func:`tricodec.decode_array` / :func:`tricodec.encode`.

Multi-frame files (:func:`tricodec.encode_frames`: APNG, GIF, multi-page TIFF, ICO, ICNS) are read frame
by frame through the same calls, each frame what :func:`tricodec.decode_array` gives for it (16-bit frames
as uint16; GIF and other palette frames as their colour indices). Frames are the raw frames the file
stores, not composited canvases: an APNG or GIF frame may be smaller than the canvas, at an offset its
metadata gives. ``index`` follows imageio's Pillow plugin:

* ``index=k`` (an int): frame k; ``imiter`` yields every frame, one decoded at a time;
* ``index=...``: all frames stacked on a new first axis, refused (ValueError, before any decoding) when
  their shapes or dtypes differ (ICO sizes, APNG/GIF sub-frames): read those with ``index=k`` or ``imiter``;
* ``index=None`` (the default of ``imread``, ``improps`` and ``immeta``): ``...`` for an animation (APNG,
  GIF; Pillow reads those whole too), frame 0 for a collection of pages or sizes (TIFF, ICO, ICNS);
* any other index: :class:`ImageIndexError` (an IndexError, and the ValueError imageio's API names).

``improps(index=...)`` gives ``n_images``. ``immeta(index=k)`` gives frame k's ``mode``, ``bit_depth``
and kept metadata (a TIFF page's resolution, ICC profile ...) like a single image's, with ``kind`` and
the frame's parameters: APNG ``duration`` (ms), ``delay`` (numerator, denominator), ``offset``,
``disposal``, ``blend`` (fcTL op codes) or ``hidden`` (a default image outside the animation); GIF
``duration``, ``disposal``, ``transparency``, ``offset``, ``palette`` ((n, 3) uint8, the frame's colour
table), ``comment``; ICO ``icon_format`` ("png" or "bmp") and a cursor's ``hotspot``; ICNS ``icns_type``;
and ``loop`` (APNG, GIF: 0 = forever). ``immeta(index=...)`` gives the file's: ``kind``, ``n_images``,
``loop`` and ``durations`` (ms per frame, None for a hidden default image) for animations, and the first
frame's ``mode`` and ``bit_depth``.

A single-image ``.tric`` file holds one image: ``index`` 0, ``None`` and ``...`` (a batch of one) read it,
any other index raises ImageIndexError. Writing stays single-image: a batch of more than one image
raises EncodeError (multi-frame files are written by :func:`tricodec.encode_frames` from their source).
"""
from __future__ import annotations

import struct

import numpy as np
from PIL import Image

from . import codec, container, frames
from .errors import EncodeError
from .pixels import DEEP_MODES

NAME = "tricodec"
EXTENSION = ".tric"

try:
    from imageio.core.request import URI_BYTES, InitializationError, IOMode
    from imageio.core.v3_plugin_api import ImageProperties, PluginV3
except ImportError:  # the class below needs imageio; register() says so when it is missing
    PluginV3 = object


class ImageIndexError(IndexError, ValueError):
    """An index the file has no image for (an IndexError; imageio's v3 API names ValueError)."""


ANIMATIONS = ("APNG", "GIF")   # index=None reads these whole (as imageio's Pillow plugin does)


def _is_int(index) -> bool:
    return isinstance(index, (int, np.integer)) and not isinstance(index, bool)


def _check_index(index) -> None:
    if index is None or index is Ellipsis or (_is_int(index) and int(index) == 0):
        return
    raise ImageIndexError(f"a .tric file holds one image: index {index!r} does not exist (use 0)")


def _layout(header: container.Header) -> tuple[tuple, np.dtype]:
    """Shape and dtype of what :func:`tricodec.decode_array` returns for a file with this header."""
    h, w = header.height, header.width
    if header.mode in DEEP_MODES:
        return (h, w, header.channels), np.dtype(np.uint16)
    probe = np.asarray(Image.new(header.mode, (1, 1)))
    return (h, w) + probe.shape[2:], probe.dtype


def _gif_extensions(ext: bytes) -> dict:
    """Duration (ms), disposal, transparency, loop and comment from a GIF frame's extension blocks."""
    out, pos = {}, 0
    while pos + 2 <= len(ext) and ext[pos] == 0x21:
        label, blocks, pos = ext[pos + 1], [], pos + 2
        while pos < len(ext) and ext[pos]:
            blocks.append(ext[pos + 1:pos + 1 + ext[pos]])
            pos += 1 + ext[pos]
        pos += 1
        if label == 0xF9 and blocks and len(blocks[0]) == 4:          # graphic control extension
            packed, delay, transparent = struct.unpack("<BHB", blocks[0])
            out["duration"], out["disposal"] = 10.0 * delay, (packed >> 2) & 7
            if packed & 1:
                out["transparency"] = transparent
        elif label == 0xFF and len(blocks) > 1 and blocks[0] in (b"NETSCAPE2.0", b"ANIMEXTS1.0") \
                and len(blocks[1]) == 3 and blocks[1][0] == 1:
            out["loop"] = struct.unpack("<H", blocks[1][1:])[0]
        elif label == 0xFE:
            out["comment"] = out.get("comment", b"") + b"".join(blocks)
    return out


def _frame_params(kind: str, info: dict, params: dict) -> dict:
    """A frame's stored parameters as imageio metadata (names as Pillow's ``info`` has them)."""
    if kind == "APNG":
        timing = frames.Frame(None, params).timing
        return {"hidden": True} if timing.get("hidden") else timing
    if kind == "GIF":
        out = {k: v for k, v in _gif_extensions(params["ext"]).items() if k != "loop"}
        table = params["lct"] or info["head"][13:]
        out["offset"] = struct.unpack("<HH", params["desc"][:4])
        out["palette"] = np.frombuffer(table, np.uint8).reshape(-1, 3).copy()
        return out
    if kind == "ICO":
        out = {"icon_format": "png" if "png" in params else "bmp"}
        if info["type"] == b"\x02\x00":
            out["hotspot"] = struct.unpack("<HH", params["entry"][4:8])
        return out
    if kind == "ICNS":
        return {"icns_type": params["type"].decode("latin-1")}
    return {}


def _loop(kind: str, info: dict, params: list) -> dict:
    if kind == "APNG":
        return {"loop": struct.unpack("<I", info["num_plays"])[0]}
    if kind == "GIF":
        loops = [_gif_extensions(p["ext"]).get("loop") for p in params]
        loops = [n for n in loops if n is not None]
        return {"loop": loops[0]} if loops else {}
    return {}


class TricPlugin(PluginV3):
    """The v3 plugin over one ``.tric`` resource (a path, a file object or bytes)."""

    def __init__(self, request, *, device: str = "auto", model=None) -> None:
        super().__init__(request)
        self._device, self._model = device, model
        self._data, self._written, self._frames = None, False, None
        if request.mode.io_mode == IOMode.read:
            f = request.get_file()
            start = f.tell()
            if f.read(len(container.MAGIC)) != container.MAGIC:
                f.seek(start)
                raise InitializationError(f"{request.raw_uri if request._uri_type != URI_BYTES else '<bytes>'} "
                                          "is not a .tric file")
            self._data = container.MAGIC + f.read()
        elif (request.extension or request.format_hint) != EXTENSION:
            raise InitializationError(f"the tricodec plugin writes {EXTENSION} files (for bytes: "
                                      f"extension='{EXTENSION}'), not {request.extension or request.format_hint}")

    # ---- multi-frame files ------------------------------------------------------------------------

    def _multi(self):
        """(kind, info, [(params, frame bytes)]) of a multi-frame file, checked whole once; None for one image."""
        if not frames.is_frames(self._data):
            return None
        if self._frames is None:
            _, kind, info, items = frames.read_frames_info(self._data)
            self._frames = kind, info, [(p, bytes(one)) for p, one in items]
        return self._frames

    def _frame_index(self, index, n: int, kind: str):
        """``index`` for a file of n frames: None -> its default (see the module docstring), an int
        checked, ``...`` kept."""
        if index is None:
            return Ellipsis if kind in ANIMATIONS else 0
        if index is Ellipsis:
            return index
        if _is_int(index) and 0 <= int(index) < n:
            return int(index)
        raise ImageIndexError(f"this {kind} .tric file holds {n} frames: index {index!r} does not exist "
                              f"(0 to {n - 1}, or ... for all)")

    def _stacked_layout(self, kind: str, items: list) -> tuple[tuple, np.dtype]:
        layouts = [_layout(container.unpack(one)[0]) for _, one in items]
        if len(set(layouts)) > 1:
            shapes = ", ".join(f"{shape}" for shape, _ in layouts[:6]) + (", ..." if len(layouts) > 6 else "")
            raise ValueError(f"the {len(items)} frames of this {kind} .tric file cannot be stacked (index=...): "
                             f"their shapes or dtypes differ ({shapes}); read them one at a time with "
                             "index=k or imageio.v3.imiter")
        return layouts[0]

    def _decode(self, one: bytes, device, model) -> np.ndarray:
        return np.asarray(codec.decode_array(one, device=device or self._device, model=model or self._model))

    # ---- the v3 API -------------------------------------------------------------------------------

    def read(self, *, index=None, device: str | None = None, model=None) -> np.ndarray:
        """The image as :func:`tricodec.decode_array` gives it; ``index=...``: with a batch axis (of one for
        a single-image file). Multi-frame files: ``index=k`` frame k, ``index=...`` all frames stacked (one
        shape only), ``index=None`` all for APNG and GIF, frame 0 for TIFF, ICO and ICNS."""
        multi = self._multi()
        if multi is None:
            _check_index(index)
            array = self._decode(self._data, device, model)
            return array[None] if index is Ellipsis else array
        kind, _, items = multi
        index = self._frame_index(index, len(items), kind)
        if index is not Ellipsis:
            return self._decode(items[index][1], device, model)
        self._stacked_layout(kind, items)          # refused before anything is decoded
        images = codec.decode_batch([one for _, one in items], device=device or self._device,
                                    model=model or self._model)
        return np.stack([np.asarray(im) for im in images])

    def iter(self, *, device: str | None = None, model=None):
        """Every frame (a single-image file: its one image), one decoded at a time."""
        multi = self._multi()
        if multi is None:
            yield self.read(index=0, device=device, model=model)
            return
        for _, one in multi[2]:
            yield self._decode(one, device, model)

    def write(self, ndimage, *, is_batch: bool | None = None, device: str | None = None, model=None):
        """Encode one image (numpy array, torch tensor or PIL image, what :func:`tricodec.encode` takes).
        Returns the bytes when the resource is ``"<bytes>"``."""
        if isinstance(ndimage, (list, tuple)):
            images = list(ndimage)
        elif isinstance(ndimage, Image.Image):
            images = [ndimage]
        else:
            array = ndimage if hasattr(ndimage, "shape") else np.asarray(ndimage)
            if is_batch is None:
                is_batch = array.ndim == 4 or (array.ndim == 3 and array.shape[-1] > 4)
            images = list(array) if is_batch else [array]
        if len(images) != 1:
            raise EncodeError(f"a .tric file holds one image, got a batch of {len(images)}")
        if self._written:
            raise EncodeError("a .tric file holds one image, and this one is written already")
        data = codec.encode(images[0], device=device or self._device, model=model or self._model)
        self._written = True
        if self.request._uri_type == URI_BYTES:
            return data
        self.request.get_file().write(data)
        return None

    def properties(self, index=None) -> ImageProperties:
        """Shape and dtype from the headers, without decoding the pixels; ``index=...``: ``n_images``."""
        multi = self._multi()
        if multi is None:
            _check_index(index)
            shape, dtype = _layout(codec.read_header(self._data))
            if index is Ellipsis:
                return ImageProperties(shape=(1,) + shape, dtype=dtype, n_images=1, is_batch=True)
            return ImageProperties(shape=shape, dtype=dtype)
        kind, _, items = multi
        index = self._frame_index(index, len(items), kind)
        if index is Ellipsis:
            shape, dtype = self._stacked_layout(kind, items)
            return ImageProperties(shape=(len(items),) + shape, dtype=dtype, n_images=len(items), is_batch=True)
        shape, dtype = _layout(container.unpack(items[index][1])[0])
        return ImageProperties(shape=shape, dtype=dtype)

    def metadata(self, index=None, exclude_applied: bool = True) -> dict:
        """The header's mode and bit depth, and the metadata the file keeps (:func:`tricodec.read_metadata`:
        ``icc``, ``exif``, ``xmp``, ... as raw bytes). Multi-frame files: frame k's, with its timing and
        other parameters (``index=k``), or the file's (``index=...``; see the module docstring). Nothing
        is applied to the pixels read, so ``exclude_applied`` leaves nothing out."""
        multi = self._multi()
        if multi is None:
            if index is not Ellipsis:
                _check_index(index)
            header = codec.read_header(self._data)
            return {"mode": header.mode, "bit_depth": header.bit_depth, **codec.read_metadata(self._data)}
        kind, info, items = multi
        index = self._frame_index(index, len(items), kind)
        params = [p for p, _ in items]
        if index is Ellipsis:
            header = container.unpack(items[0][1])[0]
            out = {"mode": header.mode, "bit_depth": header.bit_depth, "kind": kind, "n_images": len(items),
                   **_loop(kind, info, params)}
            if kind in ANIMATIONS:
                out["durations"] = [_frame_params(kind, info, p).get("duration") for p in params]
            return out
        one = items[index][1]
        header = container.unpack(one)[0]
        return {"mode": header.mode, "bit_depth": header.bit_depth, **codec.read_metadata(one), "kind": kind,
                **_loop(kind, info, params), **_frame_params(kind, info, params[index])}


def register() -> bool:
    """Make ``.tric`` known to imageio (idempotent). False when imageio is not installed."""
    try:
        from imageio.config import FileExtension, PluginConfig, extension_list, known_extensions, known_plugins
    except ImportError:
        return False
    # First in the order imageio tries every plugin for a name without a known extension: content is
    # recognised from 4 bytes, and Pillow (through tricodec's Pillow plugin) would open a .tric at 8 bits.
    others = [(k, v) for k, v in known_plugins.items() if k != NAME]
    known_plugins.clear()
    known_plugins[NAME] = PluginConfig(name=NAME, class_name="TricPlugin", module_name=__name__)
    known_plugins.update(others)
    formats = known_extensions.setdefault(EXTENSION, [])
    if not any(NAME in f.priority for f in formats):
        ext = FileExtension(extension=EXTENSION, priority=[NAME], name="TRIC",
                            description="tricodec lossless image")
        formats.insert(0, ext)
        extension_list.append(ext)
    return True
