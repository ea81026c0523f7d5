"""Benchmark tricodec against PNG, WebP-lossless and JPEG-XL-lossless on the same images in one run.

    python perf/bench_codecs.py [DIR ...] [--repeat N] [--csv FILE] [--plot FILE]

The benchmark itself is ``tricodec/bench.py`` (also run by ``tricodec bench``); default DIR:
../shared/data/dev beside the checkout.
"""
import sys

from tricodec.bench import main

if __name__ == "__main__":
    sys.exit(main())
