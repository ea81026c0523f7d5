"""Long mutation-fuzzing run of the tricodec decoder (``.tric`` inputs) and encoder (malformed image files).

The fuzzer itself lives in ``tests/fuzz_tric.py`` (the CI runs a short seeded slice of it in
``tests/test_fuzz.py``).  Every case runs in a sandboxed worker: address-space limit, per-case timeout,
peak-RSS check; a hang, crash or memory blow-up is reported as a failure, never freezes the run.

    python perf/fuzz_long.py --cases 100000 --seed 1 --jobs 2
    python perf/fuzz_long.py --cases 100000 --seed 1 --jobs 1 --out /tmp/fuzz-1   # failing inputs there
    python perf/fuzz_long.py --reproduce decode:1:4711       # re-create one case and run it in-process
                                                             # (also frames:SEED:INDEX, test_fuzz's multi-frame cases)
    python perf/fuzz_long.py --replay /tmp/fuzz-1/decode-1-4711.tric

Cases are numbered: case ``i`` of seed ``S`` is the same bytes on every machine (``kind:S:i``). A share
of them (``--encode-share``) are encoder cases.  The last line printed is the summary:
``SUMMARY cases=... ok=... DecodeError=... EncodeError=... failures=... hangs=... wall=...s``.
Exit status 1 when there are failures.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import fuzz_tric as fz  # noqa: E402


def is_encode(seed: int, index: int, share: float) -> bool:
    return random.Random(f"tric-fuzz/kind/{seed}/{index}").random() < share


def make_cases(args, corpus, images):
    for i in range(args.start, args.start + args.cases):
        if is_encode(args.seed, i, args.encode_share):
            yield fz.encode_case(images, args.seed, i)
        else:
            yield fz.decode_case(corpus, args.seed, i, heavy=not args.no_heavy)


def save_failure(out_dir: Path, case: fz.Case, out: fz.Outcome, args) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{case.kind}-{case.seed}-{case.index}"
    suffix = case.suffix or ".tric"
    (out_dir / (stem + suffix)).write_bytes(case.data)
    flags = "" if not args.no_heavy else " --no-heavy"
    info = {
        "case": case.ident, "desc": case.desc, "suffix": suffix, "bytes": len(case.data),
        "status": out.status, "kind": out.kind, "error": out.error, "seconds": round(out.seconds, 3),
        "maxrss_mb": round(out.maxrss_mb), "traceback": out.traceback,
        "reproduce": f"python perf/fuzz_long.py --reproduce {case.ident}{flags}",
        "replay": f"python perf/fuzz_long.py --replay {out_dir / (stem + suffix)}",
    }
    (out_dir / (stem + ".txt")).write_text(
        "\n".join(f"{k}: {v}" for k, v in info.items() if k != "traceback") + "\n\n" + out.traceback
        + (f"\ninput hex: {case.data.hex()}\n" if len(case.data) <= 4096 else ""))
    with open(out_dir / "failures.jsonl", "a") as f:
        f.write(json.dumps(info) + "\n")
    return out_dir / (stem + suffix)


def run_one_inprocess(kind: str, data: bytes, suffix: str, expect=None, origin=None) -> int:
    print(f"{kind} input: {len(data)} bytes" + (f" ({data.hex()})" if len(data) <= 512 else ""))
    t0 = time.monotonic()
    out = fz.run_case(data, expect, origin) if kind == "decode" else fz.run_frames_case(data) \
        if kind == "frames" else fz.run_encode_case(data, suffix)
    print(f"-> {out.status} {out.kind} {out.error} ({time.monotonic() - t0:.2f} s)")
    if out.note:
        print(f"   note: {out.note}")
    if out.traceback:
        print(out.traceback)
    return 1 if out.failed else 0


def reproduce(ident: str, args) -> int:
    kind, seed, index = ident.split(":")
    seed, index = int(seed), int(index)
    if kind == "decode":
        corpus = fz.build_corpus()
        case = fz.decode_case(corpus, seed, index, heavy=not args.no_heavy)
    elif kind == "frames":   # tests/test_fuzz.py's multi-frame cases (frame data from every seed)
        seeds = fz.build_frames_corpus()
        case = fz.frames_case(seeds, seeds + fz.build_corpus(), seed, index)
    else:
        case = fz.encode_case(fz.build_image_corpus(), seed, index)
    print(f"case {case.ident}: {case.desc}")
    return run_one_inprocess(case.kind, case.data, case.suffix, case.expect_digest, case.origin_digest)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100000, help="random cases to run (default 100000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="first case index (to resume or split a run)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--encode-share", type=float, default=0.1, help="share of encoder cases (default 0.1)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it is a hang")
    ap.add_argument("--mem-gib", type=float, default=3.0, help="RLIMIT_AS of each worker, GiB")
    ap.add_argument("--rss-mb", type=float, default=1024.0, help="peak RSS of a worker that fails a case")
    ap.add_argument("--no-heavy", action="store_true", help="leave out the crafted big-header cases")
    ap.add_argument("--strict", action="store_true", help="count mutated files that decode to another image "
                    "than their seed (header/palette not covered by the pixel CRC) as failures")
    ap.add_argument("--sweep", action="store_true", help="also run the exhaustive structured sweep first")
    ap.add_argument("--out", type=Path, default=None, help="folder for failing inputs "
                    "(default /tmp/tricodec-fuzz/seed-SEED)")
    ap.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines")
    ap.add_argument("--reproduce", metavar="KIND:SEED:INDEX", help="re-create one case, run it in-process")
    ap.add_argument("--replay", type=Path, metavar="FILE", help="run one saved input in-process")
    args = ap.parse_args(argv)

    if args.reproduce:
        return reproduce(args.reproduce, args)
    if args.replay:
        suffix = args.replay.suffix
        return run_one_inprocess("decode" if suffix == ".tric" else "encode", args.replay.read_bytes(), suffix)

    out_dir = args.out or Path("/tmp/tricodec-fuzz") / f"seed-{args.seed}"
    t0 = time.monotonic()
    corpus, images = fz.build_corpus(), fz.build_image_corpus()
    print(f"fuzz_long: seed {args.seed}, cases {args.start}..{args.start + args.cases - 1}, jobs {args.jobs}, "
          f"encode share {args.encode_share}, timeout {args.timeout:.0f} s, RLIMIT_AS {args.mem_gib:g} GiB, "
          f"RSS limit {args.rss_mb:.0f} MB, heavy {'off' if args.no_heavy else 'on'}; "
          f"{len(corpus)} .tric seeds, {len(images)} image seeds; failing inputs -> {out_dir}", flush=True)
    cases = make_cases(args, corpus, images)
    if args.sweep:
        import itertools
        cases = itertools.chain(fz.sweep_cases(corpus), cases)

    state = {"last": time.monotonic(), "n_fail": 0}

    def on_result(case, out):
        if out.failed:
            path = save_failure(out_dir, case, out, args)
            state["n_fail"] += 1
            print(f"FAIL {case.ident} {out.kind}: {out.error[:200]} | {case.desc[:200]} -> {path}", flush=True)

    def progress(s: fz.Summary):
        now = time.monotonic()
        if now - state["last"] >= args.progress:
            state["last"] = now
            rate = s.cases / max(s.wall, 1e-9)
            total = args.cases
            eta = (total - s.cases) / rate if rate > 0 and s.cases <= total else 0
            print(f"[{s.cases:>7d}/{total}] {s.wall:7.0f} s {rate:6.0f} cases/s  ok={s.counts['ok']} "
                  f"DecodeError={s.counts['DecodeError']} EncodeError={s.counts['EncodeError']} "
                  f"failures={len(s.failures)} hangs={s.hangs}  eta {eta / 60:.1f} min", flush=True)

    try:
        summary = fz.run_campaign(cases, jobs=args.jobs, timeout=args.timeout, mem_limit=int(args.mem_gib * (1 << 30)),
                                  rss_limit_mb=args.rss_mb, warmup=corpus[0].data, progress=progress,
                                  on_result=on_result, strict_altered=args.strict)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        return 2
    summary.wall = time.monotonic() - t0
    print(summary.report(max_cases=30))
    if summary.failures:
        print(f"failing inputs written to {out_dir} (failures.jsonl, one .txt per case with the reproduce command)")
    print("SUMMARY " + summary.line() + f" seed={args.seed} jobs={args.jobs}", flush=True)
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
