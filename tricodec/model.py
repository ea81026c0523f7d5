"""Models: what decides predictions and table ids, loaded from a weights file whose sha256 is checked.

A weights file is an ``.npz`` (loaded without pickle) holding ``config`` (a JSON string) and integer
arrays.  The container records the model's name and the first 8 bytes of the file's sha256; a decoder
refuses a file whose model it does not have.

Two kinds of weights:

* ``"block-scale"`` (:class:`BlockScaleModel`): one scale index per 8x8 block and plane, chosen by the
  encoder to minimise the block's code length and transmitted as side information; static tables.
* ``"context"`` (:class:`tricodec.context_model.ContextModel`): no side information; trained starting
  tables for a causal context coder that adapts them while coding (the shipped default).

The model named in a file's header decides how its SIDE and LANES sections read.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from numba import njit, prange

from . import block_scale_side as side
from . import container as fmt
from . import context_ref as cr
from . import context_model as cm
from . import model_id
from .context_model import ContextModel
from . import wavefront_ref as wr
from .wavefront_model import WavefrontModel
from .errors import ModelError
from .model_base import NamedWeights
from .tables import code_length_bits

WEIGHTS_DIR = "weights"
REGISTRY = "MODELS.json"
DEFAULT_MODEL = "tric-wf3"


@dataclass(frozen=True, eq=False)
class BlockScaleModel(NamedWeights):
    kind = "block-scale"
    name: str
    sha256: str
    cdf: np.ndarray            # uint32 (K, 257): table k is a discretised Laplace of scale grid[k]
    block_log2: int            # side-info cell is (2**block_log2)^2 pixels of one plane
    lane_log2: int             # symbols per rANS lane
    rgb_order: tuple           # coding order of the R, G, B channels
    rgb_refs: tuple            # reference plane of each coded plane (-1: none)

    @property
    def n_tables(self) -> int:
        return self.cdf.shape[0]

    @property
    def cost(self) -> np.ndarray:
        """int32 (T, 256) code length of each symbol under each table, in 1/256 bit."""
        return _cost_bits(self)

    def choose_side_info(self, residuals, backend):
        """Encoder only. uint8 (P, H, W) residuals -> uint8 (P, Hb, Wb) scale index per block: the first
        table with the smallest integer code length for that block (same choice on every backend)."""
        return backend.choose_block_scales(residuals, backend.upload(self.cost), self.block_log2)

    def table_ids(self, side_info, height: int, width: int, backend):
        """Both sides. uint8 (P, Hb, Wb) -> int32 (P, H, W): each symbol's table id."""
        return backend.table_ids(side_info, height, width, self.block_log2)

    # ---- the model interface (model_base.NamedWeights) ----

    def encode_residuals(self, res, backend) -> list:
        _, h, w = (int(v) for v in res.shape)
        q = self.choose_side_info(res, backend)
        ids = self.table_ids(q, h, w, backend)
        counts, words = backend.encode_lanes(res.reshape(-1), ids.reshape(-1), backend.upload(self.cdf),
                                             1 << self.lane_log2)
        return self._sections(backend.download(q), backend.download(counts), backend.download(words))

    def _sections(self, q, counts, words) -> list:
        return [(fmt.SEC_SIDE, side.encode_side(q, self.n_tables, self.lane_log2)),
                (fmt.SEC_LANES, fmt.pack_lanes(self.lane_log2, counts, words))]

    def _side(self, secs: dict, shape: tuple):
        bs = 1 << self.block_log2
        return side.decode_side(secs[fmt.SEC_SIDE], self.n_tables, (shape[0], -(-shape[1] // bs), -(-shape[2] // bs)))

    def decode_residuals(self, secs: dict, shape: tuple, backend):
        # the lane table is checked against the header first: cheap, and a hostile file's huge side
        # information is never decoded
        lane_size, counts, words = fmt.unpack_lanes(secs[fmt.SEC_LANES], int(np.prod(shape)))
        q = self._side(secs, shape)
        ids = self.table_ids(backend.upload(q), shape[1], shape[2], backend)
        res = backend.decode_lanes(backend.upload(counts), backend.upload(words), ids.reshape(-1),
                                   backend.upload(self.cdf), lane_size)
        return res.reshape(shape)

    def _banded(self, backend, h: int, w: int) -> bool:
        """Big images on the CPU are coded band by band (``banded.py``): same bytes, bounded memory."""
        from . import banded
        return backend.name == "cpu" and h > banded.band_rows(w, self.block_log2)

    def encode_image(self, arr, order, refs, backend) -> list:
        if not self._banded(backend, *arr.shape[:2]):
            return super().encode_image(arr, order, refs, backend)
        from . import banded
        q, counts, words = banded.encode_planes_banded(arr, order, refs, self)
        return self._sections(q, counts, words)

    def decode_image(self, secs: dict, arr, order, refs, backend) -> None:
        h, w = arr.shape[:2]
        if not self._banded(backend, h, w):
            return super().decode_image(secs, arr, order, refs, backend)
        from . import banded
        shape = (len(order), h, w)
        lane_size, counts, words = fmt.unpack_lanes(secs[fmt.SEC_LANES], int(np.prod(shape)))
        banded.decode_planes_banded(self._side(secs, shape), counts, words, lane_size, h, w, refs, self, arr, order)


@lru_cache(maxsize=8)
def _cost_bits(model: BlockScaleModel) -> np.ndarray:
    return cost_units(model.cdf)


COST_SCALE = 256  # code lengths in 1/256 bit: integer sums make the choice identical everywhere


def cost_units(cdf: np.ndarray) -> np.ndarray:
    """int32 (T, A) code length of each symbol under each table, in 1/COST_SCALE bits."""
    return np.round(code_length_bits(cdf) * COST_SCALE).astype(np.int32)


@njit(cache=True, parallel=True, nogil=True)
def _choose_nb(res, cost, block_log2, out):
    n_planes, h, w = res.shape
    n_tables = cost.shape[0]
    hb, wb = out.shape[1], out.shape[2]
    for job in prange(n_planes * hb):
        k = job // hb
        by = job % hb
        acc = np.zeros((wb, n_tables), dtype=np.int64)
        for y in range(by << block_log2, min(h, (by + 1) << block_log2)):
            for x in range(w):
                s = res[k, y, x]
                bx = x >> block_log2
                for t in range(n_tables):
                    acc[bx, t] += cost[t, s]
        for bx in range(wb):
            best = 0
            for t in range(1, n_tables):
                if acc[bx, t] < acc[bx, best]:
                    best = t
            out[k, by, bx] = best


def choose_block_scales(residuals: np.ndarray, cost: np.ndarray, block_log2: int) -> np.ndarray:
    """uint8 (P, H, W) residuals, int32 (T, 256) costs -> uint8 (P, Hb, Wb): per block, the first table
    with the smallest integer code length."""
    p, h, w = residuals.shape
    bs = 1 << block_log2
    out = np.empty((p, -(-h // bs), -(-w // bs)), dtype=np.uint8)
    _choose_nb(np.ascontiguousarray(residuals), np.ascontiguousarray(cost, dtype=np.int32), block_log2, out)
    return out


def block_table_ids(side_info: np.ndarray, height: int, width: int, block_log2: int) -> np.ndarray:
    """Reference twin of the table-id step: ``ids[k, y, x] = side_info[k, y >> b, x >> b]``.

    Returns an integer (P, H, W) array of side_info's dtype (uint8: a quarter of int32's memory on
    the CPU path; the kernel returns int32, with equal values)."""
    rows = np.arange(height) >> block_log2
    cols = np.arange(width) >> block_log2
    return side_info[:, rows[:, None], cols[None, :]]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _context_model(config: dict, arrays: dict, name: str, digest: str) -> ContextModel:
    try:
        init_a, init_b, bin_a, bin_b, rate_lut = (np.ascontiguousarray(arrays[k], dtype=np.int32) for k in
                                                  ("init_a", "init_b", "bin_a", "bin_b", "rate_lut"))
        cr.check_model_arrays(np.zeros(1, np.int32), init_a, init_b, bin_a, bin_b, rate_lut, 1)
        lane_pixels = int(config["lane_pixels"])
        if not cm.MIN_LANE_PIXELS <= lane_pixels <= 1 << 30:
            raise ValueError(f"lane_pixels must be in [{cm.MIN_LANE_PIXELS}, 2**30]")
        return ContextModel(name=name, sha256=digest, init_a=init_a, init_b=init_b, bin_a=bin_a, bin_b=bin_b,
                            rate_lut=rate_lut, lane_pixels=lane_pixels, rgb_order=tuple(config["rgb_order"]),
                            rgb_refs=tuple(config["rgb_refs"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ModelError(f"malformed context-model weights: {e}") from None


def _wavefront_model(config: dict, arrays: dict, name: str, digest: str) -> WavefrontModel:
    try:
        init_a, init_b, bin_a, bin_b, weight_lut = (np.ascontiguousarray(arrays[k], dtype=np.int32) for k in
                                                    ("init_a", "init_b", "bin_a", "bin_b", "weight_lut"))
        wr.check_model_arrays_wf(np.zeros(1, np.int32), init_a, init_b, bin_a, bin_b, weight_lut, 1)
        lane_pixels = int(config["lane_pixels"])
        update_steps = int(config["update_steps"])
        if not cm.MIN_LANE_PIXELS <= lane_pixels <= 1 << 30:
            raise ValueError(f"lane_pixels must be in [{cm.MIN_LANE_PIXELS}, 2**30]")
        if not 1 <= update_steps <= wr.MAX_UPDATE_STEPS:
            raise ValueError(f"update_steps must be in 1..{wr.MAX_UPDATE_STEPS}")
        predictor = str(config.get("predictor", "med"))
        if predictor not in ("med", "blend"):
            raise ValueError(f"unknown predictor {predictor!r}")
        return WavefrontModel(name=name, sha256=digest, init_a=init_a, init_b=init_b, bin_a=bin_a, bin_b=bin_b,
                              weight_lut=weight_lut, update_steps=update_steps, lane_pixels=lane_pixels,
                              rgb_order=tuple(config["rgb_order"]), rgb_refs=tuple(config["rgb_refs"]),
                              predictor=predictor)
    except (KeyError, ValueError, TypeError) as e:
        raise ModelError(f"malformed wavefront-model weights: {e}") from None


def _fused_model(config: dict, arrays: dict, name: str, digest: str):
    from .fused_model import FusedModel
    from . import fused_ref as fr
    base = _wavefront_model(dict(config, kind="wavefront"), arrays, name, digest)
    if base.predictor != "blend":
        raise ModelError("malformed fused-model weights: its predictor is the blend")
    try:
        init_c, bin_s, bin_g = fr.check_table_c(*(arrays[k] for k in ("init_c", "bin_s", "bin_g")))
    except (KeyError, ValueError) as e:
        raise ModelError(f"malformed fused-model weights: {e}") from None
    fields = {f: getattr(base, f) for f in ("init_a", "init_b", "bin_a", "bin_b", "weight_lut", "update_steps",
                                            "lane_pixels", "rgb_order", "rgb_refs", "predictor")}
    return FusedModel(name=name, sha256=digest, **fields, init_c=init_c, bin_s=bin_s, bin_g=bin_g)


def model_from_bytes(data: bytes, expected_sha256: str | None = None) -> "BlockScaleModel | ContextModel":
    """A model from a weights file's bytes. ``expected_sha256``: its content digest (or, for files
    registered before content identities, its zip's sha256); anything else is refused."""
    zip_digest = _sha256(data)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            config = json.loads(str(z["config"]))
            arrays = {k: np.asarray(z[k]) for k in z.files if k != "config"}
        content = model_id.content_digest(config, arrays) if isinstance(config, dict) else ""
    except Exception as e:  # any malformed file is one clear error
        raise ModelError(f"not a tricodec weights file: {e}") from None
    if not isinstance(config, dict):
        raise ModelError("not a tricodec weights file: config is not an object")
    if expected_sha256 is not None and expected_sha256 not in (content, zip_digest):
        raise ModelError(f"weights sha256 {content[:16]}... (content) does not match the recorded "
                         f"{expected_sha256[:16]}...")
    name = str(config.get("name", ""))
    if not name.isascii() or not 0 < len(name) <= 8:
        raise ModelError("model name must be 1-8 ASCII characters")
    identity = model_id.identify(name, content, zip_digest, _registry())
    return _with_identity(_model_from_parts(config, arrays, name, identity.record), identity)


def _with_identity(model, identity: "model_id.Identity"):
    object.__setattr__(model, "_identity", identity)  # frozen dataclasses: set once, at load
    return model


def _model_from_parts(config: dict, arrays: dict, name: str, digest: str) -> "BlockScaleModel | ContextModel":
    """The model of a parsed weights file; ``digest``: the hex digest files written with it record."""
    if config.get("kind") == "context":
        return _context_model(config, arrays, name, digest)
    if config.get("kind") == "wavefront":
        return _wavefront_model(config, arrays, name, digest)
    if config.get("kind") == "fused":
        return _fused_model(config, arrays, name, digest)
    if config.get("kind") != "block-scale":
        raise ModelError(f"unknown model kind {config.get('kind')!r}")
    if "cdf" not in arrays:
        raise ModelError("weights hold no probability tables")
    cdf = np.ascontiguousarray(arrays["cdf"], dtype=np.uint32)
    if cdf.ndim != 2 or cdf.shape[1] != 257 or not (cdf[:, 0] == 0).all() or not (cdf[:, -1] == 65536).all() \
            or (np.diff(cdf.astype(np.int64), axis=1) < 1).any() or not 2 <= cdf.shape[0] <= 256:
        raise ModelError("weights hold malformed probability tables")
    return BlockScaleModel(name=name, sha256=digest, cdf=cdf,
                           block_log2=int(config["block_log2"]), lane_log2=int(config["lane_log2"]),
                           rgb_order=tuple(config["rgb_order"]), rgb_refs=tuple(config["rgb_refs"]))


def model_to_bytes(config: dict, cdf: np.ndarray | None = None, **arrays: np.ndarray) -> bytes:
    """Weights file bytes: ``config`` plus integer arrays (``cdf`` for block-scale models)."""
    if cdf is not None:
        arrays["cdf"] = np.asarray(cdf, dtype=np.uint32)
    arrays = {"config": np.array(json.dumps(config, sort_keys=True)), **arrays}
    buf = io.BytesIO()
    # np.savez stamps each member with the current time; a fixed stamp makes the bytes (and the sha256
    # that files record) a function of the contents alone, so a retrain reproduces them.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


def _registry() -> dict:
    return json.loads(resources.files(__package__).joinpath(WEIGHTS_DIR, REGISTRY).read_text())


@lru_cache(maxsize=4)
def _load_registered(name: str) -> "BlockScaleModel | ContextModel":
    reg = _registry()
    if name not in reg:
        raise ModelError(f"no shipped model named {name!r} (shipped: {', '.join(sorted(reg))})")
    entry = reg[name]
    data = resources.files(__package__).joinpath(WEIGHTS_DIR, entry["file"]).read_bytes()
    return model_from_bytes(data, entry["content_sha256"])


def load_model(model: "str | Path | BlockScaleModel | ContextModel | None" = None
               ) -> "BlockScaleModel | ContextModel":
    """The shipped default (None), a shipped model by name, a weights file by path, or a loaded model."""
    if isinstance(model, (BlockScaleModel, ContextModel, WavefrontModel)):
        return model
    if model is None:
        return _load_registered(DEFAULT_MODEL)
    path = Path(model)
    if path.suffix == ".npz" or path.exists():
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ModelError(f"cannot read weights file {path}: {e.strerror}") from None
        return model_from_bytes(data)
    return _load_registered(str(model))


def find_model(name: str, hash_prefix: bytes, hint=None) -> "BlockScaleModel | ContextModel":
    """The model a file names: ``hint`` if it matches, else a shipped one; anything else is refused."""
    candidates = [hint] if hint is not None else []
    if name in _registry():
        candidates.append(_load_registered(name))
    for m in candidates:
        if m.name == name and m.accepts(hash_prefix):
            return m
    raise ModelError(f"file needs model {name!r} with weights sha256 {hash_prefix.hex()}..., which is not loaded")
