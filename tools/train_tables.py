"""Train the probability tables of a block-scale model on a folder of images (Lloyd iterations) and ship
the result as a weights file.

    python tools/train_tables.py ../shared/data/train --name tric-bs2 --tables 32

Each iteration gives every 8x8 block of every plane the table that codes it in the fewest bits (the
encoder's own choice), then replaces every table by the histogram of the residuals it was given,
mirrored around zero and quantised (every frequency >= 1). Starts from the discretised-Laplace family.
Deterministic for a given folder, --crops and --seed. Train only on training data, never on dev/kodak.
"""
import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from tricodec.model import block_table_ids, choose_block_scales, cost_units, model_to_bytes
from tricodec.predictor_ref import compute_residuals
from tricodec.tables import freqs_to_cdf, laplace_family, quantize_counts

WEIGHTS = Path(__file__).resolve().parents[1] / "tricodec" / "weights"
BLOCK_LOG2 = 3
RGB_ORDER, RGB_REFS = [1, 0, 2], [-1, 0, 0]


def residuals(paths):
    for path in paths:
        arr = np.asarray(Image.open(path).convert("RGB"))
        yield compute_residuals(np.ascontiguousarray(arr.transpose(2, 0, 1)[RGB_ORDER]), RGB_REFS)


def step(cdf, res_list):
    """One Lloyd step: (mean bits per symbol under ``cdf``, per-table residual histograms)."""
    cost = cost_units(cdf)
    hist = np.zeros((cdf.shape[0], 256))
    for r in res_list:
        ids = block_table_ids(choose_block_scales(r, cost, BLOCK_LOG2), r.shape[1], r.shape[2], BLOCK_LOG2)
        hist += np.bincount(ids.ravel().astype(np.int64) * 256 + r.ravel(), minlength=hist.size).reshape(hist.shape)
    freq = np.diff(cdf.astype(np.int64), axis=1)
    bits = -(hist * np.log2(freq / 65536)).sum() / hist.sum()
    return bits, hist


def tables_from(hist):
    out = []
    for h in hist + 0.5:
        mirrored = (h + np.roll(h[::-1], 1)) / 2  # s = 128 + r and 128 - r get the same count
        out.append(quantize_counts(mirrored / mirrored.sum()))
    return freqs_to_cdf(np.stack(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--name", default="tric-bs2")
    p.add_argument("--tables", type=int, default=32)
    p.add_argument("--crops", type=int, default=200, help="images sampled from DATA")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    files = sorted(a.data.glob("*.png"))
    rng = np.random.default_rng(a.seed)
    picked = [files[i] for i in sorted(rng.choice(len(files), min(a.crops, len(files)), replace=False))]
    res_list = list(residuals(picked))
    cdf = freqs_to_cdf(laplace_family(a.tables, 0.15, 80.0))
    for it in range(a.iterations):
        bits, hist = step(cdf, res_list)
        print(f"iteration {it}: {bits:.4f} bits per symbol on {len(picked)} training images", flush=True)
        cdf = tables_from(hist)
    config = {"kind": "block-scale", "name": a.name, "block_log2": BLOCK_LOG2, "lane_log2": 13,
              "rgb_order": RGB_ORDER, "rgb_refs": RGB_REFS,
              "tables": f"{a.tables} tables, Lloyd-trained ({a.iterations} iterations) on {len(picked)} images "
                        f"of {a.data.name}/ (seed {a.seed}), mirrored around zero, from a Laplace start"}
    data = model_to_bytes(config, cdf)
    fname = a.name + ".npz"
    (WEIGHTS / fname).write_bytes(data)
    reg_path = WEIGHTS / "MODELS.json"
    reg = json.loads(reg_path.read_text())
    reg[a.name] = {"file": fname, "sha256": hashlib.sha256(data).hexdigest()}
    reg_path.write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    print(fname, reg[a.name]["sha256"])


if __name__ == "__main__":
    main()
