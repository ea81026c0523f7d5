"""Training a fused model (``tricodec train --kind fused``, the kind of ``tric-wf3``).

A fused model is a wavefront model with the blend predictor (its tables A and B, bins, weight schedule
and update interval, taken whole from a base such as ``tric-wf2``) plus table C (``fused_ref``): its
starting cumulatives are the token counts of the training images under table C's contexts, counted with
the twin's own predictor pass (each image one strip, the encoder's blend choices), smoothed as the context
model's tables are (``context_model.tables_from_counts``).  Deterministic: same folder, same weights.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Callable

import numpy as np

from . import context_model as cm
from . import context_ref as cr
from . import fused_ref as fr
from .blend_select import choose_params
from .model import load_model, model_to_bytes
from .train import image_files
from .pixels import read_image
from .train_context import _planes

# Table C's error bins (fused_ref.err_bins): edges of the blend's smallest error sum and of MED's gradient,
# spaced about evenly in log (research_pixel_contexts measured them on the training crops).
S_EDGES = (8, 16, 28, 44, 64, 90, 124, 170, 230, 310, 420, 570, 770, 1040, 1400)
G_EDGES = (1, 2, 3, 4, 6, 8, 11, 15, 20, 27, 36, 48, 64, 86, 115)


def count_table_c(planes: np.ndarray, bin_s: np.ndarray, bin_g: np.ndarray, hist: np.ndarray) -> None:
    """Add the tokens of uint8 (P, H, W) planes (coding order, one strip) to ``hist`` (3, NC_C, 24) by
    plane kind and table-C context."""
    n, h, w = planes.shape
    _, res, ctxc = fr.strip_symbols(planes, choose_params(planes), bin_s, bin_g, h)
    tok = cr.token_of_residual(res)
    kinds = cm.plane_kinds(n)
    for p in range(n):
        np.add.at(hist[kinds[p]], (ctxc[p].ravel().astype(np.int64), tok[p].ravel()), 1)


def train_fused(data: Path, *, name: str, base="tric-wf2",
                progress: Callable[[int, int], None] | None = None) -> bytes:
    """Fit table C of a fused model to the RGB/grey images of folder ``data`` on top of wavefront model
    ``base`` (a name, path or model with the blend predictor); returns a weights file's bytes."""
    if not name.isascii() or not 0 < len(name) <= 8:
        raise ValueError("model name must be 1-8 ASCII characters")
    b = load_model(base)
    if b.kind != "wavefront" or b.predictor != "blend":
        raise ValueError("a fused model starts from a wavefront model with the blend predictor (e.g. tric-wf2)")
    files = image_files(data)
    if not files:
        raise ValueError(f"no training images (PNG/BMP/TIFF/PPM/PGM) in {data}")
    bin_s, bin_g = fr.err_bins(S_EDGES), fr.err_bins(G_EDGES)
    hist = np.zeros((cr.N_KINDS, fr.NC_C, cr.N_TOKENS), np.int64)
    used = 0
    for i, path in enumerate(files):
        planes = _planes(read_image(path))
        if planes is not None:
            count_table_c(planes, bin_s, bin_g, hist)
            used += 1
        if progress:
            progress(i + 1, len(files))
    if used == 0:
        raise ValueError(f"no RGB or grey images in {data}")
    config = {"kind": "fused", "name": name, "lane_pixels": b.lane_pixels, "update_steps": b.update_steps,
              "rgb_order": list(b.rgb_order), "rgb_refs": list(b.rgb_refs), "predictor": "blend",
              "training": f"tables A, B, bins and schedule of {b.name}; table C: token counts of {used} images "
                          f"of {Path(data).name}/"}
    return model_to_bytes(config, init_a=b.init_a.astype(np.uint16), init_b=b.init_b.astype(np.uint16),
                          bin_a=b.bin_a.astype(np.uint16), bin_b=b.bin_b.astype(np.uint16),
                          weight_lut=b.weight_lut.astype(np.uint16),
                          init_c=cm.tables_from_counts(hist).astype(np.uint16),
                          bin_s=bin_s.astype(np.uint8), bin_g=bin_g.astype(np.uint8))
