"""Shared by the model-building scripts: write a weights file into the package and record its identity."""
import json
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "tricodec" / "weights"


def register(name: str, data: bytes) -> str:
    """Write ``tricodec/weights/NAME.npz`` and its entry in MODELS.json; returns the content digest.

    The entry names the file and its content digest (``tricodec/model_id.py``). A rebuild with the same
    content keeps the entry's ``legacy_sha256`` (zip digests that old files record) and ``records``;
    new content starts a new identity (its files record the content digest)."""
    from tricodec.model import model_from_bytes

    fname = name + ".npz"
    content = model_from_bytes(data).content_sha256
    (WEIGHTS / fname).write_bytes(data)
    reg_path = WEIGHTS / "MODELS.json"
    reg = json.loads(reg_path.read_text()) if reg_path.exists() else {}
    old = reg.get(name, {})
    entry = {"file": fname, "content_sha256": content}
    if old.get("content_sha256") == content:
        entry.update({k: old[k] for k in ("legacy_sha256", "records") if k in old})
    reg[name] = entry
    reg_path.write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    return content
