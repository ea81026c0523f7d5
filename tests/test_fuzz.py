"""Mutation fuzzing, short seeded run (the long run is ``perf/fuzz_long.py``).

Every case runs in a sandboxed worker process (address-space limit, per-case timeout, RSS check), so a
hang or a memory blow-up fails the test with the case that caused it instead of freezing the suite.
On failure the report names each failing case (``kind:seed:index`` + the mutations applied), the hex
of small inputs and the traceback; ``python perf/fuzz_long.py --reproduce decode:SEED:INDEX`` replays
one in-process.
"""
from __future__ import annotations

import resource
import struct
import time
import zlib

import numpy as np
import pytest

import fuzz_tric as fz

SEED = 20240601
DECODE_CASES = 20000
ENCODE_CASES = 2000
JOBS = 2


@pytest.fixture(scope="module")
def corpus():
    return fz.build_corpus()


@pytest.fixture(scope="module")
def images():
    return fz.build_image_corpus()


@pytest.fixture(scope="module")
def campaign(corpus, images):
    """One sandboxed run shared by the tests below: the structured sweep, DECODE_CASES random decode
    cases, every unmutated image seed and ENCODE_CASES malformed image files."""
    cases = list(fz.sweep_cases(corpus))
    cases += [fz.decode_case(corpus, SEED, i) for i in range(DECODE_CASES)]
    cases += [fz.Case("encode", SEED, -1, f"{s.name} | unmutated", s.data, suffix=s.suffix) for s in images]
    cases += [fz.encode_case(images, SEED, i) for i in range(ENCODE_CASES)]
    t0 = time.monotonic()
    summary = fz.run_campaign(cases, jobs=JOBS, timeout=10.0, warmup=corpus[0].data)
    print(f"\nfuzz short run ({len(cases)} cases, {time.monotonic() - t0:.1f} s): {summary.report()}")
    return summary


def _failures(summary, kind):
    return [(c, o) for c, o in summary.failures if c.kind == kind]


def _check(summary, kind):
    failures = _failures(summary, kind)
    if failures:
        sub = fz.Summary(wall=summary.wall)
        for c, o in failures:
            sub.add(c, o)
        pytest.fail(f"{len(failures)} {kind} failures (seed {SEED}; replay one with "
                    f"`python perf/fuzz_long.py --reproduce KIND:SEED:INDEX`):\n" + sub.report(max_cases=20),
                    pytrace=False)


# ---- the corpus and the case generator ----

def test_seed_corpus_covers_every_path_and_decodes_exactly(corpus):
    kinds, modes = set(), set()
    for seed in corpus:
        out = fz.run_case(seed.data, seed.digest, seed.digest)
        assert out.status == "ok" and out.kind == "exact" and not out.note, (seed.name, out)
        modes.add(fz.header_text(seed.data, "mode"))
        for s in fz.sections_of(seed.data):
            kinds.add(s.name if s.tag != fz.SEC_FALLBACK else f"FALLBACK/{seed.data[s.payload]}")
    assert {"SIDE", "LANES", "META", "FALLBACK/0", "FALLBACK/1", "FALLBACK/2"} <= kinds
    assert {"L", "LA", "RGB", "RGBA", "P", "CMYK", "I;16", "1", "RGB;16", "RGBA;16"} <= modes
    assert any(len(fz.lane_streams(s.data)) == 2 and fz.lane_streams(s.data)[1].n_lanes > 1 for s in corpus)


def test_cases_are_deterministic(corpus, images):
    for i in (0, 1, 77, 1234):
        a, b = fz.decode_case(corpus, 99, i), fz.decode_case(corpus, 99, i)
        assert a.data == b.data and a.desc == b.desc
        a, b = fz.encode_case(images, 99, i), fz.encode_case(images, 99, i)
        assert a.data == b.data and a.desc == b.desc
    assert fz.decode_case(corpus, 99, 5).data != fz.decode_case(corpus, 100, 5).data


def test_layout_parser_agrees_with_the_library(corpus):
    from tricodec import container
    for seed in corpus:
        header, sections = container.unpack(seed.data)
        mine = fz.sections_of(seed.data)
        assert [s.tag for s in mine] == list(sections)
        assert all(bytes(sections[s.tag]) == seed.data[s.payload:s.end] for s in mine)
        for ls in fz.lane_streams(seed.data):  # lane_log2 | counts u32 x n_lanes | words u16 x sum(counts)
            payload = seed.data[ls.log2_off:ls.section.end]
            counts = struct.unpack_from(f"<{ls.n_lanes}I", payload, 1)
            assert 1 + 4 * ls.n_lanes + 2 * sum(counts) == len(payload)


# ---- the sandbox ----

def test_sandbox_reports_hang_crash_and_memory():
    cases = [fz.Case("selftest", 0, i, what, b"") for i, what in enumerate(["hang", "crash", "oom", "rss", "raise"])]
    got = {}
    with fz.WorkerPool(jobs=2, timeout=3.0, mem_limit=2 << 30, rss_limit_mb=200) as pool:
        for case, out in pool.run(cases):
            got[case.desc] = out
    assert got["hang"].failed and got["hang"].kind == "hang"
    assert got["crash"].failed and got["crash"].kind == "crash"
    assert got["oom"].failed and "MemoryError" in got["oom"].error
    assert got["rss"].failed and got["rss"].kind == "memory"
    assert got["raise"].failed and "ValueError" in got["raise"].error


def test_sandbox_measures_each_case_by_the_worker_alone(corpus):
    """A spawned worker's ``ru_maxrss`` starts at its parent's peak (Linux keeps it over fork and exec), so
    the huge-header tests below failed about one run in two ("peak RSS 1041 MB, limit 1024") when the test
    process had grown. Here the parent's peak is pushed above the limit first; a tiny decode must still
    measure under it, and a case after a 256 MiB one must be measured alone."""
    if fz._status_kb("VmHWM") is None:
        pytest.skip("no /proc/self/status on this system")
    limit = 600
    big = np.ones(700 << 20, dtype=np.uint8)  # every page written: the parent's peak is now >= 700 MB
    del big
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 > limit
    tiny = corpus[0]
    cases = [fz.Case("decode", 0, 0, "tiny", tiny.data, expect_digest=tiny.digest),
             fz.Case("selftest", 0, 1, "rss", b""),
             fz.Case("decode", 0, 2, "tiny again", tiny.data, expect_digest=tiny.digest)]
    with fz.WorkerPool(jobs=1, timeout=10.0, rss_limit_mb=limit) as pool:
        outs = [out for _, out in pool.run(cases)]
    assert outs[0].status == "ok" and outs[0].maxrss_mb < limit, (outs[0].status, outs[0].error)
    assert outs[1].status == "ok" and outs[1].maxrss_mb > outs[0].maxrss_mb + 200
    assert outs[2].status == "ok" and outs[2].maxrss_mb < outs[0].maxrss_mb + 100


# ---- the short seeded run ----

def test_decoder_fuzz_short(campaign):
    n = sum(v for k, v in campaign.kinds.items() if k[0] == "decode")
    assert n >= DECODE_CASES
    assert campaign.counts["DecodeError"] > n // 2  # the mutations do reach the validation
    _check(campaign, "decode")


def test_encoder_fuzz_short(campaign):
    assert sum(v for k, v in campaign.kinds.items() if k[0] == "encode") >= ENCODE_CASES
    assert campaign.counts["EncodeError"] > 0
    _check(campaign, "encode")


FRAMES_CASES = 1500


def test_frames_fuzz_short(corpus):
    """Multi-frame files (APNG, multi-page TIFF): the FRAMES section mangled (count, kind, parameters,
    frames dropped, duplicated, swapped, truncated, replaced by files of every kind, frame headers) with a
    valid CRC, and blind bit flips; decoded and written back in the sandbox."""
    seeds = fz.build_frames_corpus()
    cases = [fz.Case("frames", SEED, -1, f"{s.name} | unmutated", s.data) for s in seeds]
    cases += [fz.frames_case(seeds, seeds + corpus, SEED, i) for i in range(FRAMES_CASES)]
    summary = fz.run_campaign(cases, jobs=JOBS, timeout=10.0, warmup=corpus[0].data)
    print(f"\nframes fuzz ({len(cases)} cases): {summary.report()}")
    assert summary.kinds[("frames", "ok", "exact")] >= len(seeds)        # the seeds decode and write back
    assert summary.counts["DecodeError"] > FRAMES_CASES // 2 and summary.counts["ok"] > len(seeds)
    _check(summary, "frames")


# ---- bugs the fuzzer found, as direct reproducers ----

def _with_meta(data: bytes, entries) -> bytes:
    payload = fz.meta_payload(entries)
    buf = bytearray(data) + bytes([fz.SEC_META]) + struct.pack("<I", len(payload)) + payload
    buf[46] += 1
    return bytes(buf)


T = b"transparency"


@pytest.mark.parametrize("seed_name,key,value", [
    ("l_1x1", T, b"[" * 100000),                          # was JSON: RecursionError
    ("l_1x1", T, b"t" + fz._words(1, 2, 3)),              # an RGB colour on an L image
    ("rgb_1x1", T, b"i" + fz._words(5)),                  # an index on an RGB image
    ("rgb_1x1", T, b"t" + fz._words((1 << 32) - 1, 0, 0)),  # a colour no 8-bit image has
    ("i16_21x15", T, b"b" + b"\0" * 300),                  # per-entry alpha on a non-palette image
    ("la_photo_20x16", T, b"i" + fz._words(256)),         # PNG keeps no tRNS for LA
    ("l_1x1", b"text:\xff\xfe", b"x"),                     # a PNG text key PNG cannot hold
    ("l_1x1", b"png:sBIT", b"\x09"),                        # 9 significant bits of an 8-bit sample
    ("rgb_1x1", b"png:bKGD", b"\x01"),                      # a palette index on an RGB image
    ("rgb_1x1", b"dpi", struct.pack("<dd", 1e300, 1e300)),  # a resolution PNG's pHYs cannot hold
], ids=["json-nesting", "rgb-colour-on-L", "index-on-RGB", "colour-overflow", "alpha-table-on-I16",
        "grey-on-LA", "non-latin1-text-key", "sbit-too-deep", "bkgd-index-on-RGB", "dpi-overflow"])
def test_hostile_metadata(corpus, seed_name, key, value, tmp_path):
    """A META section (CRC valid) that does not fit the image: a DecodeError, or a decoded image the CLI
    can write; not a RecursionError (JSON, before the u32/binary META) or a ValueError, OverflowError
    or UnicodeEncodeError from the writer."""
    seed = next(s for s in corpus if s.name == seed_name)
    out = fz.run_case(_with_meta(seed.data, [(key, value)]), workdir=str(tmp_path))
    assert not out.failed, f"{out.kind}: {out.error}\n{out.traceback}"


@pytest.mark.parametrize("mode", ["La", "RGBa", "HSV", "I;16N"])
def test_unwritable_modes_round_trip_and_refuse_files_clearly(mode, tmp_path):
    """encode() takes these modes and decode() gives them back exactly, but no file format Pillow writes
    holds them: writing one is a typed WriteError (the CLI reports the file and goes on), never a crash."""
    from PIL import Image
    import tricodec
    from tricodec.pixels import output_suffix, write_image
    image = Image.new(mode, (3, 2))
    back = fz.decode_exactly(image)
    with pytest.raises(tricodec.WriteError, match=mode):
        write_image(back, tmp_path / ("out" + output_suffix(back)))


def test_deep_mode_channels_must_match(tmp_path):
    """A FALLBACK file saying RGBA;16 with channels=1 (sizes and CRC consistent) decoded to a (1, 1, 1)
    array that no writer takes (pypng ProtocolError): a deep mode names its channel count."""
    from tricodec import container
    px = b"\0\1"
    header = container.Header(width=1, height=1, channels=1, bit_depth=16, mode="RGBA;16",
                              flags=container.FLAG_FALLBACK)
    data = container.pack(header, [(container.SEC_FALLBACK, b"\0" + b"\0" * 4 + struct.pack("<I", 0) + px)],
                          zlib.crc32(px))
    out = fz.run_case(data, workdir=str(tmp_path))
    assert not out.failed, f"{out.kind}: {out.error}\n{out.traceback}"


def test_malformed_exif_round_trips_to_a_file(images, tmp_path):
    """A CMYK JPEG whose APP1 EXIF is not a TIFF block: Pillow reads it, tricodec keeps it verbatim, and
    writing the decoded image (TIFF for CMYK) then raised SyntaxError from Pillow's EXIF parser."""
    seed = next(s for s in images if s.name == "cmyk_bad_exif.jpg")
    out = fz.run_encode_case(seed.data, seed.suffix, str(tmp_path))
    assert not out.failed, f"{out.kind}: {out.error}\n{out.traceback}"


def test_meta_layout_matches_the_library():
    """The fuzzer restates the META layout to craft hostile sections: it must match metadata.pack."""
    from tricodec import metadata
    entries = [(b"icc", b"\1\2"), (b"transparency", b"i" + fz._words(3)), (b"text:caf\xc3\xa9", b"x" * 300)]
    assert fz.meta_payload(entries) == metadata.pack({k.decode(): v for k, v in entries})


def test_fallback_palette_cannot_change_the_mode(corpus):
    """An L file whose FALLBACK carries a palette (pixel CRC still valid) must not decode to mode P
    (found by the fuzzer: putpalette turned the L image into P)."""
    seed = next(s for s in corpus if s.name == "l_1x1")
    buf = bytearray(seed.data)
    fb = next(s for s in fz.sections_of(seed.data) if s.tag == fz.SEC_FALLBACK)
    assert buf[fb.payload] == 0  # STORED: kind | palette_mode (4) | pal_len (4) | palette | pixels
    buf[fb.payload + 1:fb.payload + 5] = b"RGB\0"
    buf[fb.payload + 5:fb.payload + 9] = struct.pack("<I", 3)
    buf[fb.payload + 9:fb.payload + 9] = b"\1\2\3"
    buf[fb.start + 1:fb.start + 5] = struct.pack("<I", fb.length + 3)
    out = fz.run_case(bytes(buf))
    assert not out.failed, out.error


def _decode_in_worker(data: bytes, desc: str):
    """(outcome, MB its worker's peak RSS grew above the worker's own after warm-up) of one decode case."""
    with fz.WorkerPool(jobs=1, timeout=10.0, rss_limit_mb=1024) as pool:
        (case, out), = pool.run([fz.Case("decode", 0, 0, desc, data)])
        return out, out.maxrss_mb - pool.workers[0].base_rss


def test_huge_header_with_valid_side_is_refused_cheaply(corpus):
    """8 KB: a 16384x8192 RGBA header, a valid SIDE stream for it and a 9-byte LANES section, which cannot
    fit the header (found by the fuzzer: the decoder built the P*H*W int32 table ids, 2.7 GB and 7 s,
    before checking it; later it still decoded the 8M side symbols, ~200 MB and 1.5 s, before LANES)."""
    base = next(s for s in corpus if s.name == "rgba_photo_23x19_bs2")
    w, h, mode, ch = fz.BIG_DIMS[0]
    assert (mode, ch) == ("RGBA", 4)
    side = fz.crafted_side(w, h, ch)
    head = bytearray(base.data[:fz.HEADER_SIZE])
    fz.put_field(head, "width", w)
    fz.put_field(head, "height", h)
    lanes = bytes([13]) + struct.pack("<I", 2) + b"\0" * 4
    data = bytes(head) + bytes([fz.SEC_SIDE]) + struct.pack("<I", len(side)) + side \
        + bytes([fz.SEC_LANES]) + struct.pack("<I", len(lanes)) + lanes
    assert len(data) < 16384
    out, grew = _decode_in_worker(data, "crafted big header")
    assert out.status == "DecodeError", f"{out.kind}: {out.error} ({out.seconds:.1f} s, {out.maxrss_mb:.0f} MB)"
    assert grew < 64, f"the refusal touched {grew:.0f} MB (it decoded SIDE before checking LANES)"


@pytest.mark.parametrize("model", ["tric-cx1", "tric-wf1", "tric-wf2", "tric-wf3"])
def test_huge_header_with_valid_context_side_is_refused_cheaply(model):
    """The context models' analog: a 16384x8192 RGBA header, a valid SIDE (lane rows) and a lane table far
    shorter than the header needs must be refused before the residual planes are allocated."""
    import tricodec
    image = dict(fz.seed_images())["rgba_photo_23x19"]
    base = fz.Seed(model, tricodec.encode(image, device="cpu", model=model), "")
    assert base.data[26:34].rstrip(b"\0") == model.encode()
    w, h, mode, ch = fz.BIG_DIMS[0]
    head = bytearray(base.data[:fz.HEADER_SIZE])
    fz.put_field(head, "width", w)
    fz.put_field(head, "height", h)
    from tricodec import container
    side = struct.pack("<I", 16) + bytes(container.unpack(base.data)[1][container.SEC_SIDE])[4:]  # wf2, wf3: params
    lanes = struct.pack("<I", 2) + b"\0" * 4
    data = bytes(head) + bytes([fz.SEC_SIDE]) + struct.pack("<I", len(side)) + side \
        + bytes([fz.SEC_LANES]) + struct.pack("<I", len(lanes)) + lanes
    out, grew = _decode_in_worker(data, "crafted big context header")
    assert out.status == "DecodeError", f"{out.kind}: {out.error} ({out.seconds:.1f} s, {out.maxrss_mb:.0f} MB)"
    assert grew < 64, f"the refusal touched {grew:.0f} MB"


def test_read_image_refuses_a_huge_16bit_png_cheaply(images, tmp_path):
    """1 KB: a 16-bit RGBA PNG whose IHDR (CRC fixed) declares 12x4194314 (found by the fuzzer: read_image
    handed it to pypng, which took ~2 GB and seconds before failing; it must be refused up front)."""
    seed = next(s for s in images if s.name == "rgba16_interlaced.png")
    buf = bytearray(seed.data)
    struct.pack_into(">I", buf, 20, 4194314)
    struct.pack_into(">I", buf, 29, zlib.crc32(bytes(buf[12:29])))
    with fz.WorkerPool(jobs=1, timeout=10.0, rss_limit_mb=1024) as pool:
        (case, out), = pool.run([fz.Case("encode", 0, 0, "png16 huge IHDR", bytes(buf), suffix=".png")])
    assert out.status == "EncodeError" and out.maxrss_mb < 1024, \
        f"{out.status} {out.kind}: {out.error} ({out.seconds:.1f} s, {out.maxrss_mb:.0f} MB)"


@pytest.mark.parametrize("n", [4097, 70000])
def test_png_with_many_text_chunks(images, n):
    """A valid PNG with n tEXt chunks (found by the fuzzer: with a u16 entry count and a 4096-entry limit
    in the decoder, 4097 chunks encoded to a file that did not decode, and 70000 raised struct.error)."""
    seed = next(s for s in images if s.name == "rgb.png")
    buf = bytearray(seed.data)
    buf[-12:-12] = b"".join(fz._png_chunk(b"tEXt", b"k%d\0v" % i) for i in range(n))
    out = fz.run_encode_case(bytes(buf), ".png")
    assert not out.failed, f"{out.kind}: {out.error}\n{out.traceback}"
