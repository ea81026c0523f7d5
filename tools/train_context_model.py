"""Build the shipped context model from the training photos and record it in the weights registry.

    python tools/train_context_model.py ../shared/data/train --name tric-cx1 --grain 1.0

The training itself is tricodec/train_context.py (also `tricodec train --kind context` for users' own
folders).  The counts are checkpointed to tools/checkpoints/NAME.ckpt.npz (committed: a rerun resumes
from it, and a larger run on more data can start from it).  Train only on training data, never on
dev/kodak.
"""
import argparse
from pathlib import Path

from _registry import register

from tricodec.train_context import train_context

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--name", default="tric-cx1")
    p.add_argument("--grain", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    ckpt = ROOT / "tools" / "checkpoints" / f"{a.name}.ckpt.npz"
    ckpt.parent.mkdir(exist_ok=True)
    data = train_context(a.data, name=a.name, grain=a.grain, seed=a.seed, checkpoint=ckpt,
                         progress=lambda i, n: print(f"\r{i}/{n} images", end="", flush=True))
    print()
    print(a.name + ".npz", register(a.name, data))


if __name__ == "__main__":
    main()
