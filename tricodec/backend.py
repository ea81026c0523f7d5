"""The one switch point for the backend. Every backend writes and reads the same bytes.

* ``"cpu"``: the reference twins (numpy + numba), which are also the specification;
* ``"cuda"``: the Triton kernels (``tricodec.kernels``) on the GPU, torch for glue;
* ``"triton"``: the Triton kernels wherever the tensors are: on the GPU when there is one, else on CPU
  tensors under the Triton interpreter (``TRITON_INTERPRET=1`` must be in the environment before the
  kernels are first imported; it is slow and meant for tests);
* ``"auto"``: ``"cuda"`` when torch sees a GPU, else ``"cpu"``.

A Backend's functions take and return the backend's own arrays (numpy on ``cpu``, torch tensors on
the device otherwise); ``codec.py`` crosses between host and device only through ``upload`` and
``download``.  torch and Triton are imported lazily, so ``import tricodec`` and the ``"cpu"`` backend
never need a working Triton.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from . import blend_ref, context_ref, fused_ref, predictor_ref, rans_ref, wavefront_ref
from .errors import BackendError
from .model import block_table_ids, choose_block_scales

DEVICES = ("auto", "cpu", "cuda", "triton")


@dataclass(frozen=True)
class Backend:
    """The coding stages on one backend. Arrays are the backend's own: numpy for ``cpu``, torch tensors
    on the backend's device for the Triton backends; ``upload``/``download`` are the only crossings, so
    data stays on the device from the uploaded pixels to the downloaded lanes."""
    name: str
    upload: Callable               # numpy -> backend array
    download: Callable             # backend array -> numpy
    # MED predictor, samples of bits = 1..16 bits: arrays uint8 at bits == 8, uint16 at any bits;
    # output dtype = input dtype (predictor_ref's docstring states the rule)
    compute_residuals: Callable    # (planes (P,H,W), refs, bits=8) -> residuals (P,H,W)
    reconstruct: Callable          # (residuals (P,H,W), refs, bits=8) -> planes (P,H,W)
    # blended predictor, the same depth rule (blend_ref's docstring): uint8 at bits == 8, uint16 at any
    compute_blend_residuals: Callable  # (planes (P,H,W), params int (P,5), bits=8) -> residuals (P,H,W)
    reconstruct_blend: Callable    # (residuals (P,H,W), params int (P,5), bits=8) -> planes (P,H,W)
    choose_block_scales: Callable  # (residuals, cost int32 (T,256), block_log2) -> uint8 (P,Hb,Wb)
    table_ids: Callable            # (side_info uint8 (P,Hb,Wb), H, W, block_log2) -> int32 (P,H,W)
    encode_lanes: Callable         # (symbols, table_ids, cdf, lane_size) -> (counts, words)
    decode_lanes: Callable         # (counts, words, table_ids, cdf, lane_size) -> symbols
    # context model: (residuals, kinds, init_a, init_b, bin_a, bin_b, rate_lut, lane_rows) -> (counts, words)
    encode_context_lanes: Callable
    # (counts, words, (P,H,W), kinds, init_a, init_b, bin_a, bin_b, rate_lut, lane_rows) -> residuals
    decode_context_lanes: Callable
    # the same for several images at once: lists per image in, a list per image out
    encode_context_batch: Callable
    decode_context_batch: Callable
    # wavefront model: (residuals, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, lane_rows)
    # -> (counts (n, 2), words)
    encode_wavefront_lanes: Callable
    # (counts, words, (P,H,W), kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, lane_rows)
    # -> residuals
    decode_wavefront_lanes: Callable
    encode_wavefront_batch: Callable
    decode_wavefront_batch: Callable
    # fused model (params, mix, bias: host arrays; None: the encoder's choice, made on the host):
    # (planes (P,H,W), params, kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut,
    # update_steps, lane_rows) -> (mix, bias, counts, words)
    encode_fused: Callable
    # (counts, words, (P,H,W), params, mix, bias, kinds, init_a, ..., lane_rows) -> planes (P,H,W)
    decode_fused: Callable


def _identity(a):
    return a


CPU = Backend(
    name="cpu",
    upload=_identity,
    download=_identity,
    compute_residuals=predictor_ref.compute_residuals,
    reconstruct=predictor_ref.reconstruct,
    # by keyword: the twin's third positional argument is only_plane
    compute_blend_residuals=lambda planes, params, bits=8: blend_ref.compute_blend_residuals(planes, params, bits=bits),
    reconstruct_blend=blend_ref.reconstruct_blend,
    choose_block_scales=choose_block_scales,
    table_ids=block_table_ids,
    encode_lanes=rans_ref.encode_lanes,
    decode_lanes=rans_ref.decode_lanes,
    encode_context_lanes=context_ref.encode_context_lanes,
    decode_context_lanes=context_ref.decode_context_lanes,
    encode_context_batch=context_ref.encode_context_lanes_batch,
    decode_context_batch=context_ref.decode_context_lanes_batch,
    encode_wavefront_lanes=wavefront_ref.encode_wavefront_lanes,
    decode_wavefront_lanes=wavefront_ref.decode_wavefront_lanes,
    encode_wavefront_batch=wavefront_ref.encode_wavefront_lanes_batch,
    decode_wavefront_batch=wavefront_ref.decode_wavefront_lanes_batch,
    encode_fused=fused_ref.encode_fused,
    decode_fused=fused_ref.decode_fused,
)

_GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL


def cuda_available() -> bool:
    """torch.cuda.is_available(), without importing torch (~1 s) on a Linux box with no GPU driver."""
    if sys.platform.startswith("linux") and "torch" not in sys.modules \
            and not any(os.path.exists(p) for p in _GPU_DEVICE_NODES):
        return False
    try:
        import torch
    except Exception:  # pragma: no cover - torch is a dependency, but never let auto fail on it
        return False
    return bool(torch.cuda.is_available())


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _kernels():
    try:
        from .kernels import (blend_residual, blend_scan, block_scales, context_decode, context_encode,
                              fused_decode, fused_encode, predictor_residual, predictor_scan, rans_decode, rans_encode,
                              table_ids, wavefront_decode, wavefront_encode)
    except Exception as e:
        raise BackendError(f"the Triton kernels cannot be imported: {type(e).__name__}: {e}") from None
    return (block_scales, predictor_residual, predictor_scan, rans_decode, rans_encode, table_ids,
            context_encode, context_decode, wavefront_encode, wavefront_decode, blend_residual, blend_scan,
            fused_encode, fused_decode)


def _kernels_interpreted(module) -> bool:
    from triton.runtime.interpreter import InterpretedFunction
    return isinstance(module._rans_encode_kernel, InterpretedFunction)


def _triton_backend(name: str, device: str) -> Backend:
    """The kernels on torch ``device``; arrays are torch tensors on that device."""
    import torch

    (scales, pred_res, pred_scan, rans_dec, rans_enc, tab, ctx_enc, ctx_dec, wf_enc, wf_dec, blend_res,
     blend_scan, fused_enc, fused_dec) = _kernels()
    dev = torch.device(device)

    def upload(a: np.ndarray) -> "torch.Tensor":
        a = np.ascontiguousarray(a)
        if a.dtype == np.uint32:  # torch has few uint32 kernels; every uint32 here fits int64
            a = a.astype(np.int64)
        t = torch.from_numpy(a)
        if dev.type == "cuda":
            # A pinned staging copy makes the transfer asynchronous: a batch's uploads queue up on the
            # stream behind the kernels instead of stalling the host (torch keeps the pinned block
            # alive until its copy has run).
            t = t.pin_memory()
        return t.to(dev, non_blocking=True)

    def download(t: "torch.Tensor") -> np.ndarray:
        return t.cpu().numpy()

    def _refs(refs):
        return tuple(int(r) for r in refs)

    return Backend(
        name=name, upload=upload, download=download,
        compute_residuals=lambda planes, refs, bits=8: pred_res.compute_residuals(planes, _refs(refs), bits),
        reconstruct=lambda residuals, refs, bits=8: pred_scan.reconstruct(residuals, _refs(refs), bits),
        compute_blend_residuals=blend_res.compute_blend_residuals,    # (planes, params, bits=8)
        reconstruct_blend=blend_scan.reconstruct_blend,               # (residuals, params, bits=8)
        choose_block_scales=scales.choose_block_scales,
        table_ids=tab.block_table_ids,
        encode_lanes=rans_enc.encode_lanes,
        decode_lanes=rans_dec.decode_lanes,
        encode_context_lanes=ctx_enc.encode_context_lanes,
        decode_context_lanes=ctx_dec.decode_context_lanes,
        encode_context_batch=ctx_enc.encode_context_lanes_batch,
        decode_context_batch=ctx_dec.decode_context_lanes_batch,
        encode_wavefront_lanes=wf_enc.encode_wavefront_lanes,
        decode_wavefront_lanes=wf_dec.decode_wavefront_lanes,
        encode_wavefront_batch=wf_enc.encode_wavefront_lanes_batch,
        decode_wavefront_batch=wf_dec.decode_wavefront_lanes_batch,
        encode_fused=fused_enc.encode_fused,
        decode_fused=fused_dec.decode_fused)


@lru_cache(maxsize=None)
def _cuda_backend() -> Backend:
    if not cuda_available():
        raise BackendError("device 'cuda' needs a CUDA GPU, and torch sees none (use 'cpu' or 'auto')")
    return _triton_backend("cuda", "cuda")


@lru_cache(maxsize=None)
def _any_triton_backend() -> Backend:
    if interpreting():
        rans_enc = _kernels()[4]
        if not _kernels_interpreted(rans_enc):
            raise BackendError("TRITON_INTERPRET was set after the Triton kernels were imported; set it "
                               "before importing tricodec.kernels (or tricodec's triton backend)")
        return _triton_backend("triton", "cpu")
    if cuda_available():
        return _triton_backend("triton", "cuda")
    raise BackendError("device 'triton' needs a CUDA GPU or the Triton interpreter "
                       "(set TRITON_INTERPRET=1 before tricodec's kernels are imported)")


@lru_cache(maxsize=None)
def _threadsafe_parallel_layer() -> bool:
    import numba

    predictor_ref.compute_residuals(np.zeros((1, 1, 1), np.uint8), (-1,))  # makes numba pick its layer
    # numba's tbb and omp layers may be entered from several threads at once; workqueue may not.
    return numba.threading_layer() in ("tbb", "omp")


def image_workers(device: str = "auto") -> int:
    """How many images a directory run should code at once: on the CPU backend, several (a model's
    parallelism inside one image is its strips, often one or two), as many as the machine has cores up to
    4, when numba's threading layer is thread-safe; on a GPU backend (``"auto"`` where there is a GPU)
    one: files go to the GPU in batches instead."""
    if get_backend(device) is not CPU or not _threadsafe_parallel_layer():
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def get_backend(device: str = "auto") -> Backend:
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if device == "cpu":
        return CPU
    if device == "cuda":
        return _cuda_backend()
    if device == "triton":
        return _any_triton_backend()
    raise BackendError(f"device {device!r} is not available (choose from: {', '.join(DEVICES)})")
