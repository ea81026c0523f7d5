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
