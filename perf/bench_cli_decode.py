"""The CLI's directory decode against the library's batch decode, on the same .tric files, in one run.

    python perf/bench_cli_decode.py DIR [--repeat 5] [--device cpu] [--cli-args "--png-level 1"] [--csv OUT]

DIR holds .tric files (e.g. ``tricodec encode ../shared/data/dev /tmp/devpacked``). For each repeat,
alternately (so both see the same machine load):

* ``tricodec.decode_batch`` of every file's bytes (already in memory): decoded images, nothing written;
* ``tricodec decode DIR OUT`` run in this process (typer's runner: imports and JIT already warm, as in a
  long CLI run), from the files on disk to image files in a fresh folder (tmpfs where there is one).

Prints MB/s of raw pixels (H x W x C x bytes per sample) for both, per repeat and the median, and the
ratio CLI / decode_batch. Each output folder is deleted after its run.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.append(str(HERE.parent))  # PYTHONPATH (e.g. a clean export) comes first


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cli-args", default="", help="extra arguments for tricodec decode, e.g. '--png-level 6'")
    ap.add_argument("--out-root", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                    help="where the CLI's output folders go (default: /dev/shm, so the disk is not measured)")
    args = ap.parse_args(argv)

    import tricodec
    from typer.testing import CliRunner

    from tricodec.cli.main import app

    files = sorted(p for p in args.dir.rglob("*.tric"))
    if not files:
        print(f"no .tric files under {args.dir}", file=sys.stderr)
        return 2
    datas = [p.read_bytes() for p in files]
    raw = 0
    for d in datas:
        h = tricodec.read_header(d)
        raw += h.width * h.height * h.channels * (2 if h.bit_depth > 8 else 1)
    runner = CliRunner()
    extra = shlex.split(args.cli_args)

    def lib() -> float:
        t = time.perf_counter()
        tricodec.decode_batch(datas, device=args.device)
        return time.perf_counter() - t

    def cli() -> float:
        out = Path(tempfile.mkdtemp(prefix="tric-cli-bench-", dir=args.out_root))
        try:
            t = time.perf_counter()
            r = runner.invoke(app, ["decode", str(args.dir), str(out / "o"), "--quiet", "--device", args.device] + extra)
            dt = time.perf_counter() - t
            if r.exit_code != 0:
                raise SystemExit(f"tricodec decode failed: {r.output}")
            return dt
        finally:
            shutil.rmtree(out, ignore_errors=True)

    lib(), cli()  # warm-up: JIT, model load, page cache
    t_lib, t_cli = [], []
    for i in range(args.repeat):
        t_lib.append(lib())
        t_cli.append(cli())
        print(f"repeat {i + 1}: decode_batch {raw / 1e6 / t_lib[-1]:6.1f} MB/s, CLI {raw / 1e6 / t_cli[-1]:6.1f} MB/s",
              flush=True)
    lib_mbs, cli_mbs = raw / 1e6 / statistics.median(t_lib), raw / 1e6 / statistics.median(t_cli)
    print(f"{len(files)} files, {raw / 1e6:.2f} MB of pixels, {os.cpu_count()} CPUs, device {args.device}, "
          f"cli args {args.cli_args!r}")
    print(f"median: decode_batch {lib_mbs:.1f} MB/s, CLI decode DIR {cli_mbs:.1f} MB/s, ratio {cli_mbs / lib_mbs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
