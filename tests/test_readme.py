"""The README's Python examples run as written (from the repository root)."""
import re

from conftest import ROOT


def test_readme_python_examples_run(monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    monkeypatch.chdir(ROOT)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_has_exactly_two_setup_commands():
    lines = [l for l in (ROOT / "README.md").read_text().splitlines() if l.startswith("pip install torch==2.13.0 ")]
    assert len(lines) == 2


def test_readme_examples_cover_tensors_dataset_and_imageio():
    """The examples of decode_batch(output="torch"), TricDataset and the imageio plugin stay among the
    blocks the test above runs."""
    code = "\n".join(re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S))
    for needle in ('output="torch", stack=True', "tricodec.TricDataset(", "collate_fn=dataset.collate",
                   "iio.imread(", "iio.imwrite("):
        assert needle in code
