"""The one encode/decode path. ``encode`` and ``decode`` mirror each other step by step::

    encode: pixels -> planes -> residuals -> [context model: adaptive context lanes
                                              | block-scale model: side info -> table ids -> rANS lanes] -> container
    decode: container -> [lanes -> residuals] -> planes (scan) -> pixels, CRC

``encode_batch``/``decode_batch`` run the same steps (``_encode_prepare``/``_encode_finish``,
``_decode_prepare``/``_decode_finish``) for several images, their lanes in shared launches on a GPU.
"""
from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import banded
from . import container as fmt
from . import context_model as cm
from . import metadata
from .backend import CPU, get_backend, image_workers
from .errors import DecodeError, EncodeError, ModelError, TricodecError
from .fallback import choose_fallback, decode_fallback
from .model import BlockScaleModel, find_model, load_model
from .pixels import content_crc, describe, mode_layout, normalize, pixel_bytes
from .rans_ref import PREC_TOTAL
from .tables import freqs_to_cdf, quantize_counts

# Modes the model codes, with their planes' channel counts.
MODEL_MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def _layout(model, channels: int) -> tuple[tuple, tuple]:
    """Coding order and refs: colour channels as the model says, alpha (if any) last, alone."""
    colour = 1 if channels <= 2 else 3
    order, refs = model.plane_layout(colour)
    if channels in (2, 4):
        order, refs = tuple(order) + (colour,), tuple(refs) + (-1,)
    return tuple(order), tuple(refs)


# ---- side information: block scale indices, delta-coded along rows, one static table per image ----

def _side_deltas(q: np.ndarray, k: int) -> np.ndarray:
    pred = np.zeros_like(q, dtype=np.int32)
    pred[:, :, 1:] = q[:, :, :-1]
    pred[:, 1:, 0] = q[:, :-1, 0]
    return ((q.astype(np.int32) - pred) % k).astype(np.uint8)


def _side_undeltas(d: np.ndarray, k: int) -> np.ndarray:
    d = d.astype(np.int64)
    first = np.cumsum(d[:, :, 0], axis=1)
    d[:, :, 0] = first
    return (np.cumsum(d, axis=2) % k).astype(np.uint8)


def _encode_side(q: np.ndarray, model: BlockScaleModel) -> bytes:
    """Side information is small (1/64 of the symbols): always coded on the host by the CPU twin,
    which writes the same bytes as every other backend."""
    k = model.n_tables
    d = _side_deltas(q, k).ravel()
    freq = quantize_counts(np.bincount(d, minlength=k))
    counts, words = CPU.encode_lanes(d, np.zeros(d.shape[0], np.int32), freqs_to_cdf(freq)[None], 1 << model.lane_log2)
    return bytes([k]) + freq.astype("<u2").tobytes() + fmt.pack_lanes(model.lane_log2, counts, words)


def _decode_side(payload: memoryview, model: BlockScaleModel, shape: tuple) -> np.ndarray:
    k = model.n_tables
    if len(payload) < 1 + 2 * k or payload[0] != k:
        raise DecodeError("side information does not match the model")
    freq = np.frombuffer(payload, dtype="<u2", count=k, offset=1).astype(np.uint32)
    if freq.min() < 1 or int(freq.sum()) != PREC_TOTAL:
        raise DecodeError("corrupted side-information table")
    n = int(np.prod(shape))
    lane_size, counts, words = fmt.unpack_lanes(payload[1 + 2 * k:], n)
    d = CPU.decode_lanes(counts, words, np.zeros(n, np.int32), freqs_to_cdf(freq)[None], lane_size)
    return _side_undeltas(d.reshape(shape), k)


# ---- the model path on planes: data stays on the backend's device between upload and download ----

def _context_arrays(model: cm.ContextModel, n_planes: int, backend) -> list:
    return [backend.upload(a) for a in (cm.plane_kinds(n_planes),) + model.arrays]


def _context_sections(lane_rows: int, counts: np.ndarray, words: np.ndarray) -> list[tuple[int, bytes]]:
    return [(fmt.SEC_SIDE, cm.pack_side(lane_rows)), (fmt.SEC_LANES, cm.pack_lanes(counts, words))]


def encode_planes(planes: np.ndarray, refs: tuple, model, backend) -> list[tuple[int, bytes]]:
    """uint8 (P, H, W) planes in coding order -> [(SEC_SIDE, ...), (SEC_LANES, ...)]."""
    n_planes, h, w = planes.shape
    res = backend.compute_residuals(backend.upload(planes), refs)
    if model.kind == "context":
        lane_rows = model.lane_rows(w, h)
        counts, words = backend.encode_context_lanes(res, *_context_arrays(model, n_planes, backend), lane_rows)
        return _context_sections(lane_rows, backend.download(counts), backend.download(words))
    q = model.choose_side_info(res, backend)
    ids = model.table_ids(q, h, w, backend)
    counts, words = backend.encode_lanes(res.reshape(-1), ids.reshape(-1), backend.upload(model.cdf),
                                         1 << model.lane_log2)
    return [(fmt.SEC_SIDE, _encode_side(backend.download(q), model)),
            (fmt.SEC_LANES, fmt.pack_lanes(model.lane_log2, backend.download(counts), backend.download(words)))]


def decode_planes(sections: dict, n_planes: int, h: int, w: int, refs: tuple, model, backend) -> np.ndarray:
    """Inverse of :func:`encode_planes` -> uint8 (P, H, W)."""
    if model.kind == "context":
        lane_rows = cm.unpack_side(sections[fmt.SEC_SIDE], h, w)
        counts, words = cm.unpack_lanes(sections[fmt.SEC_LANES], (n_planes, h, w), lane_rows)
        res = backend.decode_context_lanes(backend.upload(counts), backend.upload(words), (n_planes, h, w),
                                           *_context_arrays(model, n_planes, backend), lane_rows)
        return backend.download(backend.reconstruct(res, refs))
    bs = 1 << model.block_log2
    lane_size, counts, words = fmt.unpack_lanes(sections[fmt.SEC_LANES], n_planes * h * w)  # checked first: cheap
    q = _decode_side(sections[fmt.SEC_SIDE], model, (n_planes, -(-h // bs), -(-w // bs)))
    ids = model.table_ids(backend.upload(q), h, w, backend)
    res = backend.decode_lanes(backend.upload(counts), backend.upload(words), ids.reshape(-1),
                               backend.upload(model.cdf), lane_size)
    return backend.download(backend.reconstruct(res.reshape(n_planes, h, w), refs))


# ---- public API ----

@dataclass
class _EncodeJob:
    """One image between :func:`_encode_prepare` and :func:`_encode_finish`."""
    image: object
    header: fmt.Header
    raw: object                  # the pixel bytes (a view of ``arr`` for model modes)
    tail: list                   # the META section, if any
    crc: int
    arr: np.ndarray | None       # uint8 (H, W, C) for model modes, else None (fallback only)
    order: tuple = ()
    refs: tuple = ()

    def planes(self) -> np.ndarray:
        return np.ascontiguousarray(self.arr.transpose(2, 0, 1)[list(self.order)])


def _encode_prepare(image, model, max_pixels: int) -> _EncodeJob:
    image = normalize(image)
    mode, channels, depth, w, h = describe(image)
    if w * h > max_pixels:
        raise EncodeError(f"image of {w}x{h} exceeds the limit of {max_pixels} pixels")
    is_model_mode = mode in MODEL_MODES
    arr = np.asarray(image, dtype=np.uint8).reshape(h, w, channels) if is_model_mode else None
    # For model modes the array holds exactly Pillow's tobytes(): no second copy of a big image.
    raw = memoryview(arr).cast("B") if is_model_mode else pixel_bytes(image)
    meta = metadata.collect(image)
    tail = [(fmt.SEC_META, metadata.pack(meta))] if meta else []
    crc = content_crc(image, raw if is_model_mode else None)
    header = fmt.Header(width=w, height=h, channels=channels, bit_depth=depth, mode=mode)
    job = _EncodeJob(image, header, raw, tail, crc, arr)
    if is_model_mode:
        job.order, job.refs = _layout(model, channels)
    return job


def _encode_finish(job: _EncodeJob, sections, model) -> bytes:
    """The model's sections (None: fallback only) -> the file, or a fallback file where that is smaller
    (which fallbacks are tried, at what cost: ``fallback.choose_fallback``)."""
    payload = choose_fallback(job.image, None if sections is None else sum(len(p) for _, p in sections), job.raw)
    if payload is None:
        job.header.model_name, job.header.model_hash = model.name, model.hash_prefix
        return fmt.pack(job.header, sections + job.tail, job.crc)
    return fmt.pack(_as_fallback(job.header), [(fmt.SEC_FALLBACK, payload)] + job.tail, job.crc)


def encode(image, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> bytes:
    """Encode an image losslessly.

    Args:
        image: a ``PIL.Image.Image`` (any mode), or a numpy array or torch tensor (CPU or CUDA, copied to
            the host), channels last: uint8 (H, W), (H, W, 1), (H, W, 3), (H, W, 4), or uint16 (H, W),
            (H, W, 3), (H, W, 4).
        device: ``"auto"`` (the GPU kernels when torch sees a GPU, else the CPU twins; the context
            model, the default, always on the CPU: see :func:`backend_for`), ``"cpu"``, ``"cuda"`` or
            ``"triton"`` (the kernels wherever the tensors are; the interpreter without a GPU). Every
            device writes the same bytes.
        model: None for the shipped default, a shipped model's name, a weights file path or a loaded model.
        max_pixels: refuse larger images.

    Returns:
        The ``.tric`` bytes. ``decode`` returns the identical pixels and mode.

    Raises:
        EncodeError: the image cannot be read or is too large. BackendError, ModelError as named.
    """
    model = load_model(model)
    backend = backend_for(device, model)
    job = _encode_prepare(image, model, max_pixels)
    if job.arr is None:
        return _encode_finish(job, None, model)
    h, w = job.arr.shape[:2]
    if backend is CPU and model.kind == "block-scale" and h > banded.band_rows(w, model.block_log2):
        q, counts, words = banded.encode_planes_banded(job.arr, job.order, job.refs, model)
        sections = [(fmt.SEC_SIDE, _encode_side(q, model)),
                    (fmt.SEC_LANES, fmt.pack_lanes(model.lane_log2, counts, words))]
    else:
        sections = encode_planes(job.planes(), job.refs, model, backend)
    return _encode_finish(job, sections, model)


def backend_for(device: str, model):
    """The backend that codes with ``model``: ``device``'s, except that ``"auto"`` keeps the context
    model on the CPU. Its coder runs one GPU program per lane of ~2^18 pixels, sequentially; an image has
    one or two such lanes, too few for a GPU (no GPU measurement exists yet), while the CPU twin codes
    them at ~20-40 MB/s. ``device="cuda"`` or ``"triton"`` still runs the kernels."""
    if device == "auto" and getattr(model, "kind", None) == "context":
        return CPU
    return get_backend(device)


def _as_fallback(header: fmt.Header) -> fmt.Header:
    header.flags |= fmt.FLAG_FALLBACK
    return header


def read_header(data: bytes, max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> fmt.Header:
    return fmt.unpack(data, max_pixels)[0]


def read_metadata(data: bytes) -> dict[str, bytes]:
    """The metadata a file keeps (key -> raw value), without decoding its pixels."""
    sections = fmt.unpack(data)[1]
    return metadata.unpack(sections[fmt.SEC_META]) if fmt.SEC_META in sections else {}


@dataclass
class _DecodeJob:
    """One model-coded file between :func:`_decode_prepare` and :func:`_decode_finish`."""
    data: object
    header: fmt.Header
    sections: dict
    model: object
    order: tuple
    refs: tuple


def _decode_prepare(data, model, max_pixels: int, max_memory: int):
    """Checks everything the header and sections say -> a _DecodeJob for model-coded files, or the
    finished image for fallback files."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    header, sections = fmt.unpack(data, max_pixels, max_memory)
    h, w, mode = header.height, header.width, header.mode
    try:
        layout = mode_layout(mode)
    except (ValueError, KeyError):
        raise DecodeError(f"unknown image mode {mode!r}") from None
    if layout != (header.channels, header.bit_depth):
        raise DecodeError("header channels and bit depth contradict its mode")
    if header.is_fallback and (header.model_name or any(header.model_hash)):
        raise DecodeError("fallback file names a model")
    if header.is_fallback:
        image = decode_fallback(sections[fmt.SEC_FALLBACK], mode, w, h, header.channels)
        if fmt.file_crc(data, content_crc(image)) != header.crc32:
            _check_shape(image, header)
            raise DecodeError("CRC mismatch: the file is corrupted")
        return _decode_finish_image(image, header, sections)
    if MODEL_MODES.get(mode) != header.channels or header.bit_depth != 8:
        raise DecodeError(f"mode {mode!r} with {header.channels} channels cannot be model-coded")
    hint = load_model(model) if model is not None else None
    try:
        m = find_model(header.model_name, header.model_hash, hint)
    except ModelError as e:
        raise DecodeError(str(e)) from None
    order, refs = _layout(m, header.channels)
    return _DecodeJob(data, header, sections, m, order, refs)


def _check_shape(image, header: fmt.Header) -> None:
    got_mode, _, _, got_w, got_h = describe(image)
    if (got_mode, got_w, got_h) != (header.mode, header.width, header.height):
        raise DecodeError("decoded image does not match the header's mode and size")


def _decode_finish_image(image, header: fmt.Header, sections: dict):
    _check_shape(image, header)
    if fmt.SEC_META in sections:
        metadata.apply(image, metadata.unpack(sections[fmt.SEC_META]))
    return image


def _decode_finish(job: _DecodeJob, arr: np.ndarray):
    """uint8 (H, W, C) pixels of a model-coded file -> the checked image."""
    header = job.header
    if fmt.file_crc(job.data, zlib.crc32(arr)) != header.crc32:
        raise DecodeError("CRC mismatch: the file is corrupted")
    image = Image.fromarray(arr[:, :, 0] if header.channels == 1 else arr, header.mode)
    return _decode_finish_image(image, header, job.sections)


def _decode_job(job: _DecodeJob, backend):
    h, w, m = job.header.height, job.header.width, job.model
    arr = np.empty((h, w, job.header.channels), dtype=np.uint8)
    if backend is CPU and m.kind == "block-scale" and h > banded.band_rows(w, m.block_log2):
        bs = 1 << m.block_log2
        lane_size, counts, words = fmt.unpack_lanes(job.sections[fmt.SEC_LANES], len(job.order) * h * w)
        q = _decode_side(job.sections[fmt.SEC_SIDE], m, (len(job.order), -(-h // bs), -(-w // bs)))
        banded.decode_planes_banded(q, counts, words, lane_size, h, w, job.refs, m, arr, job.order)
    else:
        planes = decode_planes(job.sections, len(job.order), h, w, job.refs, m, backend)
        arr[:, :, list(job.order)] = planes.transpose(1, 2, 0)
        del planes
    return _decode_finish(job, arr)


def decode_any(data: bytes, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS,
               max_memory: int = fmt.DEFAULT_MAX_MEMORY):
    """Decode to a PIL image, or to a uint16 (H, W, C) array for 16-bit colour images (modes RGB;16, RGBA;16).

    Files whose header asks for more than ``max_pixels`` pixels or ``max_memory`` bytes of working
    memory are refused before anything is allocated."""
    get_backend(device)  # an unknown or unavailable device is an error even for fallback files
    job = _decode_prepare(data, model, max_pixels, max_memory)
    if not isinstance(job, _DecodeJob):
        return job
    return _decode_job(job, backend_for(device, job.model))


def decode(data: bytes, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``.tric`` bytes to a PIL image with the original pixels and mode.

    Raises:
        DecodeError: truncated, corrupted, hostile or future-version data, unknown weights, or a 16-bit
            colour image (which Pillow cannot hold: use :func:`decode_array`).
    """
    image = decode_any(data, device=device, model=model, max_pixels=max_pixels)
    if isinstance(image, np.ndarray):
        raise DecodeError("16-bit colour image: Pillow cannot hold it, use tricodec.decode_array")
    return image


def decode_array(data: bytes, *, device: str = "auto", model=None,
                 max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode to a numpy array: (H, W) or (H, W, C), uint8 for 8-bit modes, uint16 for 16-bit ones."""
    image = decode_any(data, device=device, model=model, max_pixels=max_pixels)
    return image if isinstance(image, np.ndarray) else np.asarray(image)


def encode_batch(images, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS,
                 workers: int = 0) -> list[bytes]:
    """Encode several images (any mix of what :func:`encode` accepts); one independent file each, in order,
    the same bytes as :func:`encode` of each.

    On the CPU ``workers`` images are coded at once (0: as many as
    :func:`tricodec.backend.image_workers` says; one image keeps only as many cores busy as it has
    lanes). On a GPU backend with a context model, the lanes of all the images go through the same
    kernel launches."""
    m = load_model(model)
    backend = backend_for(device, m)
    if backend is CPU or m.kind != "context":
        return _map(lambda im: encode(im, device=device, model=m, max_pixels=max_pixels), images, device, workers)
    jobs = [_encode_prepare(im, m, max_pixels) for im in images]
    coded = [j for j in jobs if j.arr is not None]
    sections = {}
    arrays = [backend.upload(a) for a in m.arrays]
    for group in _groups(coded, lambda j: j.arr.nbytes):
        res = [backend.compute_residuals(backend.upload(j.planes()), j.refs) for j in group]
        rows = [m.lane_rows(j.arr.shape[1], j.arr.shape[0]) for j in group]
        kinds = [backend.upload(cm.plane_kinds(len(j.order))) for j in group]
        lanes = backend.encode_context_batch(res, kinds, *arrays, rows)
        for j, lane_rows, (counts, words) in zip(group, rows, lanes):
            sections[id(j)] = _context_sections(lane_rows, backend.download(counts), backend.download(words))
    return [_encode_finish(j, sections.get(id(j)), m) for j in jobs]


def _decode_context_group(group: list, m, backend) -> dict:
    """Context-model files' lanes in shared launches -> {id(job): image}."""
    shapes = [(len(j.order), j.header.height, j.header.width) for j in group]
    rows = [cm.unpack_side(j.sections[fmt.SEC_SIDE], j.header.height, j.header.width) for j in group]
    lanes = [cm.unpack_lanes(j.sections[fmt.SEC_LANES], sh, r) for j, sh, r in zip(group, shapes, rows)]
    res = backend.decode_context_batch([backend.upload(c) for c, _ in lanes], [backend.upload(w) for _, w in lanes],
                                       shapes, [backend.upload(cm.plane_kinds(sh[0])) for sh in shapes],
                                       *(backend.upload(a) for a in m.arrays), rows)
    scans = [backend.reconstruct(r, j.refs) for j, r in zip(group, res)]  # all queued before the first wait
    out = {}
    for j, scan in zip(group, scans):
        planes = backend.download(scan)
        arr = np.empty((j.header.height, j.header.width, j.header.channels), dtype=np.uint8)
        arr[:, :, list(j.order)] = planes.transpose(1, 2, 0)
        out[id(j)] = _decode_finish(j, arr)
    return out


DEVICE_BATCH_BYTES = 256 << 20  # raw pixel bytes whose residuals sit on the device at once in a batch


def _groups(jobs: list, size) -> list:
    """Consecutive runs of ``jobs`` of at most DEVICE_BATCH_BYTES (a bigger job forms its own run)."""
    out, run, total = [], [], 0
    for j in jobs:
        if run and total + size(j) > DEVICE_BATCH_BYTES:
            out.append(run)
            run, total = [], 0
        run.append(j)
        total += size(j)
    return out + [run] if run else out


def decode_batch(datas, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS,
                 workers: int = 0) -> list:
    """Decode several files (like :func:`decode_any`: PIL images, uint16 arrays for 16-bit colour), in
    order, ``workers`` at once on the CPU; on a GPU backend the context-model files' lanes go through
    the same kernel launches (as in :func:`encode_batch`)."""
    backend = get_backend(device)
    datas = list(datas)
    if device == "auto" or backend is CPU:   # "auto" keeps context-model files on the CPU (backend_for)
        return _map(lambda d: decode_any(d, device=device, model=model, max_pixels=max_pixels), datas, device,
                    workers)
    jobs = [_decode_prepare(d, model, max_pixels, fmt.DEFAULT_MAX_MEMORY) for d in datas]
    ctx = [j for j in jobs if isinstance(j, _DecodeJob) and j.model.kind == "context"]
    out = {}
    for m in {id(j.model): j.model for j in ctx}.values():
        for group in _groups([j for j in ctx if j.model is m],
                             lambda j: j.header.width * j.header.height * j.header.channels):
            out.update(_decode_context_group(group, m, backend))
    return [out[id(j)] if id(j) in out else j if not isinstance(j, _DecodeJob) else _decode_job(j, backend)
            for j in jobs]


def _map(fn, items, device: str, workers: int) -> list:
    items = list(items)
    workers = min(len(items), workers or image_workers(device))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:   # the codec releases the GIL in its numba loops
        return list(pool.map(fn, items))


__all__ = ["encode", "decode", "decode_any", "decode_array", "encode_batch", "decode_batch", "read_header",
           "read_metadata", "TricodecError"]
