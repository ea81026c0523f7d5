"""Build the shipped wavefront model from the training photos and record it in the weights registry.

    python tools/train_wavefront_model.py ../shared/data/train --name tric-wf2 --grain 1.0 --predictor blend
    python tools/train_wavefront_model.py ../shared/data/train --name tric-wf1 --grain 1.0 --predictor med

The training itself is tricodec/train_wavefront.py (also `tricodec train --kind wavefront` for users' own
folders).  Its counts are the context model's (same contexts, same strips, same options), so it resumes
from tools/checkpoints/tric-cx1.ckpt.npz (committed).  Train only on training data, never on dev/kodak.
"""
import argparse
from pathlib import Path

from _registry import register

from tricodec.train_wavefront import train_wavefront

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--name", default="tric-wf2")
    p.add_argument("--predictor", choices=("med", "blend"), default="blend")
    p.add_argument("--grain", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    # tric-wf1's counts are the context model's (MED residuals): it resumes from tric-cx1's checkpoint
    ckpt = ROOT / "tools" / "checkpoints" / ("tric-cx1.ckpt.npz" if a.predictor == "med" else f"{a.name}.ckpt.npz")
    data = train_wavefront(a.data, name=a.name, grain=a.grain, seed=a.seed, checkpoint=ckpt, predictor=a.predictor,
                           progress=lambda i, n: print(f"\r{i}/{n} images", end="", flush=True))
    print()
    print(a.name + ".npz", register(a.name, data))


if __name__ == "__main__":
    main()
