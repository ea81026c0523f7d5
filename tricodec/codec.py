"""The one encode/decode path. ``encode`` and ``decode`` mirror each other step by step::

    encode: pixels -> planes -> residuals -> [context model: adaptive context lanes
                                              | block-scale model: side info -> table ids -> rANS lanes] -> container
    decode: container -> [lanes -> residuals] -> planes (scan) -> pixels, CRC

``encode_batch``/``decode_batch`` run the same steps (``_encode_prepare``/``_encode_finish``,
``_decode_prepare``/``_decode_finish``) for several images, their lanes in shared launches on a GPU.
16-bit images take the same path through ``deep.py``'s depth split (``encode_model``/``decode_model``:
the model codes 8-bit symbols, the DEEP section the rest), one image at a time.
"""
from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import container as fmt
from . import deep, metadata
from .backend import CPU, get_backend, image_workers
from .errors import DecodeError, EncodeError, ModelError, TricodecError
from .fallback import choose_fallback, decode_fallback, start_estimates
from .model import find_model, load_model
from .pixels import content_crc, describe, mode_layout, normalize, pixel_bytes

# Modes the model codes, with their planes' channel counts: 8-bit, and 16-bit through the depth split.
MODEL_MODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
DEEP_MODEL_MODES = {"I;16": 1, "LA;16": 2, "RGB;16": 3, "RGBA;16": 4}


def _layout(model, channels: int) -> tuple[tuple, tuple]:
    """Coding order and refs: colour channels as the model says, alpha (if any) last, alone."""
    colour = 1 if channels <= 2 else 3
    order, refs = model.plane_layout(colour)
    if channels in (2, 4):
        order, refs = tuple(order) + (colour,), tuple(refs) + (-1,)
    return tuple(order), tuple(refs)


# ---- the model path: each model kind codes its planes behind model_base's interface ----

def encode_model(arr: np.ndarray, order: tuple, refs: tuple, model, backend) -> list[tuple[int, bytes]]:
    """(H, W, C) pixels -> the model's sections: uint8 through the model's whole-image step, uint16
    through the depth split (``deep.py``) around the model's residual coder."""
    if arr.dtype == np.uint16:
        planes = np.ascontiguousarray(arr.transpose(2, 0, 1)[list(order)])
        return deep.encode_deep(model, planes, backend)     # (its own predictor and references)
    return model.encode_image(arr, order, refs, backend)


def decode_model(sections: dict, arr: np.ndarray, order: tuple, refs: tuple, model, backend) -> None:
    """Inverse of :func:`encode_model`, into ``arr`` (uint8 or uint16 (H, W, C))."""
    if arr.dtype == np.uint16:
        h, w = arr.shape[:2]
        arr[:, :, list(order)] = deep.decode_deep(model, sections, (len(order), h, w), backend).transpose(1, 2, 0)
    else:
        model.decode_image(sections, arr, order, refs, backend)


def encode_planes(planes: np.ndarray, refs: tuple, model, backend) -> list[tuple[int, bytes]]:
    """uint8 (P, H, W) planes in coding order -> the model's sections (SIDE, LANES)."""
    return model.encode_planes_batch([planes], [refs], backend)[0]


def decode_planes(sections: dict, n_planes: int, h: int, w: int, refs: tuple, model, backend) -> np.ndarray:
    """Inverse of :func:`encode_planes` -> uint8 (P, H, W)."""
    return backend.download(model.decode_planes_batch([sections], [(n_planes, h, w)], [refs], backend)[0])


# ---- public API ----

@dataclass
class _EncodeJob:
    """One image between :func:`_encode_prepare` and :func:`_encode_finish`."""
    image: object
    header: fmt.Header
    raw: object                  # the pixel bytes (a view of ``arr`` for 8-bit model modes)
    tail: list                   # the META section, if any
    crc: int
    arr: np.ndarray | None       # uint8 / uint16 (H, W, C) for model modes, else None (fallback only)
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
    if mode in DEEP_MODEL_MODES:
        arr = np.asarray(image).astype(np.uint16, copy=False).reshape(h, w, channels)
    # For 8-bit model modes the array holds exactly Pillow's tobytes(): no second copy of a big image.
    raw = memoryview(arr).cast("B") if is_model_mode else pixel_bytes(image)
    meta = metadata.collect(image)
    tail = [(fmt.SEC_META, metadata.pack(meta))] if meta else []
    crc = content_crc(image, raw if is_model_mode else None)
    header = fmt.Header(width=w, height=h, channels=channels, bit_depth=depth, mode=mode)
    job = _EncodeJob(image, header, raw, tail, crc, arr)
    if arr is not None:
        job.order, job.refs = _layout(model, channels)
    return job


def _encode_finish(job: _EncodeJob, sections, model, estimates=None) -> bytes:
    """The model's sections (None: fallback only) -> the file, or a fallback file where that is smaller
    (which fallbacks are tried, at what cost: ``fallback.choose_fallback``; ``estimates``: theirs, started
    beforehand by ``fallback.start_estimates``)."""
    model_size = None if sections is None else sum(len(p) for _, p in sections)
    payload = choose_fallback(job.image, model_size, job.raw, estimates)
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
    # The fallback check's estimates: their dearest part starts now, beside the model's one-threaded
    # start; the rest runs after the model, in two threads (all of them beside the model, on two cores,
    # stalled one of its strips' threads while the other waited: +40% on 0.25 MP grey photos).
    estimates = start_estimates(job.image, job.raw)
    return _encode_finish(job, encode_model(job.arr, job.order, job.refs, model, backend), model, estimates)


def backend_for(device: str, model):
    """The backend that codes with ``model``: ``device``'s, except that ``"auto"`` runs a model that does
    not suit a GPU (``model.prefers_gpu`` false: the context model's one or two sequential lanes per image)
    on the CPU even where a GPU is present. ``device="cuda"`` or ``"triton"`` still runs the kernels."""
    if device == "auto" and not getattr(model, "prefers_gpu", True):
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
    modes = DEEP_MODEL_MODES if header.bit_depth == 16 else MODEL_MODES if header.bit_depth == 8 else {}
    if modes.get(mode) != header.channels:
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
        image = metadata.apply(image, metadata.unpack(sections[fmt.SEC_META]))  # deep arrays: a DeepArray
    return image


def _decode_finish(job: _DecodeJob, arr: np.ndarray):
    """uint8 / uint16 (H, W, C) pixels of a model-coded file -> the checked image."""
    header = job.header
    if arr.dtype == np.uint16:
        image = Image.fromarray(arr[:, :, 0]) if header.channels == 1 else arr   # uint16 (H, W) -> I;16
        crc = content_crc(image)
    else:
        image = None
        crc = zlib.crc32(arr)
    if fmt.file_crc(job.data, crc) != header.crc32:
        raise DecodeError("CRC mismatch: the file is corrupted")
    if image is None:
        image = Image.fromarray(arr[:, :, 0] if header.channels == 1 else arr, header.mode)
    return _decode_finish_image(image, header, job.sections)


def _decode_job(job: _DecodeJob, backend):
    h, w = job.header.height, job.header.width
    dtype = np.uint16 if job.header.bit_depth == 16 else np.uint8
    arr = np.empty((h, w, job.header.channels), dtype=dtype)
    decode_model(job.sections, arr, job.order, job.refs, job.model, backend)
    return _decode_finish(job, arr)


def decode_any(data: bytes, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS,
               max_memory: int = fmt.DEFAULT_MAX_MEMORY):
    """Decode to a PIL image, or to a uint16 (H, W, C) array for the 16-bit images Pillow cannot hold (modes
    RGB;16, RGBA;16, LA;16).

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
        kind = "grey+alpha" if image.shape[2] == 2 else "colour"
        raise DecodeError(f"16-bit {kind} image: Pillow cannot hold it, use tricodec.decode_array")
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
    :func:`tricodec.backend.image_workers` says). On a GPU backend the images go through the model's batch
    hook (the wavefront and context models put all their strips through the same kernel launches)."""
    m = load_model(model)
    backend = backend_for(device, m)
    if backend is CPU:
        return _map(lambda im: encode(im, device=device, model=m, max_pixels=max_pixels), images, device, workers)
    jobs = [_encode_prepare(im, m, max_pixels) for im in images]
    sections = {id(j): encode_model(j.arr, j.order, j.refs, m, backend)
                for j in jobs if j.arr is not None and j.arr.dtype == np.uint16}
    for group in _groups([j for j in jobs if j.arr is not None and id(j) not in sections], lambda j: j.arr.nbytes):
        for j, secs in zip(group, m.encode_planes_batch([j.planes() for j in group], [j.refs for j in group],
                                                        backend)):
            sections[id(j)] = secs
    return [_encode_finish(j, sections.get(id(j)), m) for j in jobs]


def _decode_group(group: list, m, backend) -> dict:
    """Files of one model through its batch hook -> {id(job): image}."""
    shapes = [(len(j.order), j.header.height, j.header.width) for j in group]
    scans = m.decode_planes_batch([j.sections for j in group], shapes, [j.refs for j in group], backend)
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
                 workers: int = 0, output: str = "pil", stack: bool = False):
    """Decode several files (like :func:`decode_any`: PIL images, uint16 arrays for 16-bit colour or
    grey+alpha), in order, ``workers`` at once on the CPU; on a GPU backend each model's files go through
    its batch hook (as in :func:`encode_batch`), except files whose model ``device="auto"`` keeps on the
    CPU.

    ``output="numpy"`` gives what :func:`decode_array` gives for each file; ``output="torch"`` the same as
    torch tensors on the backend's device (on a GPU, model-coded files never come back to the host:
    ``tricodec/tensors.py``); ``stack=True`` (numpy or torch) one array of shape (N, ...) instead of a
    list, for files of one shape and dtype (DecodeError otherwise)."""
    if output != "pil":
        from . import tensors  # imports torch
        if output not in tensors.OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(map(repr, tensors.OUTPUTS))}, not {output!r}")
        decode = tensors.decode_batch_torch if output == "torch" else tensors.decode_batch_numpy
        return decode(list(datas), stack, device=device, model=model, max_pixels=max_pixels, workers=workers)
    if stack:
        raise ValueError("stack=True needs output='numpy' or output='torch'")
    datas = list(datas)
    if get_backend(device) is CPU:
        return _map(lambda d: decode_any(d, device=device, model=model, max_pixels=max_pixels), datas, device,
                    workers)
    jobs = [_decode_prepare(d, model, max_pixels, fmt.DEFAULT_MAX_MEMORY) for d in datas]
    coded = [j for j in jobs if isinstance(j, _DecodeJob)]
    on_cpu = [j for j in coded if backend_for(device, j.model) is CPU]
    out = dict(zip(map(id, on_cpu), _map(lambda j: _decode_job(j, CPU), on_cpu, "cpu", workers)))
    out.update((id(j), _decode_job(j, backend_for(device, j.model)))      # 16-bit: one at a time
               for j in coded if id(j) not in out and j.header.bit_depth == 16)
    on_gpu = [j for j in coded if id(j) not in out]
    for m in {id(j.model): j.model for j in on_gpu}.values():
        for group in _groups([j for j in on_gpu if j.model is m],
                             lambda j: j.header.width * j.header.height * j.header.channels):
            out.update(_decode_group(group, m, backend_for(device, m)))
    return [out[id(j)] if isinstance(j, _DecodeJob) else j for j in jobs]


def _map(fn, items, device: str, workers: int) -> list:
    items = list(items)
    workers = min(len(items), workers or image_workers(device))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:   # the codec releases the GIL in its numba loops
        return list(pool.map(fn, items))


__all__ = ["encode", "decode", "decode_any", "decode_array", "encode_batch", "decode_batch", "read_header",
           "read_metadata", "TricodecError"]
