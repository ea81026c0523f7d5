"""Build the shipped default model ``tric-bs1`` and record its sha256 in the registry.

    python tools/build_default_model.py

The tables are computed once here (in float64) and stored as integers: decoders only ever read them.
"""
import hashlib
import json
from pathlib import Path

from tricodec.model import model_to_bytes
from tricodec.tables import freqs_to_cdf, laplace_family

WEIGHTS = Path(__file__).resolve().parents[1] / "tricodec" / "weights"

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
    fname = CONFIG["name"] + ".npz"
    (WEIGHTS / fname).write_bytes(data)
    reg_path = WEIGHTS / "MODELS.json"
    reg = json.loads(reg_path.read_text()) if reg_path.exists() else {}
    reg[CONFIG["name"]] = {"file": fname, "sha256": hashlib.sha256(data).hexdigest()}
    reg_path.write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    print(fname, reg[CONFIG["name"]]["sha256"])


if __name__ == "__main__":
    main()
