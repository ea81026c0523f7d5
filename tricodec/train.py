"""Training the probability tables of a block-scale model on a folder of images (Lloyd iterations).

Each iteration gives every 8x8 block of every plane the table that codes it in the fewest bits (the
encoder's own choice), then replaces every table by the histogram of the residuals it was given,
mirrored around zero and quantised (every frequency >= 1). Starts from the discretised-Laplace family.
Deterministic for a given set of images, ``crops`` and ``seed``. Used by ``tricodec train`` and by
``tools/train_tables.py`` (which builds the shipped ``tric-bs2`` from ../shared/data/train).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .model import block_table_ids, choose_block_scales, cost_units, load_model, model_from_bytes, model_to_bytes
from .pixels import read_image
from .predictor_ref import compute_residuals
from .tables import freqs_to_cdf, laplace_family, quantize_counts

BLOCK_LOG2 = 3
LANE_LOG2 = 13
RGB_ORDER, RGB_REFS = [1, 0, 2], [-1, 0, 0]


def _residuals(paths: Iterable[Path]):
    """Residual planes of every RGB or grey image (other modes are skipped: the model does not code them)."""
    for path in paths:
        image = read_image(path)
        if getattr(image, "mode", None) == "L":
            yield compute_residuals(np.asarray(image)[None], [-1])
        elif getattr(image, "mode", None) == "RGB":
            arr = np.asarray(image)
            yield compute_residuals(np.ascontiguousarray(arr.transpose(2, 0, 1)[RGB_ORDER]), RGB_REFS)


def lloyd_step(cdf: np.ndarray, residuals: list) -> tuple[float, np.ndarray]:
    """(mean bits per symbol under ``cdf``, per-table residual histograms (T, 256))."""
    cost = cost_units(cdf)
    hist = np.zeros((cdf.shape[0], 256))
    for r in residuals:
        ids = block_table_ids(choose_block_scales(r, cost, BLOCK_LOG2), r.shape[1], r.shape[2], BLOCK_LOG2)
        hist += np.bincount(ids.ravel().astype(np.int64) * 256 + r.ravel(), minlength=hist.size).reshape(hist.shape)
    freq = np.diff(cdf.astype(np.int64), axis=1)
    return float(-(hist * np.log2(freq / 65536)).sum() / max(hist.sum(), 1)), hist


def tables_from(hist: np.ndarray) -> np.ndarray:
    out = []
    for h in hist + 0.5:
        mirrored = (h + np.roll(h[::-1], 1)) / 2  # s = 128 + r and 128 - r get the same count
        out.append(quantize_counts(mirrored / mirrored.sum()))
    return freqs_to_cdf(np.stack(out))


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm"))


def train_tables(data: Path, *, name: str, tables: int = 32, crops: int = 200, iterations: int = 10,
                 seed: int = 0, progress: Callable[[int, float], None] | None = None) -> bytes:
    """Train on (a seeded sample of ``crops`` images of) folder ``data``; returns a weights file's bytes."""
    if not name.isascii() or not 0 < len(name) <= 8:
        raise ValueError("model name must be 1-8 ASCII characters")
    files = image_files(data)
    if not files:
        raise ValueError(f"no training images (PNG/BMP/TIFF/PPM/PGM) in {data}")
    rng = np.random.default_rng(seed)
    picked = [files[i] for i in sorted(rng.choice(len(files), min(crops, len(files)), replace=False))]
    residuals = list(_residuals(picked))
    if not residuals:
        raise ValueError(f"no RGB or grey images in {data}")
    cdf = freqs_to_cdf(laplace_family(tables, 0.15, 80.0))
    for it in range(iterations):
        bits, hist = lloyd_step(cdf, residuals)
        if progress:
            progress(it, bits)
        cdf = tables_from(hist)
    config = {"kind": "block-scale", "name": name, "block_log2": BLOCK_LOG2, "lane_log2": LANE_LOG2,
              "rgb_order": RGB_ORDER, "rgb_refs": RGB_REFS,
              "tables": f"{tables} tables, Lloyd-trained ({iterations} iterations) on {len(picked)} images "
                        f"of {Path(data).name}/ (seed {seed}), mirrored around zero, from a Laplace start"}
    return model_to_bytes(config, cdf)


def evaluate(weights, folder: Path) -> float:
    """Mean per-image bits per sample of real .tric files for the RGB/grey images of ``folder``."""
    from .codec import encode

    model = load_model(weights) if not isinstance(weights, bytes) else model_from_bytes(weights)
    out = []
    for path in image_files(folder):
        image = read_image(path)
        if getattr(image, "mode", None) in ("L", "RGB"):
            out.append(8 * len(encode(image, device="cpu", model=model)) / len(image.tobytes()))
    return float(np.mean(out)) if out else float("nan")
