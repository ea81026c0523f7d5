"""Images in and out: what the codec accepts, how files are read without losing bits, how they are written.

Inside tricodec an image is either a ``PIL.Image.Image`` or, for colour images deeper than 8 bits that
Pillow cannot hold (it silently truncates 16-bit RGB to 8 bits), a uint16 numpy array (H, W, 3|4)
with the pseudo-mode ``"RGB;16"`` / ``"RGBA;16"``.
"""
from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .container import DEFAULT_MAX_PIXELS
from .errors import EncodeError, WriteError
from .metadata import save_kwargs

DEEP_MODES = {"RGB;16": 3, "RGBA;16": 4}
TRIC_SUFFIX = ".tric"
# File suffixes taken as images when a folder is encoded (CLI and Ray pipeline alike).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm", ".pbm",
                  ".pnm", ".tga", ".jxl", ".qoi", ".ico", ".im", ".pcx", ".sgi", ".dib"}
# Modes a PNG file holds without loss (checked again at encode time by a decode of the PNG).
PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}



def from_array(arr: np.ndarray):
    """A numpy array -> PIL image (uint8 (H,W), (H,W,1), (H,W,3), (H,W,4); uint16 (H,W)) or a deep array
    (uint16 (H,W,3|4))."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise EncodeError(f"array of shape {arr.shape} is not an image (H, W) or (H, W, C)")
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.uint8:
        if arr.ndim == 2:
            return Image.fromarray(arr)
        if arr.shape[2] in (3, 4):
            return Image.fromarray(arr)
    elif arr.dtype == np.uint16:
        if arr.ndim == 2:
            return Image.fromarray(arr.astype("<u2"))  # Pillow infers I;16 (naming it is refused)
        if arr.shape[2] in (3, 4):
            return arr
    raise EncodeError(f"unsupported array: dtype {arr.dtype}, shape {arr.shape} (use uint8 or uint16)")


def normalize(image):
    """Accept a PIL image, a numpy array or a torch tensor; return a loaded PIL image or a deep uint16
    array."""
    if isinstance(image, Image.Image):
        try:
            image.load()
        except Exception as e:
            raise EncodeError(f"cannot load image: {e}") from None
        if getattr(image, "n_frames", 1) > 1:
            raise EncodeError("multi-frame images are not supported (only one frame would be kept)")
        return image
    if isinstance(image, np.ndarray):
        return from_array(image)
    if type(image).__module__.startswith("torch") and hasattr(image, "detach"):
        # a torch tensor (CPU or CUDA), laid out like the numpy arrays: (H, W) or (H, W, C)
        return from_array(image.detach().cpu().numpy())
    raise EncodeError(f"cannot encode a {type(image).__name__}: pass a PIL image, a numpy array or a "
                      "torch tensor")


def mode_layout(mode: str) -> tuple[int, int]:
    """(channels, bits per sample) of an image mode; ValueError for a mode Pillow does not know."""
    if mode in DEEP_MODES:
        return DEEP_MODES[mode], 16
    bands = Image.getmodebands(mode)
    if mode == "1":
        return bands, 1
    if mode.startswith("I;16"):
        return bands, 16
    if mode in ("I", "F"):
        return bands, 32
    return bands, 8


def describe(image) -> tuple[str, int, int, int, int]:
    """(mode, channels, bit_depth, width, height) of a normalised image."""
    if isinstance(image, np.ndarray):
        mode = "RGB;16" if image.shape[2] == 3 else "RGBA;16"
        return mode, image.shape[2], 16, image.shape[1], image.shape[0]
    channels, depth = mode_layout(image.mode)
    return image.mode, channels, depth, image.width, image.height


def pixel_bytes(image) -> bytes:
    """The bytes the container's CRC covers: Pillow's ``tobytes()``, or big-endian samples of a deep array."""
    if isinstance(image, np.ndarray):
        return image.astype(">u2").tobytes()
    return image.tobytes()


def palette(image) -> tuple[str, bytes]:
    """(palette mode, palette bytes) of a P/PA image; ("", b"") for every other image."""
    if isinstance(image, Image.Image) and image.mode in ("P", "PA") and image.palette is not None:
        mode = image.palette.mode
        return mode, bytes(image.getpalette(mode) or b"")
    return "", b""


def content_crc(image, pixels=None) -> int:
    """CRC32 of what decoding must restore: the pixel bytes (``pixels``, when the caller has them as a
    buffer already, else :func:`pixel_bytes`) and, for palette images, the palette."""
    crc = zlib.crc32(pixels if pixels is not None else pixel_bytes(image))
    pmode, pal = palette(image)
    return zlib.crc32(pmode.encode("ascii") + pal, crc) if pal else crc


def _png_ihdr(path: Path) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) of a PNG file, or None."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">IIBB", head[16:26])
    return None


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise EncodeError(f"{path}: image of {width}x{height} exceeds the limit of {max_pixels} pixels")


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Read an image file without losing bits; raise EncodeError (one line) when that is impossible.
    Images above ``max_pixels`` are refused from their header, before their pixels are read."""
    path = Path(path)
    try:
        ihdr = _png_ihdr(path)
        if ihdr is not None and ihdr[2] == 16 and ihdr[3] in (2, 6):
            _check_size(path, ihdr[0], ihdr[1], max_pixels)
            # zlib cannot expand data more than ~1032x: a file claiming more pixels is corrupt, and
            # reading it anyway would let a 1 KB file take gigabytes.
            if ihdr[0] * ihdr[1] * 8 > 1100 * path.stat().st_size + (1 << 20):
                raise EncodeError(f"{path}: corrupt PNG (its size cannot hold {ihdr[0]}x{ihdr[1]} pixels)")
            return _read_png16(path)
        with warnings.catch_warnings():  # Pillow's bomb warning: our own limit is checked just below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        _check_size(path, im.width, im.height, max_pixels)
        fmt = im.format
        if fmt == "TIFF" and im.mode in ("RGB", "RGBA", "CMYK"):
            bits = im.tag_v2.get(258)
            if bits is not None and max(np.atleast_1d(bits)) > 8:
                raise EncodeError(f"{path}: {max(np.atleast_1d(bits))}-bit colour TIFF is not supported "
                                  "(Pillow would truncate it to 8 bits)")
        if fmt == "PPM" and im.mode == "RGB" and _pnm_maxval(path) > 255:
            raise EncodeError(f"{path}: 16-bit PPM is not supported (Pillow would truncate it to 8 bits)")
        return normalize(im)
    except EncodeError:
        raise
    except Exception as e:
        raise EncodeError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None


def _pnm_maxval(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(256)
    tokens = []
    for line in head.split(b"\n"):
        tokens += line.split(b"#")[0].split()
        if len(tokens) >= 4:
            break
    try:
        return int(tokens[3])
    except (IndexError, ValueError):
        return 255


def _read_png16(path: Path) -> np.ndarray:
    import png  # pypng: reads 16-bit colour PNG at full depth, which Pillow cannot

    reader = png.Reader(filename=str(path))
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)
    if planes not in (3, 4):  # asDirect expands palettes/grey+alpha; only colour reaches here
        raise EncodeError(f"{path}: unexpected 16-bit PNG layout with {planes} planes")
    return arr


def output_suffix(image) -> str:
    """The format a decoded image (or an image mode, e.g. from a header) is written in by default: PNG
    when it holds the mode, else TIFF. The deep pseudo-modes are written as 16-bit PNG."""
    mode = image if isinstance(image, str) else None if isinstance(image, np.ndarray) else image.mode
    if mode is None or mode in PNG_MODES or mode in DEEP_MODES:
        return ".png"
    return ".tiff"


def write_image(image, path, suffix: str | None = None) -> None:
    """Write a decoded image to a path or a binary file object, in the format ``suffix`` (default: the
    path's) names; PNG when it names none; deep arrays always as 16-bit PNG."""
    if isinstance(path, str):
        path = Path(path)
    if suffix is None:
        suffix = path.suffix if isinstance(path, Path) else ""
    suffix = suffix.lower()
    if isinstance(image, np.ndarray):
        import png

        h, w, c = image.shape
        writer = png.Writer(width=w, height=h, bitdepth=16, greyscale=False, alpha=(c == 4))
        if isinstance(path, Path):
            with open(path, "wb") as f:
                writer.write(f, image.reshape(h, w * c).tolist())
        else:
            writer.write(path, image.reshape(h, w * c).tolist())
        return
    fmt = Image.registered_extensions().get(suffix, "PNG")
    try:
        image.save(path, format=fmt, **save_kwargs(image, fmt))
    except Exception as e:  # Pillow raises many types here (OSError, ValueError, SyntaxError ...)
        raise WriteError(f"cannot write a {image.mode} image as {fmt} ({type(e).__name__}: {e})") from None

