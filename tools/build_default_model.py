"""Build the shipped default model ``tric-bs1`` and record its identity in the registry.

    python tools/build_default_model.py

The tables are computed once here (in float64) and stored as integers: decoders only ever read them.
"""
from _registry import register
from tricodec.model import model_to_bytes
from tricodec.tables import freqs_to_cdf, laplace_family

CONFIG = {
    "kind": "block-scale",
    "name": "tric-bs1",
    "block_log2": 3,
    "lane_log2": 13,
    "rgb_order": [1, 0, 2],
    "rgb_refs": [-1, 0, 0],
    "tables": "discretised Laplace, 16 scales geometric in [0.15, 80]",
}


def main():
    cdf = freqs_to_cdf(laplace_family(16, 0.15, 80.0))
    data = model_to_bytes(CONFIG, cdf)
    print(CONFIG["name"] + ".npz", register(CONFIG["name"], data))


if __name__ == "__main__":
    main()
