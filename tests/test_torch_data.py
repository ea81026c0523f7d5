"""TricDataset + torch's DataLoader: compressed bytes per item, one decode_batch per batch."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import tricodec
from tricodec.errors import BackendError, DecodeError

from helpers import photo_crop, photo_like


def _tree(root, shapes):
    arrays = {}
    for i, shape in enumerate(shapes):
        name = f"{'sub/' if i % 2 else ''}img{i}.tric"
        (root / name).parent.mkdir(exist_ok=True)
        array = photo_like(*shape, seed=i).squeeze()
        (root / name).write_bytes(tricodec.encode(array, device="cpu"))
        arrays[name] = array
    (root / "notes.txt").write_text("not an image")
    return dict(sorted(arrays.items()))


def test_dataloader_round_trip(tmp_path):
    arrays = _tree(tmp_path, [(12, 16, 3)] * 5)
    ds = tricodec.TricDataset(tmp_path, device="cpu")
    assert [p.relative_to(tmp_path).as_posix() for p in ds.files] == list(arrays) and len(ds) == 5
    assert isinstance(ds[0], bytes) and ds[0] == (tmp_path / "img0.tric").read_bytes()
    batches = list(DataLoader(ds, batch_size=2, collate_fn=ds.collate))
    assert [tuple(b.shape) for b in batches] == [(2, 12, 16, 3), (2, 12, 16, 3), (1, 12, 16, 3)]
    got = torch.cat(batches)
    assert got.dtype == torch.uint8 and np.array_equal(got.numpy(), np.stack(list(arrays.values())))


def test_lists_labels_and_mixed_shapes(tmp_path):
    arrays = _tree(tmp_path, [(12, 16, 3), (10, 9, 1), (7, 8, 4)])
    ds = tricodec.TricDataset(tmp_path, device="cpu", stack=False, target=lambda p: len(p.parts))
    images, labels = next(iter(DataLoader(ds, batch_size=3, collate_fn=ds.collate)))
    assert labels.tolist() == [len(p.parts) for p in ds.files]
    for t, a in zip(images, arrays.values()):
        assert isinstance(t, torch.Tensor) and np.array_equal(t.numpy(), a) and tuple(t.shape) == a.shape
    stacked = tricodec.TricDataset(tmp_path, device="cpu")
    with pytest.raises(DecodeError, match="one shape and dtype"):
        next(iter(DataLoader(stacked, batch_size=3, collate_fn=stacked.collate)))


def test_under_the_interpreter(tmp_path):
    """The GPU path's code (``device="triton"``): a model-coded file decoded into a tensor on the device."""
    (tmp_path / "a.tric").write_bytes(tricodec.encode(photo_crop(6, 8, 4), device="cpu"))
    assert not tricodec.read_header((tmp_path / "a.tric").read_bytes()).is_fallback
    ds = tricodec.TricDataset(tmp_path, device="triton")
    (batch,) = DataLoader(ds, batch_size=4, collate_fn=ds.collate)
    assert np.array_equal(batch.numpy(), photo_crop(6, 8, 4)[None])


def test_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .tric files under"):
        tricodec.TricDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        tricodec.TricDataset(tmp_path / "missing")
    _tree(tmp_path, [(4, 4, 3)])
    with pytest.raises(BackendError):
        tricodec.TricDataset(tmp_path, device="tpu")
