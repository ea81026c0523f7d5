"""Build the shipped fused model from the training photos and record it in the weights registry.

    python tools/train_fused_model.py ../shared/data/train --name tric-wf3 --base tric-wf2

The training itself is tricodec/train_fused.py (also `tricodec train --kind fused` for users' own folders):
tables A and B, bins and schedule come whole from the base; table C is counted on the folder.  Train only
on training data, never on dev/kodak.  Deterministic: a rerun rebuilds the file byte for byte.
"""
import argparse
from pathlib import Path

from _registry import register

from tricodec.train_fused import train_fused


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--name", default="tric-wf3")
    p.add_argument("--base", default="tric-wf2")
    a = p.parse_args()
    data = train_fused(a.data, name=a.name, base=a.base,
                       progress=lambda i, n: print(f"\r{i}/{n} images", end="", flush=True))
    print()
    print(a.name + ".npz", register(a.name, data))


if __name__ == "__main__":
    main()
