"""perf/bench_gpu.py without a GPU: its pure helpers, the measuring loop on the CPU twin (device="cpu"
in place of "cuda", tiny images), and exit code 2 with a message (no traceback) where no GPU is seen."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers import photo_like

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "perf" / "bench_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_gpu", None)


def test_raw_bytes_and_mb_per_s(bench):
    assert bench.raw_bytes(Image.new("RGB", (768, 512))) == 768 * 512 * 3
    assert bench.raw_bytes(Image.new("L", (10, 7))) == 70
    assert bench.raw_bytes(Image.new("RGBA", (4, 5))) == 80
    assert bench.mb_per_s(3_000_000, 2.0) == pytest.approx(1.5)
    assert bench.mb_per_s(100, 0.0) is None


def test_batches_cycle_to_fill_and_cover_every_image(bench):
    assert bench.batches(0, 8) == []
    assert bench.batches(3, 8) == [[0, 1, 2, 0, 1, 2, 0, 1]]
    got = bench.batches(24, 8)
    assert len(got) == 3 and sorted(i for b in got for i in b) == list(range(24))
    assert bench.batches(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


def test_phase_deadlines(bench):
    assert bench.phase_deadlines(100.0, 0, 3) == [math.inf] * 3
    assert bench.phase_deadlines(100.0, 240, 3) == [180.0, 260.0, 340.0]


def test_row_summary_and_markdown_table(bench):
    row = bench.Row("single", "cuda", 1)
    row.add(2, 4_000_000, 0.5, 0.25)
    row.add(2, 4_000_000, 0.5, 0.75)
    s = row.summary()
    assert s["encode_mb_s"] == pytest.approx(8.0) and s["decode_mb_s"] == pytest.approx(8.0)
    assert s["encode_ms_per_image"] == pytest.approx(250.0) and s["images"] == 4
    empty = bench.Row("batch 24", "cuda", 24).summary()
    assert empty["encode_mb_s"] is None and empty["decode_ms_per_image"] is None
    env = {"gpu": "NVIDIA H200", "device": "cuda", "model": "tric-wf1", "torch": "2.11", "triton": "3.6",
           "python": "3.12", "command": "python perf/bench_gpu.py x", "commit": "abc1234", "folder": "x", "repeat": 2}
    report = {"env": env, "images_found": 3, "images_measured": 2, "wall_s": 1.0, "stopped": ["batch 24"],
              "mismatches": [], "rows": [s, empty]}
    text = bench.markdown(report)
    assert "NVIDIA H200" in text and "torch 2.11, triton 3.6" in text and "abc1234" in text
    assert "`python perf/bench_gpu.py x`" in text and "stopped early" in text
    assert "| single | cuda | 1 | 4 | 8.00 | 8.00 | 8.00 | 250.00 | 250.00 |" in text
    assert "| batch 24 | cuda | 24 | 0 | 0.00 | - | - | - | - |" in text
    json.dumps(report)   # the JSON file holds the same


def test_measuring_loop_on_the_cpu_twin(bench, tmp_path):
    """The loops and checks, with the CPU twin standing in for the GPU (tiny images: fast)."""
    import tricodec

    for k, (mode, c) in enumerate((("RGB", 3), ("L", 1), ("RGB", 3))):
        arr = photo_like(24, 40, c, seed=k)
        Image.fromarray(arr.squeeze() if c == 1 else arr, mode).save(tmp_path / f"im{k}.png")
    paths = bench.image_paths(tmp_path, 0)
    assert len(paths) == 3
    args = bench.parse_args([str(tmp_path), "--repeat", "1"])
    model = tricodec.load_model(None)
    check = bench.Checker()
    rows, cut = bench.run_phase(tricodec, paths, None, model, "cpu", args, lambda: None, None, [math.inf], check)
    assert not cut and rows[0].images == 3 and rows[0].raw_bytes == 24 * 40 * 7
    rows, cut = bench.run_phase(tricodec, paths, None, model, "cpu", args, lambda: None, 2, [math.inf], check)
    assert not cut and rows[0].images == 4 and rows[1].images == 4
    assert check.mismatches == []
    rows, cut = bench.run_phase(tricodec, paths, None, model, "cpu", args, lambda: None, None, [0.0, math.inf], check)
    assert cut and rows[0].images == 1        # past its own deadline: one unit, then it stops
    rows, cut = bench.run_phase(tricodec, paths, None, model, "cpu", args, lambda: None, 2, [0.0], check)
    assert cut and rows[0].images == 0        # the whole run out of time: nothing
    assert check.mismatches == []
    check.pixels(Image.new("L", (2, 2)), Image.new("L", (2, 2), 1), "differs")
    assert check.mismatches == ["differs"]
    (tmp_path / "im3.png").write_bytes(b"not a png")      # reported, and the phase goes on
    rows, cut = bench.run_phase(tricodec, bench.image_paths(tmp_path, 0), None, model, "cpu", args, lambda: None,
                                None, [math.inf], check)
    assert not cut and rows[0].images == 3 and check.mismatches[1].startswith("im3.png: UnidentifiedImageError")


def test_without_a_gpu_it_exits_2_with_a_message(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 2
    assert "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr
