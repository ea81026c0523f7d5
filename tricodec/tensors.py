"""Decoded pixels as arrays or torch tensors: ``decode_batch(..., output="numpy" | "torch", stack=...)``.

``output="torch"`` gives each file as a tensor on the backend's device, laid out as :func:`decode_array`
lays it out (channels last, ``(H, W)`` for one channel; uint8, uint16 for 16-bit images). On a GPU
backend the pixels of a model-coded file never come back to the host: the kernels decode its residuals,
the predictor scan reconstructs its planes on the device, the planes are put in channels-last order
there, and the CRC32 that the container records is computed there too (:func:`crc32`), so four bytes a
file cross back for the check. What the model does not code on that device (fallback files, files of a
model that ``device="auto"`` keeps on the CPU, model files of more than 8 bits) is decoded on the host,
then uploaded. On the CPU backend every file is decoded on the host and wrapped without a copy.

torch is imported here, so ``codec`` imports this module only when an output other than PIL is asked for.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from . import codec
from . import container as fmt
from .backend import CPU, get_backend
from .errors import DecodeError

OUTPUTS = ("pil", "numpy", "torch")

# ---- CRC32 on the device ----
# zlib's CRC32 is affine over GF(2): the "raw" CRC (register starting at 0, no final inversion) is linear
# in the data and blind to leading zero bytes, and crc32(d) = raw(d) ^ shift(0xFFFFFFFF, len(d)) ^
# 0xFFFFFFFF, where shift(r, n) runs the register r over n zero bytes (a 32x32 bit matrix, itself linear).
# A row of bytes, zero-padded at the front to CHUNK * 2^k, is cut into chunks of CHUNK bytes whose raw
# CRCs are XORs of per-position tables (no sequential loop), then neighbouring chunks are merged pairwise,
# raw(a + b) = shift(raw(a), len(b)) ^ raw(b), k times. Long inputs go in SEGMENT-byte pieces whose raw
# CRCs are merged on the host the same way (a few bytes each). Integer arithmetic throughout: bit-exact.

CHUNK = 64                     # bytes whose raw CRC is one gather per byte and a XOR tree
SEGMENT = 1 << 22              # bytes of one input a row holds at most
ROW_BYTES = 1 << 24            # padded bytes of one launch's rows (its int64 scratch: 16x this)
_POLY = 0xEDB88320


def _byte_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint64)
    for _ in range(8):
        t = np.where(t & 1, (t >> np.uint64(1)) ^ np.uint64(_POLY), t >> np.uint64(1))
    return t


_TABLE = _byte_table()


def _apply(cols, x):
    """The bit matrix with columns ``cols`` (32 ints) times the register(s) ``x`` (an int or a uint64 array)."""
    if isinstance(x, np.ndarray):
        out = np.zeros_like(x)
        for j, c in enumerate(cols):
            out ^= np.where((x >> np.uint64(j)) & np.uint64(1), np.uint64(c), np.uint64(0))
        return out
    out, j = 0, 0
    while x:
        if x & 1:
            out ^= cols[j]
        x >>= 1
        j += 1
    return out


@lru_cache(maxsize=None)
def _shift_power(k: int) -> tuple:
    """Columns of the matrix that runs the register over 2^k zero bytes."""
    if k == 0:
        return tuple(int(_TABLE[(1 << j) & 0xFF]) ^ ((1 << j) >> 8) for j in range(32))
    half = _shift_power(k - 1)
    return tuple(_apply(half, c) for c in half)


def _shift(x: int, n: int) -> int:
    """The register ``x`` run over ``n`` zero bytes."""
    k = 0
    while n:
        if n & 1:
            x = _apply(_shift_power(k), x)
        n >>= 1
        k += 1
    return x


def _shift_cols(n: int) -> tuple:
    return tuple(_shift(1 << j, n) for j in range(32))


@lru_cache(maxsize=None)
def _position_table(device: torch.device) -> torch.Tensor:
    """int64 (CHUNK * 256,): [i * 256 + b] = raw CRC of byte b at position i of a CHUNK-byte chunk."""
    rows = [_apply(_shift_cols(CHUNK - 1 - i), _TABLE) for i in range(CHUNK)]
    return torch.from_numpy(np.concatenate(rows).astype(np.int64)).to(device)


@lru_cache(maxsize=None)
def _merge_table(n: int, device: torch.device) -> torch.Tensor:
    """int64 (4 * 256,): [k * 256 + v] = shift(v << 8k, n), so shift(r, n) is four look-ups."""
    cols = _shift_cols(n)
    v = np.arange(256, dtype=np.uint64)
    parts = [_apply(cols, v << np.uint64(8 * k)) for k in range(4)]
    return torch.from_numpy(np.concatenate(parts).astype(np.int64)).to(device)


def _raw_rows(rows: torch.Tensor) -> torch.Tensor:
    """uint8 (B, L) with L = CHUNK * 2^k -> int64 (B,): the raw CRC of each row."""
    b, length = rows.shape
    pos = _position_table(rows.device)
    offsets = torch.arange(CHUNK, device=rows.device, dtype=torch.int64) * 256
    x = pos[rows.view(b, length // CHUNK, CHUNK).to(torch.int64) + offsets]
    while x.shape[-1] > 1:                       # XOR tree inside each chunk
        half = x.shape[-1] // 2
        x = x[..., :half] ^ x[..., half:]
    x = x[..., 0]
    n = CHUNK
    while x.shape[1] > 1:                        # merge neighbouring chunks: raw(a + b)
        a, right = x[:, 0::2], x[:, 1::2]
        z = _merge_table(n, rows.device)
        x = z[a & 255] ^ z[256 + ((a >> 8) & 255)] ^ z[512 + ((a >> 16) & 255)] ^ z[768 + (a >> 24)] ^ right
        n *= 2
    return x[:, 0]


def _padded(n: int) -> int:
    chunks = max(1, -(-n // CHUNK))
    return CHUNK << (chunks - 1).bit_length()


def crc32(tensors) -> list[int]:
    """``zlib.crc32`` of each tensor's bytes in memory order (C-contiguous, native byte order), computed
    where the tensor is; only the CRCs cross to the host."""
    flats = [t.contiguous().reshape(-1).view(torch.uint8) for t in tensors]
    pieces = []                                  # (input index, length, padded length, bytes)
    for i, f in enumerate(flats):
        for start in range(0, f.numel(), SEGMENT):
            seg = f[start:start + SEGMENT]
            pieces.append((i, seg.numel(), _padded(seg.numel()), seg))
    raw = [0] * len(pieces)
    by_len: dict = {}
    for p, piece in enumerate(pieces):
        by_len.setdefault((piece[2], piece[3].device), []).append(p)
    for (padded, device), members in by_len.items():
        per_launch = max(1, ROW_BYTES // padded)
        for s in range(0, len(members), per_launch):
            batch = members[s:s + per_launch]
            rows = torch.zeros((len(batch), padded), dtype=torch.uint8, device=device)
            for r, p in enumerate(batch):
                rows[r, padded - pieces[p][1]:] = pieces[p][3]
            for p, v in zip(batch, _raw_rows(rows).tolist()):
                raw[p] = v
    out, accs = [], [0] * len(flats)
    for (i, n, _, _), v in zip(pieces, raw):
        accs[i] = _shift(accs[i], n) ^ v
    for i, f in enumerate(flats):
        out.append(accs[i] ^ _shift(0xFFFFFFFF, f.numel()) ^ 0xFFFFFFFF)
    return out


# ---- decode_batch's outputs ----

def _as_array(image) -> np.ndarray:
    """What :func:`tricodec.decode_array` returns for a decoded image."""
    return image if isinstance(image, np.ndarray) else np.asarray(image)


def _to_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    a = np.asarray(a)                              # a plain ndarray (not a subclass carrying metadata)
    if not a.flags.writeable or not a.flags.c_contiguous or not a.dtype.isnative:
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("="), copy=False)).copy()
    return torch.from_numpy(a).to(device)


def _device_of(backend) -> torch.device:
    """The torch device where ``backend`` keeps its arrays."""
    return torch.device("cpu") if backend is CPU else backend.upload(np.zeros(1, np.uint8)).device


def _describe(x) -> str:
    return f"{'x'.join(map(str, tuple(x.shape)))} {str(x.dtype).replace('torch.', '')}"


def stack_or_list(items: list, stack: bool, lib: str):
    """``items`` as they are, or stacked along a new first axis (``stack=True``; same shapes and dtypes)."""
    if not stack:
        return items
    if not items:
        raise DecodeError("stack=True needs at least one file")
    for i, x in enumerate(items):
        if tuple(x.shape) != tuple(items[0].shape) or x.dtype != items[0].dtype:
            raise DecodeError(f"stack=True needs files of one shape and dtype: file 0 is {_describe(items[0])}, "
                              f"file {i} is {_describe(x)} (stack=False gives a list)")
    if lib == "numpy":
        return np.stack(items)
    signed = {torch.uint16: torch.int16, torch.uint32: torch.int32}.get(items[0].dtype)
    if signed is None:
        return torch.stack(items)
    # torch has few kernels for its wide unsigned types (cat among those missing on some devices):
    # the same bits, stacked as the signed type of that width.
    return torch.stack([x.view(signed) for x in items]).view(items[0].dtype)


def decode_batch_numpy(datas: list, stack: bool, **kw):
    return stack_or_list([_as_array(x) for x in codec.decode_batch(datas, **kw)], stack, "numpy")


def decode_batch_torch(datas: list, stack: bool, *, device: str, model, max_pixels: int, workers: int):
    """``decode_batch(..., output="torch")``: see the module docstring."""
    backend = get_backend(device)
    target = _device_of(backend)
    if backend is CPU:
        decoded = codec.decode_batch(datas, device=device, model=model, max_pixels=max_pixels, workers=workers)
        return stack_or_list([_to_tensor(_as_array(x), target) for x in decoded], stack, "torch")
    jobs = [codec._decode_prepare(d, model, max_pixels, fmt.DEFAULT_MAX_MEMORY) for d in datas]
    out = {}
    coded = [j for j in jobs if isinstance(j, codec._DecodeJob)]
    on_host = [j for j in coded if codec.backend_for(device, j.model) is CPU or j.header.bit_depth != 8]
    if on_host:
        images = codec._map(lambda j: codec._decode_job(j, codec.backend_for(device, j.model)), on_host,
                            "cpu", workers)
        out.update((id(j), _to_tensor(_as_array(im), target)) for j, im in zip(on_host, images))
    on_device = [j for j in coded if id(j) not in out]
    for m in {id(j.model): j.model for j in on_device}.values():
        for group in codec._groups([j for j in on_device if j.model is m],
                                   lambda j: j.header.width * j.header.height * j.header.channels):
            out.update(_decode_group_on_device(group, m, codec.backend_for(device, m)))
    tensors = [out[id(j)] if isinstance(j, codec._DecodeJob) else _to_tensor(_as_array(j), target) for j in jobs]
    return stack_or_list(tensors, stack, "torch")


def _decode_group_on_device(group: list, m, backend) -> dict:
    """8-bit model files of one model through its batch hook, kept on the device -> {id(job): tensor}."""
    shapes = [(len(j.order), j.header.height, j.header.width) for j in group]
    scans = m.decode_planes_batch([j.sections for j in group], shapes, [j.refs for j in group], backend)
    arrs = []
    for j, planes in zip(group, scans):                  # planes: (P, H, W) in coding order
        inverse = [list(j.order).index(c) for c in range(j.header.channels)]
        arrs.append(planes[inverse].permute(1, 2, 0).contiguous())   # (H, W, C): Pillow's byte order
    out = {}
    for j, arr, crc in zip(group, arrs, crc32(arrs)):
        if fmt.file_crc(j.data, crc) != j.header.crc32:  # the check codec._decode_finish makes on the host
            raise DecodeError("CRC mismatch: the file is corrupted")
        out[id(j)] = arr[:, :, 0] if j.header.channels == 1 else arr
    return out
