"""A ``torch.utils.data.Dataset`` over a folder of ``.tric`` files for training pipelines.

The dataset hands out the compressed bytes (cheap to read, cheap to pass between DataLoader workers);
its ``collate`` decodes a whole batch in one :func:`tricodec.decode_batch` call, so on a GPU the batch's
strips share the kernel launches and the pixels arrive as tensors on the GPU without a host round trip::

    ds = tricodec.TricDataset("packed/", device="auto")
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True, collate_fn=ds.collate)
    for batch in loader:      # uint8 (16, H, W, C) (uint16 for 16-bit files) on the backend's device

Without a GPU (``device="cpu"``, or ``"auto"`` on a machine without one) the same code gives CPU tensors.
CUDA cannot start in forked DataLoader workers: with a GPU device keep ``num_workers=0`` (the default;
the workers would only read files) or decode on the CPU in the workers (``device="cpu"``).
"""
from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset, default_collate

from .backend import get_backend
from .codec import decode_batch


class TricDataset(Dataset):
    """Every ``suffix`` file under ``root`` (recursively, in sorted order of their relative paths).

    Args:
        root: a folder.
        device: where ``collate`` decodes (``"auto"``, ``"cpu"``, ``"cuda"``, ``"triton"``; checked here).
        model: weights for files that name non-shipped ones (as in :func:`tricodec.decode`).
        stack: ``collate`` returns one (N, ...) tensor (files of one shape and dtype, else DecodeError);
            False: a list of tensors.
        target: optional ``path -> label``; items are then ``(bytes, label)`` and ``collate`` returns
            ``(images, labels)``, the labels through torch's ``default_collate``.
        suffix: which files count.

    Raises:
        FileNotFoundError: ``root`` is not a folder or holds no such file. BackendError: ``device``.
    """

    def __init__(self, root, *, device: str = "auto", model=None, stack: bool = True, target=None,
                 suffix: str = ".tric"):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        get_backend(device)
        self.root, self.device, self.model, self.stack, self.target = root, device, model, stack, target
        self.files = sorted((p for p in root.rglob(f"*{suffix}") if p.is_file()),
                            key=lambda p: p.relative_to(root).as_posix())
        if not self.files:
            raise FileNotFoundError(f"no {suffix} files under {root}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        data = self.files[index].read_bytes()
        return data if self.target is None else (data, self.target(self.files[index]))

    def decode(self, datas: list):
        """Compressed files -> tensors (stacked or a list, as ``stack`` says) on the dataset's device."""
        return decode_batch(datas, device=self.device, model=self.model, output="torch", stack=self.stack)

    def collate(self, batch: list):
        """A DataLoader's ``collate_fn``: the batch decoded in one call (with labels when ``target`` is set)."""
        if self.target is None:
            return self.decode(batch)
        datas, labels = zip(*batch)
        return self.decode(list(datas)), default_collate(list(labels))


__all__ = ["TricDataset"]
