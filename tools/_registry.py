"""Shared by the model-building scripts: write a weights file into the package and record its sha256."""
import hashlib
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "tricodec" / "weights"


def register(name: str, data: bytes) -> str:
    """Write ``tricodec/weights/NAME.npz`` and its entry in MODELS.json; returns the sha256."""
    fname = name + ".npz"
    (WEIGHTS / fname).write_bytes(data)
    reg_path = WEIGHTS / "MODELS.json"
    reg = json.loads(reg_path.read_text())
    reg[name] = {"file": fname, "sha256": hashlib.sha256(data).hexdigest()}
    reg_path.write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    return reg[name]["sha256"]
