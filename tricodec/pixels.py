"""Images in and out: what the codec accepts, how files are read without losing bits, how they are written.

Inside tricodec an image is either a ``PIL.Image.Image`` or, for 16-bit images with several channels
that Pillow cannot hold (it silently truncates 16-bit RGB to 8 bits and has no 16-bit grey+alpha mode),
a uint16 numpy array (H, W, 2|3|4) with the pseudo-mode ``"LA;16"`` / ``"RGB;16"`` / ``"RGBA;16"`` (a
``metadata.DeepArray`` when its file had metadata).
"""
from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .container import DEFAULT_MAX_PIXELS
from .errors import EncodeError, TricodecError, WriteError
from . import metadata
from .metadata import png_extra_chunks, save_kwargs

DEEP_MODES = {"LA;16": 2, "RGB;16": 3, "RGBA;16": 4}
_DEEP_MODE_OF = {c: m for m, c in DEEP_MODES.items()}  # channels -> pseudo-mode
TRIC_SUFFIX = ".tric"
# File suffixes taken as images when a folder is encoded (CLI and Ray pipeline alike).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm", ".pbm",
                  ".pnm", ".tga", ".jxl", ".qoi", ".ico", ".im", ".pcx", ".sgi", ".dib"}
# Modes a PNG file holds without loss (checked again at encode time by a decode of the PNG).
PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I;16"}



def from_array(arr: np.ndarray):
    """A numpy array -> PIL image (uint8 (H,W), (H,W,1), (H,W,2), (H,W,3), (H,W,4); uint16 (H,W)) or a deep
    array (uint16 (H,W,2|3|4))."""
    source = arr
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise EncodeError(f"array of shape {arr.shape} is not an image (H, W) or (H, W, C)")
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.uint8:
        if arr.ndim == 2 or arr.shape[2] in (2, 3, 4):
            return Image.fromarray(arr)  # L, LA, RGB, RGBA
    elif arr.dtype == np.uint16:
        if arr.ndim == 2:
            return Image.fromarray(arr.astype("<u2"))  # Pillow infers I;16 (naming it is refused)
        if arr.shape[2] in _DEEP_MODE_OF:
            return _keep_info(arr, source)  # LA;16, RGB;16, RGBA;16
    raise EncodeError(f"unsupported array: dtype {arr.dtype}, shape {arr.shape} (use uint8 or uint16)")


def _keep_info(arr: np.ndarray, source) -> np.ndarray:
    """``arr`` (a contiguous copy or view of ``source``) with the metadata of ``source`` if it is a DeepArray."""
    if not isinstance(source, metadata.DeepArray) or arr is source:
        return arr
    out = arr.view(metadata.DeepArray)
    out.info, out.text = dict(source.info), dict(source.text)
    return out


def normalize(image, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Accept a PIL image, a numpy array or a torch tensor; return a loaded PIL image or a deep uint16
    array. A PIL image whose file holds more bits than Pillow keeps (16-bit colour or grey+alpha PNG,
    colour TIFF, PPM) is read again at full depth from its file; what cannot be kept whole is refused
    with EncodeError."""
    if isinstance(image, Image.Image):
        try:
            return _normalize_pil(image, max_pixels)
        except TricodecError:
            raise
        except Exception as e:  # Pillow raises anything on hostile files (ValueError, OSError, SyntaxError ...)
            raise EncodeError(f"cannot load image ({_what(e)})") from None
    if isinstance(image, np.ndarray):
        return from_array(image)
    if type(image).__module__.startswith("torch") and hasattr(image, "detach"):
        # a torch tensor (CPU or CUDA), laid out like the numpy arrays: (H, W) or (H, W, C)
        return from_array(image.detach().cpu().numpy())
    raise EncodeError(f"cannot encode a {type(image).__name__}: pass a PIL image, a numpy array or a "
                      "torch tensor")


def _what(e: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}"


def _normalize_pil(image: Image.Image, max_pixels: int):
    _refuse_several(image)        # before anything is decoded: n_frames may parse hostile layer tables
    bits = _bits_pillow_drops(image)
    if bits:
        if image.width * image.height > max_pixels:
            raise EncodeError(f"image of {image.width}x{image.height} exceeds the limit of {max_pixels} pixels")
        return _read_full_depth(image, bits)
    image.load()
    return image


def normalize_page(image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS):
    """The current frame (page) of a multi-frame PIL image as :func:`normalize` gives a single image: a
    copy holding its metadata, or its samples at full depth (a TIFF page's own, ``image.tell()``)."""
    _check_size(image.width, image.height, max_pixels)
    bits = _bits_pillow_drops(image)
    if bits:
        return _read_full_depth(image, bits)
    image.load()
    meta = metadata.collect(image)
    page = image.copy()
    page.info = {}   # the decoder's notes (a TIFF's 1-dpi default, its compression) are no metadata
    return metadata.apply(page, meta)


def _refuse_several(image: Image.Image) -> None:
    """Frames and icon sizes: Pillow shows one, encoding it alone would silently drop the others."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        from .frames import kind_of
        if kind_of(image) is not None:
            raise EncodeError(f"multi-frame image ({frames} frames): encode it with tricodec.encode_frames "
                              "(tricodec encode does)")
        if image.format == "MPO":
            raise EncodeError(f"MPO of {frames} JPEG frames: only the first would be kept, and no lossless MPO "
                              "can be written back (tricodec keeps APNG, GIF, TIFF pages, ICO and ICNS sizes)")
        raise EncodeError(f"multi-frame image ({frames} frames): only the first would be kept, and "
                          f"{image.format} frames are not supported yet")
    sizes = 1
    if image.format == "ICO":
        sizes = len(image.ico.entry)
    elif image.format == "ICNS":
        sizes = len(image.info.get("sizes", ()))
    if sizes > 1 and image.format in ("ICO", "ICNS"):
        raise EncodeError(f"multi-size {image.format} icon ({sizes} sizes): encode it with "
                          "tricodec.encode_frames (tricodec encode does)")
    if sizes > 1:
        raise EncodeError(f"multi-size {image.format} icon ({sizes} sizes): only the largest would be kept, "
                          "and icons of several sizes are not supported yet")


def _tile_rawmode(tile) -> str:
    args = tile.args
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return ""


def _bits_pillow_drops(image: Image.Image) -> int:
    """Bits per sample of the image's file when Pillow's image would not hold them exactly (16-bit
    samples in an 8-bit mode, a PNM maxval Pillow rescales, a JPEG 2000 precision openjpeg shifts),
    else 0. Read from the tile Pillow plans to decode (before ``load``), a TIFF's BitsPerSample tag and a
    PNG file's IHDR (also after ``load``), a JPEG 2000 codestream's SIZ marker."""
    try:
        mode_bits = mode_layout(image.mode)[1]
    except ValueError:
        return 0
    if image.format == "PPM":  # Pillow keeps maxval 255 (and 1, PBM); 16-bit grey becomes 32-bit I
        maxval = _pnm_maxval_of_tile(image)
        if maxval not in (None, 1, 255):
            return max(8, maxval.bit_length())
    bits = 0
    for tile in getattr(image, "tile", ()):
        base, _, spec = _tile_rawmode(tile).partition(";")
        if tile.codec_name == "SGI16" or spec in ("16B", "16L", "16N") or (spec == "16" and base in ("L", "LA")):
            bits = 16
    if image.format == "TIFF":
        tag = image.tag_v2.get(258)  # BitsPerSample
        if tag is not None:
            bits = max([bits] + [int(b) for b in np.atleast_1d(tag)])
    if image.format == "JPEG2000":
        return _j2k_bits_pillow_alters(image, mode_bits)
    if image.format == "PNG" and not getattr(image, "tile", None):  # loaded: the tile is gone, IHDR stays
        head = _source_bytes(image, 26) or b""
        if len(head) == 26 and head[12:16] == b"IHDR":
            bits = head[24]
    return bits if bits > mode_bits else 0


def _j2k_bits_pillow_alters(image: Image.Image, mode_bits: int) -> int:
    """JPEG 2000 samples of a precision other than Pillow's mode (openjpeg's samples are shifted to it:
    16-bit colour down to 8 bits, 12-bit grey up to 16) or signed: their precision, else 0. Read from the
    codestream's SIZ marker (precision - 1 in the low 7 bits of each component's Ssiz, sign in the top)."""
    data = _source_bytes(image, 1 << 16)
    at = data.find(b"\xff\x4f\xff\x51") if data else -1  # SOC then SIZ: the codestream's first marker
    if at < 0 or len(data) < at + 42:
        return 0
    count = struct.unpack_from(">H", data, at + 40)[0]
    ssiz = data[at + 42:at + 42 + 3 * count:3]
    bits = {(s & 0x7F) + 1 for s in ssiz}
    if bits == {mode_bits} and not any(s & 0x80 for s in ssiz):
        return 0
    return max(bits | {mode_bits + 1})


def _pnm_maxval_of_tile(image: Image.Image) -> int | None:
    for tile in getattr(image, "tile", ()):
        args = tile.args
        if tile.codec_name in ("ppm", "ppm_plain") and isinstance(args, tuple) and len(args) > 1:
            return int(args[1])
        if _tile_rawmode(tile).partition(";")[2] in ("16B", "16L", "16"):
            return 65535
    return None


def _read_full_depth(image: Image.Image, bits: int):
    """Read the image's file again with a reader that keeps every bit, or refuse."""
    what = f"{bits}-bit {image.format} image ({image.mode} in Pillow)"
    reader = _FULL_DEPTH_READERS.get(image.format)
    if reader is None:
        raise EncodeError(f"{what}: Pillow would truncate it to 8 bits and tricodec has no full-depth "
                          f"reader for {image.format}")
    if not getattr(image, "tile", None):  # loaded: its pixels may have been edited since, never re-read
        raise EncodeError(f"{what}: Pillow has already loaded it at 8 bits (encode its path, or the image "
                          "before load(); convert() it to keep 8 bits on purpose)")
    data = _source_bytes(image)
    if data is None:
        raise EncodeError(f"{what}: Pillow holds only 8 bits of it and its file cannot be read again "
                          "(open it from a path or a seekable file)")
    out = reader(data, image.tell()) if image.format == "TIFF" else reader(data)
    # The file's metadata as Pillow reads it (a PNG's text and eXIf may follow the pixels: Pillow reads
    # them on load), given to the full-depth image the way a decode gives it back.
    return metadata.apply(out, metadata.collect(image, describe(out)[0]))


def _source_bytes(image: Image.Image, limit: int = -1) -> bytes | None:
    """The bytes (the first ``limit``, -1: all) of the file a PIL image was opened from (its path, or its
    file object), or None."""
    name = getattr(image, "filename", "")
    if isinstance(name, (str, Path)) and name and os.path.isfile(name):
        with open(name, "rb") as f:
            return f.read(limit)
    fp = getattr(image, "fp", None)
    if fp is not None and hasattr(fp, "seek") and not getattr(fp, "closed", False):
        pos = fp.tell()
        fp.seek(0)
        data = fp.read(limit)
        fp.seek(pos)
        return data
    return None


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
        return _DEEP_MODE_OF[image.shape[2]], image.shape[2], 16, image.shape[1], image.shape[0]
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


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise EncodeError(f"image of {width}x{height} exceeds the limit of {max_pixels} pixels")


def open_image(path) -> Image.Image:
    """``Image.open`` of a file, trying the format its suffix names first. Pillow tries formats in the
    order their plugins were loaded, and loads them lazily by suffix: after a .tga was opened, a
    multi-size .ico passes for a TGA. The suffix's format is tried alone first, then every format."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is not None:
        try:
            return Image.open(path, formats=[fmt])
        except Image.UnidentifiedImageError:
            pass  # a file named for another format: Pillow's detection decides
    return Image.open(path)


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Read an image file without losing bits; raise EncodeError (one line, naming the file) when that is
    impossible. Images above ``max_pixels`` are refused from their header, before their pixels are read."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # Pillow's bomb warning: our own limit is checked just below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = open_image(path)
        _check_size(im.width, im.height, max_pixels)
        return normalize(im, max_pixels)  # the API's own path: the same refusals, the same full-depth reads
    except EncodeError as e:
        raise EncodeError(f"{path}: {e}") from None
    except Exception as e:
        raise EncodeError(f"{path}: cannot read image ({_what(e)})") from None


# ---- full-depth readers: file bytes -> uint16 (H, W, 2|3|4) array or I;16 image, or EncodeError ----

def _read_png16(data: bytes):
    """16-bit colour or grey+alpha PNG at full depth (pypng) -> uint16 (H, W, 3|4|2). Raw samples: pypng's
    asDirect() would rescale them to the sBIT chunk's depth and turn a tRNS colour into an alpha channel."""
    import png

    if len(data) < 33 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise EncodeError("corrupt PNG (no IHDR)")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    # zlib cannot expand data more than ~1032x: a file claiming more pixels is corrupt, and reading it
    # anyway would let a 1 KB file take gigabytes.
    if width * height * 8 > 1100 * len(data) + (1 << 20):
        raise EncodeError(f"corrupt PNG (its size cannot hold {width}x{height} pixels)")
    if depth != 16 or colour not in (2, 4, 6):
        raise EncodeError(f"{depth}-bit colour type {colour} PNG is not supported (tricodec has no {depth}-bit "
                          "mode for it, and converting it would change its samples)")
    w, h, rows, info = png.Reader(bytes=data).read()
    planes = info["planes"]
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, planes)
    return np.ascontiguousarray(arr)


def _read_tiff16(data: bytes, page: int = 0):
    """16-bit RGB / RGBA TIFF (its page ``page``) at full depth (tifffile; imagecodecs for LZW, PackBits,
    JPEG ...)."""
    import logging

    import tifffile

    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)  # its warnings on odd files go to stderr; a refusal says what matters
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[page]
            _check_tiff16(page)
            # No TIFF compression expands data more than a few thousand times (LZW: 4096 bytes per 12-bit
            # code): a file claiming more pixels is corrupt, and reading it would allocate them first.
            if 2 * int(np.prod(page.shape)) > 5000 * len(data) + (1 << 20):
                raise EncodeError(f"corrupt TIFF (its size cannot hold {'x'.join(map(str, page.shape))} samples)")
            arr = page.asarray()
            if page.axes.startswith("S"):  # planar configuration: one plane per sample
                arr = arr.transpose(1, 2, 0)
    except TricodecError:
        raise
    except Exception as e:  # tifffile: TiffFileError, ValueError, KeyError (a codec needs imagecodecs) ...
        raise EncodeError(f"cannot read 16-bit TIFF ({_what(e)})") from None
    finally:
        log.setLevel(level)
    return np.ascontiguousarray(arr, dtype=np.uint16)


_TIFF_METADATA = {34675: "an ICC profile", 700: "XMP", 34665: "EXIF"}  # tags kept for 8-bit TIFF


def _check_tiff16(page) -> None:
    """Only what the deep modes RGB;16 / RGBA;16 hold exactly: unsigned 16-bit RGB, alpha unassociated."""
    bits, spp = page.bitspersample, page.samplesperpixel
    extra = tuple(int(x) for x in page.extrasamples)
    photometric = getattr(page.photometric, "name", page.photometric)
    if photometric != "RGB" or bits != 16 or int(page.sampleformat) != 1:
        raise EncodeError(f"{bits}-bit {photometric} TIFF is not supported (tricodec keeps 16-bit "
                          "unsigned RGB and RGBA at full depth; Pillow would truncate this one)")
    if not (spp == 3 and not extra) and not (spp == 4 and extra == (2,)):
        raise EncodeError(f"16-bit RGB TIFF with {spp} samples (extra samples {extra}) is not supported "
                          "(only RGB, or RGB with unassociated alpha)")
    kept = [name for tag, name in _TIFF_METADATA.items() if tag in page.tags]
    if kept:
        raise EncodeError(f"16-bit colour TIFF with {', '.join(kept)}: tricodec keeps no metadata for 16-bit "
                          "colour images yet")


def _read_pnm16(data: bytes):
    """16-bit PGM / PPM (maxval 65535, big-endian samples; binary P5/P6 or plain P2/P3) at full depth:
    PPM -> uint16 (H, W, 3), PGM -> an I;16 image. Other maxvals are refused: Pillow rescales them."""
    magic, width, height, maxval, start = _pnm_header(data)
    if maxval != 65535:
        raise EncodeError(f"PNM with maxval {maxval} is not supported (Pillow would rescale its samples; "
                          "maxval 255 and 65535 are kept exactly)")
    channels = 3 if magic in (b"P3", b"P6") else 1
    n = width * height * channels
    if magic in (b"P5", b"P6"):
        if len(data) - start < 2 * n:
            raise EncodeError(f"truncated PNM: {width}x{height} needs {2 * n} bytes of samples")
        samples = np.frombuffer(data, dtype=">u2", count=n, offset=start).astype(np.uint16)
    else:
        tokens = data[start:].split()
        if len(tokens) < n:
            raise EncodeError(f"truncated PNM: {width}x{height} needs {n} samples")
        samples = np.array(tokens[:n], dtype=np.int64)
        if samples.min() < 0 or samples.max() > maxval:
            raise EncodeError(f"corrupt PNM: a sample is outside 0..{maxval}")
        samples = samples.astype(np.uint16)
    if channels == 1:
        return Image.fromarray(samples.reshape(height, width))  # uint16 -> I;16
    return samples.reshape(height, width, 3)


def _pnm_header(data: bytes) -> tuple[bytes, int, int, int, int]:
    """(magic, width, height, maxval, offset of the first sample) of a P2/P3/P5/P6 file."""
    magic = data[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise EncodeError(f"not a greymap or pixmap PNM (magic {magic!r})")
    fields, pos = [], 2
    while len(fields) < 3:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":  # a comment runs to the end of its line
            end = data.find(b"\n", pos)
            pos = len(data) if end < 0 else end + 1
            continue
        end = pos
        while end < len(data) and data[end:end + 1].isdigit():
            end += 1
        if end == pos or end - pos > 9:
            raise EncodeError("corrupt PNM header")
        fields.append(int(data[pos:end]))
        pos = end
    if pos >= len(data) or not data[pos:pos + 1].isspace():
        raise EncodeError("corrupt PNM header")
    width, height, maxval = fields
    if width < 1 or height < 1 or not 1 <= maxval <= 65535:
        raise EncodeError(f"corrupt PNM header ({width}x{height}, maxval {maxval})")
    return magic, width, height, maxval, pos + 1


def _read_sgi16(data: bytes):
    """16-bit SGI (verbatim or RLE; 1, 3 or 4 channels) at full depth: an I;16 image or uint16 (H, W, 3|4)."""
    if len(data) < 512:
        raise EncodeError("truncated SGI header")
    magic, rle, bpc, _, width, height, channels = struct.unpack_from(">hBBHHHH", data, 0)
    colormap = struct.unpack_from(">I", data, 104)[0]
    if magic != 474 or bpc != 2 or rle not in (0, 1) or width < 1 or height < 1:
        raise EncodeError("corrupt 16-bit SGI header")
    if channels not in (1, 3, 4) or colormap != 0:
        raise EncodeError(f"16-bit SGI with {channels} channels (colormap {colormap}) is not supported "
                          "(tricodec keeps 16-bit grey, RGB and RGBA)")
    n = width * height * channels
    if rle:
        planes = _sgi_rle_rows(data, width, height, channels)
    else:
        if len(data) - 512 < 2 * n:
            raise EncodeError(f"truncated SGI: {width}x{height}x{channels} needs {2 * n} bytes of samples")
        planes = np.frombuffer(data, dtype=">u2", count=n, offset=512).reshape(channels, height, width)
    arr = np.ascontiguousarray(planes[:, ::-1].transpose(1, 2, 0), dtype=np.uint16)  # rows stored bottom first
    return Image.fromarray(arr[:, :, 0]) if channels == 1 else arr


def _sgi_rle_rows(data: bytes, width: int, height: int, channels: int) -> np.ndarray:
    """Decode SGI RLE rows of 16-bit items: (count | 0x80) then count literal items, or count then one item
    repeated count times; a zero count ends the row. Every row must fill exactly ``width`` samples."""
    rows = height * channels
    if len(data) < 512 + 8 * rows:
        raise EncodeError("truncated SGI offset tables")
    starts = np.frombuffer(data, dtype=">u4", count=rows, offset=512)
    lengths = np.frombuffer(data, dtype=">u4", count=rows, offset=512 + 4 * rows)
    if int((starts.astype(np.int64) + lengths).max()) > len(data):
        raise EncodeError("corrupt SGI: a row runs past the end of the file")
    if rows * width > 2 * len(data) * 127:  # each 2-byte item expands to at most 127 samples
        raise EncodeError(f"corrupt SGI: its size cannot hold {width}x{height}x{channels} samples")
    out = np.empty((channels, height, width), np.uint16)
    for index in range(rows):
        items = np.frombuffer(data, dtype=">u2", count=int(lengths[index]) // 2, offset=int(starts[index]))
        out[index // height, index % height] = _sgi_rle_row(items, width)
    return out


def _sgi_rle_row(items: np.ndarray, width: int) -> np.ndarray:
    row, pos, i = np.empty(width, np.uint16), 0, 0
    while i < len(items):
        count = int(items[i]) & 0x7F
        if count == 0:
            break
        if pos + count > width or i + 1 >= len(items):
            raise EncodeError("corrupt SGI RLE row")
        if int(items[i]) & 0x80:
            if i + 1 + count > len(items):
                raise EncodeError("corrupt SGI RLE row")
            row[pos:pos + count] = items[i + 1:i + 1 + count]
            i += 1 + count
        else:
            row[pos:pos + count] = items[i + 1]
            i += 2
        pos += count
    if pos != width:
        raise EncodeError("corrupt SGI RLE row (wrong length)")
    return row


# Formats whose deep files Pillow truncates or rescales, and that tricodec can read whole (others: refused).
_FULL_DEPTH_READERS = {"PNG": _read_png16, "TIFF": _read_tiff16, "PPM": _read_pnm16, "SGI": _read_sgi16}


def output_suffix(image) -> str:
    """The format a decoded image (or an image mode, e.g. from a header) is written in by default: PNG
    when it holds the mode, else TIFF. The deep pseudo-modes are written as 16-bit PNG."""
    mode = image if isinstance(image, str) else None if isinstance(image, np.ndarray) else image.mode
    if mode is None or mode in PNG_MODES or mode in DEEP_MODES:
        return ".png"
    return ".tiff"


def check_writable(image) -> None:
    """WriteError when :func:`write_image` could not write this image with its metadata in the format
    ``tricodec decode`` gives it (:func:`output_suffix`): the CLI refuses to encode what its decode could
    not write back whole. Writes a 1x1 stand-in of the same mode and palette with the metadata a decode
    gives (``metadata.collect`` -> ``metadata.apply``), so it costs no pixels."""
    meta = metadata.collect(image)
    if not meta:
        return
    if isinstance(image, np.ndarray):
        stand = np.zeros((1, 1, image.shape[2]), np.uint16)
    else:
        stand = Image.new(image.mode, (1, 1))
        pmode, pal = palette(image)
        if pal:
            stand.putpalette(pal, pmode)
    try:
        stand = metadata.apply(stand, meta)
    except TricodecError as e:
        raise WriteError(str(e)) from None
    write_image(stand, io.BytesIO(), output_suffix(image))


def decoded_name(name: str, mode: str | None, suffix: str | None = None) -> str:
    """Output name of a decoded file whose header names ``mode`` (None: unknown, PNG assumed): the
    source's name without ``.tric``, plus the output format's suffix (``suffix``, else the default for the
    mode) unless it already ends with one of that format (``a.jpg.tric`` -> ``a.jpg.png``, ``a.png.tric``
    -> ``a.png``, ``a.tif.tric`` holding CMYK -> ``a.tif``). Keeping the full name keeps distinct sources
    apart; the one clash left (``x.tric`` and ``x.png.tric``) is for the caller to refuse."""
    stem = name[:-len(TRIC_SUFFIX)] if name.endswith(TRIC_SUFFIX) and len(name) > len(TRIC_SUFFIX) else name
    suffix = suffix or output_suffix(mode or "RGB")
    formats = Image.registered_extensions()
    have = Path(stem).suffix.lower()
    if have == suffix or (suffix in formats and formats.get(have) == formats[suffix]):
        return stem
    return stem + suffix


# Output formats ``tricodec decode --format`` names, and their suffix.
OUTPUT_FORMATS = {"png": ".png", "tiff": ".tiff", "ppm": ".ppm", "npy": ".npy"}
DEFAULT_PNG_LEVEL = 1   # zlib level of decoded PNGs: level 1 writes 3-5x faster than 6, files ~5-10% larger
FAST_PNG_MAX_LEVEL = 3  # up to this level 8-bit L/LA/RGB/RGBA PNGs go through pngwrite (fast filter); above, Pillow


def write_image(image, path, suffix: str | None = None, png_level: int | None = None) -> None:
    """Write a decoded image to a path or a binary file object, in the format ``suffix`` (default: the
    path's) names; PNG when it names none. ``png_level``: zlib level 0-9 of a PNG (None: Pillow's 6).
    ``.npy`` writes the samples (numpy), ``.ppm``/``.pgm`` 8- and 16-bit grey and RGB; every format
    refuses (WriteError) what it cannot hold: a mode, a palette, alpha, the kept metadata."""
    if isinstance(path, str):
        path = Path(path)
    if suffix is None:
        suffix = path.suffix if isinstance(path, Path) else ""
    suffix = suffix.lower()
    if png_level is not None and not 0 <= png_level <= 9:
        raise ValueError(f"png_level must be 0-9, not {png_level}")
    if suffix == ".npy":
        _write_bytes(path, _npy_bytes(image))
        return
    if suffix in (".ppm", ".pgm", ".pnm") and (isinstance(image, np.ndarray) or image.mode == "I;16"):
        _write_bytes(path, _pnm16_bytes(image))
        return
    if isinstance(image, np.ndarray):
        from .pngwrite import deep_png

        fmt = Image.registered_extensions().get(suffix, "PNG")
        if fmt != "PNG":
            kind = "grey+alpha" if image.shape[2] == 2 else "colour"
            raise WriteError(f"a 16-bit {kind} image can be written as PNG, PPM (no alpha) or NPY, not {fmt}")
        kwargs = save_kwargs(image, "PNG")
        _write_bytes(path, deep_png(image, kwargs, png_extra_chunks(image), 6 if png_level is None else png_level))
        return
    fmt = Image.registered_extensions().get(suffix, "PNG")
    kwargs = save_kwargs(image, fmt)   # WriteError when fmt cannot hold the kept metadata
    extra = png_extra_chunks(image) if fmt == "PNG" else []
    if fmt == "PNG" and png_level is not None and png_level <= FAST_PNG_MAX_LEVEL and image.mode in ("L", "LA", "RGB", "RGBA"):
        from .pngwrite import png_bytes

        _write_bytes(path, png_bytes(np.asarray(image), kwargs, extra, png_level))
        return
    # Pillow's writers also read options from image.info (a TIFF's "compression" would re-encode it as
    # JPEG): they get only the kept metadata, as the arguments above, never the info dict itself.
    info, image.info = image.info, {}
    if fmt == "PNG" and png_level is not None:
        kwargs["compress_level"] = png_level
    try:
        if fmt == "PNG" and not extra:
            image.save(path, format=fmt, **kwargs)
            return
        buf = io.BytesIO()
        image.save(buf, format=fmt, **kwargs)
        data = _insert_png_chunks(buf.getvalue(), extra) if extra else buf.getvalue()
        if fmt != "PNG":
            _check_reads_back(image, data, fmt)
        if fmt == "TIFF" and isinstance(info.get("exif"), (bytes, bytearray)):
            metadata.check_tiff_exif(info["exif"], Image.open(io.BytesIO(data)))
        _write_bytes(path, data)
    except WriteError:
        raise
    except Exception as e:  # Pillow raises many types here (OSError, ValueError, SyntaxError ...)
        raise WriteError(f"cannot write a {image.mode} image as {fmt} ({type(e).__name__}: {e})") from None
    finally:
        image.info = info


def _no_metadata(image, fmt: str) -> None:
    """WriteError naming the kept metadata of an image, for a format that holds none."""
    meta = [k for k in metadata.kept(image) if k[5:] not in metadata._LEGACY_DECODER_TEXT]
    if meta:
        raise WriteError(f"{fmt} cannot hold the image's {', '.join(sorted(meta))}: write it as PNG")


def _npy_bytes(image) -> bytes:
    """The samples as a .npy file: (H, W) or (H, W, C), uint8 or uint16 (little-endian), for the modes
    whose samples say everything (L, LA, RGB, RGBA, I;16 and the deep modes LA;16, RGB;16, RGBA;16); no
    metadata."""
    mode = describe(image)[0]
    if mode not in ("L", "LA", "RGB", "RGBA", "I;16") and mode not in DEEP_MODES:
        raise WriteError(f"NPY holds samples only: a {mode} image would lose its "
                         f"{'palette' if mode in ('P', 'PA') else 'mode'}; write it as PNG or TIFF")
    _no_metadata(image, "NPY")
    arr = np.asarray(image)
    arr = arr.astype("<u2") if arr.dtype == np.uint16 else arr
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _pnm16_bytes(image) -> bytes:
    """16-bit grey (I;16) as PGM, 16-bit RGB as PPM: maxval 65535, big-endian samples; no alpha, no
    metadata (Pillow writes I;16 as PGM but reads it back as mode I)."""
    mode = describe(image)[0]
    if mode in ("LA;16", "RGBA;16"):
        raise WriteError(f"PPM cannot hold alpha: write this {mode} image as PNG or NPY")
    _no_metadata(image, "PPM")
    arr = np.asarray(image)
    magic = b"P5" if arr.ndim == 2 else b"P6"
    return b"%s\n%d %d\n65535\n" % (magic, arr.shape[1], arr.shape[0]) + arr.astype(">u2").tobytes()


def _check_reads_back(image, data: bytes, fmt: str) -> None:
    """Refuse a written file that does not read back as the image: Pillow's JPEG and WebP writers are
    lossy by default, and some writers change a mode (the PNG writer keeps every mode of PNG_MODES)."""
    back = Image.open(io.BytesIO(data))
    back.load()
    if back.mode != image.mode or back.size != image.size or back.tobytes() != image.tobytes() \
            or palette(back) != palette(image):
        raise WriteError(f"{fmt} would not keep this {image.mode} image exactly (it reads back as "
                         f"{back.mode}{'' if back.mode != image.mode else ' with other pixels'}); write it as PNG or TIFF")


def _write_bytes(path, data: bytes) -> None:
    if isinstance(path, Path):
        path.write_bytes(data)
    else:
        path.write(data)


def _insert_png_chunks(png: bytes, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG file with ``chunks`` (type, data) added just before its first IDAT chunk."""
    pos = 8
    while png[pos + 4:pos + 8] != b"IDAT":
        pos += 12 + struct.unpack(">I", png[pos:pos + 4])[0]
    new = b"".join(struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d)) for t, d in chunks)
    return png[:pos] + new + png[pos:]

