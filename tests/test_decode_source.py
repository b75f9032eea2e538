"""VideoSource on real videos: metadata against ffprobe, decord pixels against PyAV pixels, streaming, rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from decode_media import ffmpeg_path, ffprobe, ffprobe_path, make_bad_files, write_video

from videoact.decode import VideoSource, probe_video
from videoact.runner.inputs import sample_path

SHARED_VIDEOS = ["demo.mp4", "S001C001P001R001A001_rgb.avi", "demo_skeleton.mp4", "demo_spatiotemporal_det.mp4"]
SAMPLES = ["carphone", "bikes", "bigbuckbunny"]

needs_ffprobe = pytest.mark.skipif(ffprobe_path() is None, reason="no ffprobe: pip install 'videoact[dev]'")


def _real(kind: str, name: str, shared_data: Path | None = None) -> Path:
    if kind == "shared":
        assert shared_data is not None
        path = shared_data / "videos" / name
        if not path.is_file():
            pytest.skip(f"{path} not found")
        return path
    return sample_path(name)


@pytest.fixture(params=[("shared", n) for n in SHARED_VIDEOS] + [("sample", n) for n in SAMPLES],
                ids=lambda p: p[1])
def real_video(request: pytest.FixtureRequest) -> Path:
    kind, name = request.param
    shared = request.getfixturevalue("shared_data") if kind == "shared" else None
    return _real(kind, name, shared)


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_bad_files(tmp_path_factory.mktemp("decode_media"))


@needs_ffprobe
def test_metadata_matches_ffprobe(real_video: Path) -> None:
    ref = ffprobe(real_video)
    st = ref["streams"][0]
    for backend in ("decord", "pyav"):
        with VideoSource(real_video, backend=backend) as src:
            info = src.info
        assert info.backend == backend
        assert info.codec == st["codec_name"]
        assert (info.width, info.height) == (st["width"], st["height"])
        assert info.n_frames == int(st["nb_read_packets"])  # ffprobe's own packet count
        if "nb_frames" in st:
            assert info.n_frames_container == int(st["nb_frames"])
        assert info.fps == pytest.approx(float(Fraction(st["avg_frame_rate"])), rel=1e-6)
        duration = float(st.get("duration") or ref["format"]["duration"])
        assert info.duration_s == pytest.approx(duration, abs=1e-3)
        rotation = next((sd.get("rotation", 0) for sd in st.get("side_data_list", []) if "rotation" in sd), 0)
        assert info.rotation == int(rotation) % 360


def test_decord_and_pyav_give_identical_pixels(real_video: Path) -> None:
    """Both readers convert YUV to RGB with FFmpeg's swscale: no tolerance needed, the pixels are equal."""
    with VideoSource(real_video, backend="decord") as d, VideoSource(real_video, backend="pyav") as a:
        assert len(d) == len(a)
        n = len(a)
        rng = np.random.default_rng(0)
        idx = np.concatenate([[0, n - 1, n // 2], rng.integers(0, n, 5)])  # unsorted, with a backward jump
        fd, fa = d.get_frames(idx), a.get_frames(idx)
        assert fd.dtype == fa.dtype and fd.shape == fa.shape == (len(idx), *a.info.display_size[::-1], 3)
        assert (fd == fa).all()


def test_stream_yields_every_frame_once_in_order() -> None:
    path = sample_path("carphone")
    for backend in ("decord", "pyav"):
        with VideoSource(path, backend=backend) as src:
            starts, frames = zip(*src.stream(window=32), strict=True)
            video = np.concatenate([f.numpy() for f in frames])
            assert list(starts) == list(range(0, len(src), 32)) and len(video) == len(src) == 120
            sample = [0, 31, 32, 77, 119]
            assert (video[sample] == src.get_frames(sample).numpy()).all()


def test_pyav_frames_match_a_plain_sequential_decode(tmp_path: Path) -> None:
    """Frame i of our PyAV reader is the i-th frame a plain decode loop produces (seek logic is right)."""
    import av

    path = sample_path("bikes")
    with av.open(str(path)) as c:
        plain = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with VideoSource(path, backend="pyav") as src:
        idx = [249, 3, 125, 124, 0, 200]
        got = src.get_frames(idx).numpy()
    for k, i in enumerate(idx):
        assert (got[k] == plain[i]).all(), i


@pytest.mark.parametrize("name,turns", [("rotated_90", 1), ("rotated_270", 3)])
def test_rotation_is_reported_and_applied_by_both_backends(bad_files: dict[str, Path], name: str, turns: int) -> None:
    path = bad_files[name]
    frames = {}
    for backend in ("decord", "pyav"):
        with VideoSource(path, backend=backend) as src:
            assert (src.info.width, src.info.height, src.info.rotation) == (160, 120, 90 * turns)
            assert src.info.display_size == (120, 160)
            frames[backend] = src.get_frames([0, 10]).numpy()  # (2, 160, 120, 3): upright
    assert frames["decord"].shape == (2, 160, 120, 3)
    assert (frames["decord"] == frames["pyav"]).all()
    with VideoSource(path, backend="pyav") as src:  # the stored frame, turned counter-clockwise `turns` times
        stored = np.rot90(src.get_frames([0]).numpy()[0], k=-turns)
    assert stored[:5, :5].mean() > 200  # the white corner sits top-left in the coded picture
    exe = ffmpeg_path()
    if exe is not None:  # ffmpeg's own autorotate as the independent reference
        raw = subprocess.run([exe, "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        ref = np.frombuffer(raw, np.uint8).reshape(160, 120, 3)
        assert np.abs(ref.astype(int) - frames["pyav"][0]).mean() < 2  # swscale flags differ slightly


@needs_ffprobe
def test_vfr_timestamps_match_ffprobe(bad_files: dict[str, Path]) -> None:
    path = bad_files["vfr"]
    out = subprocess.run([ffprobe_path(), "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time", "-of", "json", str(path)], capture_output=True, text=True, check=True)
    ref = np.sort([float(p["pts_time"]) for p in json.loads(out.stdout)["packets"]])
    with VideoSource(path) as src:
        assert src.info.vfr and src.info.n_frames == 60
        np.testing.assert_allclose(src.info.timestamps_s, ref, atol=1e-6)
        assert src.info.fps == pytest.approx(60 / src.info.duration_s)
    with VideoSource(sample_path("bikes")) as src:
        assert not src.info.vfr


def test_probe_video_keeps_its_contract() -> None:
    info = probe_video(sample_path("carphone"))
    d = info.as_dict()
    assert info.backend == "decord" and info.n_frames == 120 and info.n_frames_exact
    assert d["n_frames_source"] == "packets" and "timestamps_s" not in d
    json.dumps(d)  # the CLI prints it
    assert probe_video(sample_path("carphone"), backend="pyav").backend == "pyav"


def test_cli_info_prints_metadata() -> None:
    out = subprocess.run([sys.executable, "-m", "videoact.cli", "info", str(sample_path("carphone")), "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert (d["width"], d["height"], d["n_frames"], d["codec"]) == (176, 144, 120, "h264")
    out = subprocess.run([sys.executable, "-m", "videoact.cli", "info", str(sample_path("carphone"))],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "176x144" in out.stdout and "30000/1001" in out.stdout


def test_small_generated_file_roundtrip(tmp_path: Path) -> None:
    path = write_video(tmp_path / "g.mp4", n=40, w=64, h=48)
    with VideoSource(path) as src:
        assert len(src) == 40 and src.info.n_frames_container == 40 and src.backend == "decord"
        clip = src.get_frames(np.arange(0, 40, 5))
        assert tuple(clip.shape) == (8, 48, 64, 3)


def test_decord_reader_lifetime_is_bounded_and_reopening_is_invisible() -> None:
    """A tiny budget forces reopening every few frames: the pixels stay those of PyAV."""
    path = sample_path("carphone")  # 176x144: 0.076 MB a frame, so 32 frames per reader
    with VideoSource(path, backend="decord", reader_budget_mb=1.0) as d, VideoSource(path, backend="pyav") as a:
        idx = np.arange(0, 120, 2)
        got = [d.get_frames(idx[s:s + 10]).numpy() for s in range(0, len(idx), 10)]
        got += [c.numpy() for c in d.clips([np.arange(100, 116), np.arange(104, 120)])]
        assert d._reader.readers_opened >= 3  # type: ignore[attr-defined]
        want = [a.get_frames(idx[s:s + 10]).numpy() for s in range(0, len(idx), 10)]
        want += [a.get_frames(np.arange(100, 116)).numpy(), a.get_frames(np.arange(104, 120)).numpy()]
        assert all((g == w).all() for g, w in zip(got, want, strict=True))


def test_auto_streams_with_pyav_and_reads_clips_with_decord() -> None:
    with VideoSource(sample_path("carphone")) as src:
        assert src.backend == "decord"
        n = sum(len(w) for _, w in src.stream(window=50))
        assert n == 120 and src._stream_reader is not None and src._stream_reader.name == "pyav"


def test_forward_clip_runs_match_pyav_on_both_paths() -> None:
    """Overlapping strided clips (AVA style) then consecutive windows: decord's position logic stays right."""
    from videoact.decode import keyframe_clips, keyframe_times, sliding_window_clips

    path = sample_path("bikes")
    with VideoSource(path, backend="decord") as d, VideoSource(path, backend="pyav") as a:
        ts = d.info.timestamps_s
        plan = keyframe_clips(ts, keyframe_times(d.info.duration_s, start_s=1.0), clip_len=8, frame_step=3)
        plan += sliding_window_clips(len(d), window=16, stride=16)[:4]
        for cd, ca in zip(d.clips(plan), a.clips(plan), strict=True):
            assert (cd == ca).all()
