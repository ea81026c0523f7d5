"""Build the shipped table model from the training photos and record it in the weights registry.

    python tools/train_tables.py ../shared/data/train --name tric-bs2 --tables 32

The training itself is tricodec/train.py (also `tricodec train` for users' own folders).
Train only on training data, never on dev/kodak.
"""
import argparse
from pathlib import Path

from _registry import register

from tricodec.train import train_tables


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--name", default="tric-bs2")
    p.add_argument("--tables", type=int, default=32)
    p.add_argument("--crops", type=int, default=200, help="images sampled from DATA")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    data = train_tables(a.data, name=a.name, tables=a.tables, crops=a.crops, iterations=a.iterations, seed=a.seed,
                        progress=lambda it, bits: print(f"iteration {it}: {bits:.4f} bits per symbol", flush=True))
    print(a.name + ".npz", register(a.name, data))


if __name__ == "__main__":
    main()
