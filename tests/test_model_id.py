"""A model's identity is its content (tricodec/model_id.py), not the bytes of its zip.

Files name their model by name + the first 8 bytes of a digest. Re-zipping a weights file (other
timestamps, compression) must neither change what new files record nor orphan files already written;
every digest a shipped model's files have ever recorded (its zip sha256 at each release, kept in
MODELS.json as ``legacy_sha256``) keeps decoding."""
import hashlib
import io
import json
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import container, model_id
from tricodec.errors import ModelError
from tricodec.model import load_model, model_from_bytes, model_to_bytes
from tricodec.pixels import content_crc

from helpers import same_image

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
FIXTURES = HERE / "model_id_fixtures"  # not under tests/fixtures/, which tests walk as photos
REGISTRY = json.loads(resources.files("tricodec").joinpath("weights", "MODELS.json").read_text())

# The content digest of the shipped default, pinned: a change to the canonical form in model_id.py would
# silently orphan every file written with a trained (content-recorded) model.
CX1_CONTENT = "35875b3a20d5af815a9eceb18f371859db00021fa5169f80a24fce22f183a4aa"


def _shipped_bytes(name: str) -> bytes:
    return resources.files("tricodec").joinpath("weights", REGISTRY[name]["file"]).read_bytes()


def _npz_parts(data: bytes):
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return str(z["config"]), {k: np.asarray(z[k]) for k in z.files if k != "config"}


def _rezip(data: bytes, *, compress: bool, date=(2031, 7, 4, 12, 30, 0), reverse: bool = False) -> bytes:
    """The same members (same arrays, same config) in a new zip: other timestamps, compression, order."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for info in sorted(src.infolist(), key=lambda i: i.filename, reverse=reverse):
            zf.writestr(zipfile.ZipInfo(info.filename, date_time=date), src.read(info.filename),
                        compress_type=zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return out.getvalue()


def _savez(data: bytes, compressed: bool) -> bytes:
    """The arrays written again by numpy itself (np.savez stamps the current time)."""
    config, arrays = _npz_parts(data)
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, config=np.array(config), **arrays)
    return buf.getvalue()


def _restamp(data: bytes, model_hash: bytes, model=None) -> bytes:
    """The same file recording another 8-byte weights digest (CRC recomputed): what a file written with
    weights of that digest, and otherwise the same bytes, looks like."""
    header, sections = container.unpack(data)
    image = tricodec.decode(data, device="cpu", model=model)
    header.model_hash = model_hash
    return container.pack(header, [(tag, bytes(p)) for tag, p in sections.items()], content_crc(image))


def test_content_digest_is_pinned_and_matches_the_registry():
    assert REGISTRY["tric-cx1"]["content_sha256"] == CX1_CONTENT
    for name, entry in REGISTRY.items():
        config, arrays = _npz_parts(_shipped_bytes(name))
        assert model_id.content_digest(json.loads(config), arrays) == entry["content_sha256"]
        m = load_model(name)
        assert m.content_sha256 == entry["content_sha256"]
        if "legacy_sha256" in entry:  # shipped before content identities: files record the frozen zip digest
            assert hashlib.sha256(_shipped_bytes(name)).hexdigest() == entry["legacy_sha256"][0]
            assert m.sha256 == entry["legacy_sha256"][0] and entry["records"] == "legacy"
        else:                         # shipped since: files record the content digest
            assert m.sha256 == entry["content_sha256"]
    assert {n for n, e in REGISTRY.items() if "legacy_sha256" in e} >= {"tric-bs1", "tric-bs2", "tric-cx1"}


@pytest.mark.parametrize("how", ["deflate", "stored-reordered", "savez", "savez_compressed"])
def test_rezipped_shipped_model_keeps_its_identity(tmp_path, how):
    original = _shipped_bytes("tric-cx1")
    rezipped = {"deflate": lambda d: _rezip(d, compress=True),
                "stored-reordered": lambda d: _rezip(d, compress=False, reverse=True),
                "savez": lambda d: _savez(d, False), "savez_compressed": lambda d: _savez(d, True)}[how](original)
    assert rezipped != original and hashlib.sha256(rezipped).digest() != hashlib.sha256(original).digest()
    path = tmp_path / "tric-cx1-rezipped.npz"
    path.write_bytes(rezipped)
    m = load_model(path)
    assert m.content_sha256 == CX1_CONTENT
    # files written with the original zip (the golden ones) decode with the re-zipped weights as the hint
    for golden in sorted(GOLDEN.glob("v1_cx1_*.tric")):
        expected = Image.open(golden.with_suffix(".png"))
        assert same_image(tricodec.decode(golden.read_bytes(), device="cpu", model=path), expected)
    # and files written with the re-zipped copy are byte for byte those of the shipped model
    image = Image.open(GOLDEN / "v1_cx1_rgb_41x34.png")
    data = tricodec.encode(image, device="cpu", model=path)
    assert data == (GOLDEN / "v1_cx1_rgb_41x34.tric").read_bytes()


def test_rezipped_model_is_checked_against_the_content_digest():
    data = _rezip(_shipped_bytes("tric-bs2"), compress=True)
    assert model_from_bytes(data, REGISTRY["tric-bs2"]["content_sha256"]).name == "tric-bs2"
    with pytest.raises(ModelError, match="sha256"):
        model_from_bytes(data, REGISTRY["tric-cx1"]["content_sha256"])


def test_golden_files_from_earlier_commits_still_decode():
    """tests/golden/v1_cx1_*.tric were written at commit 9b39902, v1_bs2_* at 09be52d, v1_{rgb,gray,...}
    at 9656c32: before content identities. They record zip-sha256 prefixes and must keep decoding."""
    named = [p for p in sorted(GOLDEN.glob("*.tric"))
             if tricodec.read_header(p.read_bytes()).model_name in ("tric-bs1", "tric-bs2", "tric-cx1")]
    assert len(named) >= 10
    for p in named:
        header = tricodec.read_header(p.read_bytes())
        assert header.model_hash.hex() in {d[:16] for d in REGISTRY[header.model_name]["legacy_sha256"]}
        expected = Image.open(p.with_suffix(".png"))
        assert same_image(tricodec.decode(p.read_bytes(), device="cpu"), expected), p.name


def test_models_after_content_identities_record_their_content_digest():
    """tric-wf1 shipped after content identities: its golden files record its content digest's prefix."""
    wf = sorted(GOLDEN.glob("v1_wf1_*.tric"))
    assert wf
    for p in wf:
        assert tricodec.read_header(p.read_bytes()).model_hash.hex() == REGISTRY["tric-wf1"]["content_sha256"][:16]


def test_file_written_at_e2846b7_with_the_first_cx1_zip_decodes():
    """tric-cx1 first shipped (commit e2846b7) in a zip of sha256 50ee5ca1...; commit 217756c re-zipped the
    same arrays with fixed timestamps (572bba5d...), after which files written at e2846b7 were refused.
    The fixture was written by the code of e2846b7 (git archive e2846b7) from v1_cx1_rgb_41x34.png."""
    data = (FIXTURES / "cx1_at_e2846b7_rgb_41x34.tric").read_bytes()
    assert tricodec.read_header(data).model_hash.hex() == "50ee5ca1146809a0"
    expected = Image.open(GOLDEN / "v1_cx1_rgb_41x34.png")
    assert same_image(tricodec.decode(data, device="cpu"), expected)
    assert "50ee5ca1146809a0d2620fba7ada4e345788bc88fcb1da9edc1016f5545179f1" in REGISTRY["tric-cx1"]["legacy_sha256"]


def test_unknown_digest_is_still_refused():
    data = (GOLDEN / "v1_cx1_rgb_41x34.tric").read_bytes()
    forged = _restamp(data, bytes.fromhex("0123456789abcdef"))
    with pytest.raises(tricodec.DecodeError, match="needs model 'tric-cx1'"):
        tricodec.decode(forged, device="cpu")
    # the content digest's own prefix names the shipped model too
    assert same_image(tricodec.decode(_restamp(data, bytes.fromhex(CX1_CONTENT)[:8]), device="cpu"),
                      tricodec.decode(data, device="cpu"))


def test_trained_model_records_its_content_digest(tmp_path):
    """A model not shipped (here: the default's arrays under another name) records its content digest,
    so a re-zip keeps its files decoding; files written before content identities recorded the prefix of
    the zip's sha256, which the very zip they were written with still satisfies."""
    config, arrays = _npz_parts(_shipped_bytes("tric-cx1"))
    data = model_to_bytes(dict(json.loads(config), name="mine"), **arrays)
    path = tmp_path / "mine.npz"
    path.write_bytes(data)
    m = load_model(path)
    assert m.sha256 == m.content_sha256 != hashlib.sha256(data).hexdigest()
    image = Image.open(GOLDEN / "v1_cx1_rgb_41x34.png")  # coded by the model (not the fallback) with tric-cx1
    encoded = tricodec.encode(image, device="cpu", model=path)
    assert tricodec.read_header(encoded).model_hash == bytes.fromhex(m.content_sha256)[:8]
    rezipped = tmp_path / "mine-rezipped.npz"
    rezipped.write_bytes(_rezip(data, compress=True))
    assert same_image(tricodec.decode(encoded, device="cpu", model=rezipped), image)
    legacy = _restamp(encoded, hashlib.sha256(data).digest()[:8], model=path)
    assert same_image(tricodec.decode(legacy, device="cpu", model=path), image)
    with pytest.raises(tricodec.DecodeError, match="needs model 'mine'"):
        tricodec.decode(legacy, device="cpu", model=rezipped)  # that zip is gone: nothing names it
    with pytest.raises(tricodec.DecodeError, match="needs model 'mine'"):
        tricodec.decode(encoded, device="cpu")                  # not shipped: the weights must be given


def test_canonical_digest_covers_content_only():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    b = np.array([-1, 7], dtype=np.int32)
    config = {"name": "x", "kind": "context", "n": 3}
    d = model_id.content_digest(config, {"a": a, "b": b})
    # insertion order, key order of the config, byte order and memory layout do not matter
    assert model_id.content_digest(dict(reversed(list(config.items()))), {"b": b, "a": a}) == d
    assert model_id.content_digest(config, {"a": a.astype(">u2"), "b": b.astype(">i4")}) == d
    assert model_id.content_digest(config, {"a": np.asfortranarray(a), "b": b}) == d
    # every part of the content does
    for other in ({"a": a.astype(np.int32), "b": b}, {"a": a.reshape(4, 3), "b": b}, {"a": a.ravel(), "b": b},
                  {"a": a + 1, "b": b}, {"c": a, "b": b}, {"a": a}, {"a": a, "b": b, "z": np.zeros(0, np.uint8)}):
        assert model_id.content_digest(config, other) != d
    for cfg in (dict(config, n=4), dict(config, name="y"), {k: v for k, v in config.items() if k != "n"}):
        assert model_id.content_digest(cfg, {"a": a, "b": b}) != d
