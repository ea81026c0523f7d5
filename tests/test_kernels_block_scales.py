"""kernels/block_scales.py against its twin model.choose_block_scales, exactly, under the interpreter."""
import numpy as np
import pytest
import torch

import tricodec
from tricodec.kernels.block_scales import choose_block_scales as kernel
from tricodec.model import choose_block_scales as twin, cost_units
from tricodec.tables import freqs_to_cdf, quantize_counts

DEV = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 1), (3, 9, 13), (2, 8, 8), (1, 17, 300), (4, 33, 5)])
@pytest.mark.parametrize("block_log2", [3, 2])
def test_equal_to_twin(shape, block_log2):
    rng = np.random.default_rng(sum(shape) + block_log2)
    res = (128 + rng.laplace(0, rng.uniform(0.5, 20), shape)).clip(0, 255).astype(np.uint8)
    cost = tricodec.load_model("tric-bs2").cost
    got = kernel(torch.from_numpy(res).to(DEV), torch.from_numpy(cost).to(DEV), block_log2).cpu().numpy()
    assert np.array_equal(got, twin(res, cost, block_log2))


def test_ties_pick_the_first_table():
    """Two identical tables: both sides must pick the lower index."""
    freq = quantize_counts(np.ones(256))
    cost = cost_units(freqs_to_cdf(np.stack([freq, freq, freq])))
    res = np.full((1, 8, 8), 7, np.uint8)
    got = kernel(torch.from_numpy(res).to(DEV), torch.from_numpy(cost).to(DEV), 3).cpu().numpy()
    assert got.tolist() == twin(res, cost, 3).tolist() == [[[0]]]


def test_strided_input():
    rng = np.random.default_rng(2)
    big = rng.integers(0, 256, (3, 20, 40), dtype=np.uint8)
    view = torch.from_numpy(big).to(DEV)[:, ::2, 1::3]
    cost = tricodec.load_model("tric-bs2").cost
    got = kernel(view, torch.from_numpy(cost).to(DEV), 3).cpu().numpy()
    assert np.array_equal(got, twin(np.ascontiguousarray(big[:, ::2, 1::3]), cost, 3))
