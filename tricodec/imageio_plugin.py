"""imageio plugin (v3 plugin API): ``imageio.v3.imread("x.tric")``, ``imwrite``, ``improps``, ``immeta``.

    import imageio.v3 as iio
    import tricodec                          # registers the plugin when imageio is installed
    array = iio.imread("photo.png.tric")     # == tricodec.decode_array(data): 16-bit files as uint16
    iio.imwrite("copy.tric", array)          # == tricodec.encode(array)
    iio.imread(data, extension=".tric")      # bytes in memory; or plugin="tricodec" for any name

Registration (:func:`register`) is what imageio documents for plugins outside its tree: a
``PluginConfig`` in ``imageio.config.known_plugins`` and a ``FileExtension`` for ``.tric`` (this plugin
first) in ``imageio.config.known_extensions``. Reading is recognised by content (the magic ``b"TRIC"``),
and the plugin comes first in imageio's search through every plugin, so ``.tric`` data under any other
name (or bytes without ``extension=``) reads here too, at full depth; writing needs the
``.tric`` extension (``extension=".tric"`` for bytes). ``read``/``write`` accept ``device=`` and ``model=`` like
:func:`tricodec.decode_array` / :func:`tricodec.encode`.

A ``.tric`` file holds one image: ``index`` 0, ``None`` and ``...`` (a batch of one) read it, any other
index raises IndexError; writing a batch of more than one image raises EncodeError.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from . import codec, container
from .errors import EncodeError
from .pixels import DEEP_MODES

NAME = "tricodec"
EXTENSION = ".tric"

try:
    from imageio.core.request import URI_BYTES, InitializationError, IOMode
    from imageio.core.v3_plugin_api import ImageProperties, PluginV3
except ImportError:  # the class below needs imageio; register() says so when it is missing
    PluginV3 = object


def _check_index(index) -> None:
    if index is None or index is Ellipsis or (isinstance(index, (int, np.integer)) and int(index) == 0):
        return
    raise IndexError(f"a .tric file holds one image: index {index!r} does not exist (use 0)")


def _layout(header: container.Header) -> tuple[tuple, np.dtype]:
    """Shape and dtype of what :func:`tricodec.decode_array` returns for a file with this header."""
    h, w = header.height, header.width
    if header.mode in DEEP_MODES:
        return (h, w, header.channels), np.dtype(np.uint16)
    probe = np.asarray(Image.new(header.mode, (1, 1)))
    return (h, w) + probe.shape[2:], probe.dtype


class TricPlugin(PluginV3):
    """The v3 plugin over one ``.tric`` resource (a path, a file object or bytes)."""

    def __init__(self, request, *, device: str = "auto", model=None) -> None:
        super().__init__(request)
        self._device, self._model = device, model
        self._data, self._written = None, False
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

    def read(self, *, index=None, device: str | None = None, model=None) -> np.ndarray:
        """The image as :func:`tricodec.decode_array` gives it; ``index=...``: with a batch axis of one."""
        _check_index(index)
        array = np.asarray(codec.decode_array(self._data, device=device or self._device, model=model or self._model))
        return array[None] if index is Ellipsis else array

    def iter(self, **kwargs):
        yield self.read(index=0, **kwargs)

    def write(self, ndimage, *, is_batch: bool | None = None, device: str | None = None, model=None):
        """Encode one image (numpy array, torch tensor or PIL image, what :func:`tricodec.encode` takes).
        Returns the bytes when the resource is ``"<bytes>"``."""
        if isinstance(ndimage, (list, tuple)):
            frames = list(ndimage)
        elif isinstance(ndimage, Image.Image):
            frames = [ndimage]
        else:
            array = ndimage if hasattr(ndimage, "shape") else np.asarray(ndimage)
            if is_batch is None:
                is_batch = array.ndim == 4 or (array.ndim == 3 and array.shape[-1] > 4)
            frames = list(array) if is_batch else [array]
        if len(frames) != 1:
            raise EncodeError(f"a .tric file holds one image, got a batch of {len(frames)}")
        if self._written:
            raise EncodeError("a .tric file holds one image, and this one is written already")
        data = codec.encode(frames[0], device=device or self._device, model=model or self._model)
        self._written = True
        if self.request._uri_type == URI_BYTES:
            return data
        self.request.get_file().write(data)
        return None

    def properties(self, index=None) -> ImageProperties:
        """Shape and dtype from the header, without decoding the pixels."""
        _check_index(index)
        shape, dtype = _layout(codec.read_header(self._data))
        if index is Ellipsis:
            return ImageProperties(shape=(1,) + shape, dtype=dtype, n_images=1, is_batch=True)
        return ImageProperties(shape=shape, dtype=dtype)

    def metadata(self, index=None, exclude_applied: bool = True) -> dict:
        """The header's mode and bit depth, and the metadata the file keeps (:func:`tricodec.read_metadata`:
        ``icc``, ``exif``, ``xmp``, ... as raw bytes)."""
        if index is not Ellipsis:
            _check_index(index)
        header = codec.read_header(self._data)
        return {"mode": header.mode, "bit_depth": header.bit_depth, **codec.read_metadata(self._data)}


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
