"""Training a context model (``tricodec train --kind context``): the starting tables of every context are
the token statistics of the training images under the very contexts and lanes the coder uses, so the
training objective is the code length of the first symbols of each context (after that the coder
adapts to the image).  Counting is exact and order-free, so training is resumable from a checkpoint
(the histograms and the files already counted) and deterministic for a given folder, seed and options.

Domain gap: the shipped training crops are downscaled JPEG-derived photos, smoother than camera or film
images.  ``grain`` adds seeded Gaussian noise of that standard deviation (in 8-bit levels) to a copy of
every training image as a second sample; the coder's adaptation does most of the closing (see
perf/RESULTS.md for the measured effect).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from . import context_model as cm
from . import context_ref as cr
from .model import load_model, model_to_bytes
from .pixels import read_image
from .predictor_ref import compute_residuals
from .train import RGB_ORDER, RGB_REFS, image_files

LANE_PIXELS = 1 << 18
N0, MAX_RATE = 32, 9


def _planes(image) -> np.ndarray | None:
    mode = getattr(image, "mode", None)
    if mode == "L":
        return np.asarray(image)[None]
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1)[RGB_ORDER])
    return None


def _refs(n_planes: int):
    return [-1] if n_planes == 1 else RGB_REFS


def _residuals(planes: np.ndarray, predictor: str) -> np.ndarray:
    """The residuals the coder would see: MED (``predictor_ref``) or the blend with the encoder's choices."""
    if predictor == "blend":
        from .blend_ref import compute_blend_residuals
        from .blend_select import choose_params
        return compute_blend_residuals(planes, choose_params(planes))
    return compute_residuals(planes, _refs(planes.shape[0]))


def _count_image(planes: np.ndarray, bins, hist_a, hist_b, lane_pixels: int, predictor: str = "med") -> None:
    n = planes.shape[0]
    res = _residuals(planes, predictor)
    lane_rows = max(1, -(-lane_pixels // planes.shape[2]))
    cr.count_contexts(res, cm.plane_kinds(n), bins[0], bins[1], lane_rows, hist_a, hist_b)


def _save_checkpoint(path: Path, hist_a, hist_b, done: list[str], used: int, options: dict) -> None:
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, hist_a=hist_a, hist_b=hist_b, done=np.array(json.dumps(done)), used=np.array(used),
             options=np.array(json.dumps(options, sort_keys=True)))
    os.replace(tmp, path)


def train_context(data: Path, *, name: str, seed: int = 0, grain: float = 0.0, lane_pixels: int = LANE_PIXELS,
                  base=None, base_weight: float = 0.0, checkpoint: Path | None = None, checkpoint_every: int = 50,
                  progress: Callable[[int, int], None] | None = None, bins: tuple | None = None,
                  rate_lut: np.ndarray | None = None, predictor: str = "med") -> bytes:
    """Fit a context model to the RGB/grey images of folder ``data``; returns a weights file's bytes.

    Args:
        base, base_weight: fine-tuning: the tables of model ``base`` (a name, path or model) count as
            ``base_weight`` observations per context on top of the new images' counts.
        checkpoint: a file holding the counts so far; an existing one (made with the same options) is
            resumed, and it is rewritten every ``checkpoint_every`` images and at the end.
        progress: called with (images done, images total).
        bins, rate_lut: override the activity bins / adaptation schedule (ablations).
        predictor: whose residuals are counted: "med" or "blend" (a wavefront model's ``predictor``).
    """
    if not name.isascii() or not 0 < len(name) <= 8:
        raise ValueError("model name must be 1-8 ASCII characters")
    files = image_files(data)
    if not files:
        raise ValueError(f"no training images (PNG/BMP/TIFF/PPM/PGM) in {data}")
    options = {"data": Path(data).resolve().name, "seed": seed, "grain": grain, "lane_pixels": lane_pixels}
    if predictor != "med":          # (older checkpoints, made with MED, hold no such key)
        options["predictor"] = predictor
    bins = cm.default_bins() if bins is None else bins
    rate_lut = cm.rate_schedule(N0, MAX_RATE) if rate_lut is None else rate_lut
    hist_a = np.zeros((cr.N_KINDS, cr.NC_A, cr.N_TOKENS), np.int64)
    hist_b = np.zeros((cr.N_KINDS, cr.NC_B, cr.N_TOKENS), np.int64)
    done: list[str] = []
    used = 0   # images counted (other modes are skipped)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        with np.load(checkpoint, allow_pickle=False) as z:
            if json.loads(str(z["options"])) != options:
                raise ValueError(f"checkpoint {checkpoint} was made with other options; delete it or match them")
            hist_a, hist_b, done = z["hist_a"].copy(), z["hist_b"].copy(), json.loads(str(z["done"]))
            used = int(z["used"])
    done_set = set(done)
    for i, path in enumerate(files):
        key = path.relative_to(data).as_posix()
        if key in done_set:
            continue
        planes = _planes(read_image(path))
        if planes is not None:
            used += 1
            _count_image(planes, bins, hist_a, hist_b, lane_pixels, predictor)
            if grain > 0:
                rng = np.random.default_rng([seed, i])
                noisy = planes.astype(np.float32) + rng.normal(0.0, grain, planes.shape)
                _count_image(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), bins, hist_a, hist_b, lane_pixels,
                             predictor)
        done.append(key)
        if checkpoint is not None and len(done) % checkpoint_every == 0:
            _save_checkpoint(checkpoint, hist_a, hist_b, done, used, options)
        if progress:
            progress(i + 1, len(files))
    if checkpoint is not None:
        _save_checkpoint(checkpoint, hist_a, hist_b, done, used, options)
    if used == 0:
        raise ValueError(f"no RGB or grey images in {data}")
    prior_a = prior_b = 0.0
    tuned = ""
    if base is not None and base_weight > 0:
        b = load_model(base)
        tuned = f", fine-tuned from {b.name} (weight {base_weight})"
        if b.kind != "context":
            raise ValueError("fine-tuning starts from a context model")
        prior_a = np.diff(b.init_a, axis=-1) / cr.Q_ADAPT * base_weight
        prior_b = np.diff(b.init_b, axis=-1) / cr.Q_ADAPT * base_weight
    config = {"kind": "context", "name": name, "lane_pixels": lane_pixels, "rgb_order": RGB_ORDER,
              "rgb_refs": RGB_REFS,
              "training": f"token counts of {used} images of {Path(data).name}/ (grain {grain}, seed {seed}"
                          + (f", {predictor} residuals" if predictor != "med" else "") + ")" + tuned}
    # uint16 holds every table entry (<= Q_ADAPT) and every bin: half the size of int32 weights
    return model_to_bytes(config, init_a=cm.tables_from_counts(hist_a + prior_a).astype(np.uint16),
                          init_b=cm.tables_from_counts(hist_b + prior_b).astype(np.uint16),
                          bin_a=bins[0].astype(np.uint16), bin_b=bins[1].astype(np.uint16),
                          rate_lut=np.asarray(rate_lut).astype(np.uint16))
