"""The one switch point for the backend. Every backend writes and reads the same bytes.

* ``"cpu"``: the reference twins (numpy + numba), which are also the specification;
* ``"auto"``: ``"cpu"`` in this version (the Triton backends are added by the kernels issue).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import predictor_ref, rans_ref
from .errors import BackendError
from .model import block_table_ids

DEVICES = ("auto", "cpu")


@dataclass(frozen=True)
class Backend:
    name: str
    compute_residuals: Callable
    reconstruct: Callable
    table_ids: Callable          # (side_info uint8 (P,Hb,Wb), H, W, block_log2) -> int32 (P,H,W)
    encode_lanes: Callable
    decode_lanes: Callable


CPU = Backend(
    name="cpu",
    compute_residuals=predictor_ref.compute_residuals,
    reconstruct=predictor_ref.reconstruct,
    table_ids=block_table_ids,
    encode_lanes=rans_ref.encode_lanes,
    decode_lanes=rans_ref.decode_lanes,
)


def get_backend(device: str = "auto") -> Backend:
    if device in ("auto", "cpu"):
        return CPU
    raise BackendError(f"device {device!r} is not available (choose from: {', '.join(DEVICES)})")
