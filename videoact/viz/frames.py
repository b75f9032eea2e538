"""Frames with their annotations drawn on: keyframe grids (a Figure) and overlay videos (an H.264 mp4).

Boxes come from a ``boxes`` table (normalised ``x1..y2``, scaled to the frame), skeletons from a
``skeletons`` table (``image_px`` or ``image_norm`` rows; ``world_m`` rows are skipped), bones from the
row's joint layout (``videoact.features.skeleton.layouts``). Rows are matched to frames by their
``frame`` column, else by ``round(t_s * fps)`` with the video's fps. Drawing uses Pillow on the uint8
frames, so a grid shows the same pixels as the video.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from videoact.decode.source import VideoSource
from videoact.viz._figure import finish, new_figure

__all__ = ["draw_frame", "frames_of", "keyframe_grid", "write_overlay_video"]

BOX_COLOUR = (255, 0, 0)
BONE_COLOUR = (0, 255, 0)
JOINT_COLOUR = (255, 255, 0)


def frames_of(df: pd.DataFrame | None, fps: float, time_col: str = "t_s") -> np.ndarray:
    """Frame index of every row: its ``frame`` when set, else ``round(t_s * fps)``."""
    if df is None or not len(df):
        return np.zeros(0, dtype=np.int64)
    by_time = np.round(df[time_col].to_numpy(np.float64) * fps)
    if "frame" in df.columns:
        given = df["frame"].to_numpy(dtype=np.float64, na_value=np.nan)
        by_time = np.where(np.isnan(given), by_time, given)
    return by_time.astype(np.int64)


def _edges(layout: str) -> tuple[tuple[int, int], ...]:
    from videoact.features.skeleton.layouts import get_layout

    return get_layout(layout).edges


def draw_frame(
    frame: np.ndarray,
    *,
    boxes: pd.DataFrame | None = None,
    skeletons: pd.DataFrame | None = None,
    text: str | None = None,
    width: int | None = None,
) -> np.ndarray:
    """One uint8 ``(H, W, 3)`` frame with boxes (red, label above), skeleton bones (green) and a caption.

    Args:
        boxes, skeletons: the rows of this frame only.
        width: line width in pixels (default: about 1/300 of the frame's larger side, at least 2).
    """
    frame = np.asarray(frame, dtype=np.uint8)
    h, w = frame.shape[:2]
    lw = width or max(2, round(max(h, w) / 300))
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    if skeletons is not None:
        for row in skeletons.itertuples(index=False):
            if row.coord_space == "world_m":
                continue
            xy = np.asarray(row.keypoints, dtype=np.float64).reshape(-1, int(row.dims))[:, :2]
            if row.coord_space == "image_norm":
                xy = xy * [w, h]
            ok = np.isfinite(xy).all(axis=1)
            for a, b in _edges(row.layout):
                if ok[a] and ok[b]:
                    draw.line([tuple(xy[a]), tuple(xy[b])], fill=BONE_COLOUR, width=lw)
            for x, y in xy[ok]:
                draw.ellipse([x - lw, y - lw, x + lw, y + lw], fill=JOINT_COLOUR)
    if boxes is not None:
        for row in boxes.itertuples(index=False):
            if pd.isna(row.x1):
                continue
            x1, y1, x2, y2 = row.x1 * (w - 1), row.y1 * (h - 1), row.x2 * (w - 1), row.y2 * (h - 1)
            draw.rectangle([x1, y1, x2, y2], outline=BOX_COLOUR, width=lw)
            label = "" if pd.isna(row.label) else str(row.label)
            tag = f"{label} {row.score:.2f}".strip() if row.score != 1.0 or label else ""
            if tag:
                draw.text((x1 + lw, max(0.0, y1 - 12 - lw)), tag, fill=BOX_COLOUR)
    if text:
        draw.rectangle([0, 0, min(w - 1, 8 + 7 * len(text)), 16], fill=(0, 0, 0))
        draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(img)


def _open(video: str | Path | VideoSource) -> tuple[VideoSource, bool]:
    return (video, False) if isinstance(video, VideoSource) else (VideoSource(video), True)


def _caption(segments: pd.DataFrame | None, f: int, fps: float) -> str | None:
    """The best-scored segment label covering frame ``f`` (per source), e.g. ``"stand up 0.43"``.

    Segment frames (``frame_start <= f < frame_end``) decide where set, else times at the video's fps.
    """
    if segments is None or not len(segments):
        return None
    start = segments["frame_start"].to_numpy(np.float64, na_value=np.nan)
    end = segments["frame_end"].to_numpy(np.float64, na_value=np.nan)
    start = np.where(np.isnan(start), np.round(segments["t_start_s"].to_numpy(np.float64) * fps), start)
    end = np.where(np.isnan(end), np.round(segments["t_end_s"].to_numpy(np.float64) * fps), end)
    on = segments[(start <= f) & (f < end)]
    if not len(on):
        return None
    best = on.sort_values("score", ascending=False, kind="stable").drop_duplicates("source")
    return " | ".join(f"{r.label} {r.score:.2f}" for r in best.itertuples(index=False))


def keyframe_grid(
    video: str | Path | VideoSource,
    *,
    boxes: pd.DataFrame | None = None,
    skeletons: pd.DataFrame | None = None,
    segments: pd.DataFrame | None = None,
    frames: list[int] | np.ndarray | None = None,
    times: list[float] | np.ndarray | None = None,
    n: int = 8,
    ncols: int = 4,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
    save: str | Path | None = None,
) -> Figure:
    """Selected frames in a grid, with boxes and skeletons of those frames drawn on.

    Args:
        video: the video file (or an open ``VideoSource``; it is not closed).
        boxes, skeletons, segments: tables of this video (rows of other frames are ignored).
        frames / times: which frames (indices, or seconds rounded to frames); default: ``n`` evenly spaced.
        figsize: inches; default ``(3 * ncols, 3 * rows * H / W + 0.4)``.
    """
    src, owned = _open(video)
    try:
        fps, total = src.info.fps, len(src)
        if frames is None and times is not None:
            frames = np.round(np.asarray(times, dtype=np.float64) * fps).astype(np.int64)
        if frames is None:
            frames = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(np.int64))
        frames = np.clip(np.asarray(frames, dtype=np.int64), 0, total - 1)
        pixels = src.get_frames(frames).numpy()
    finally:
        if owned:
            src.close()
    box_f, sk_f = frames_of(boxes, fps), frames_of(skeletons, fps)
    ncols = max(1, min(ncols, len(frames)))
    nrows = -(-len(frames) // ncols)
    h, w = pixels.shape[1:3]
    fig = new_figure(figsize or (3.0 * ncols, 3.0 * nrows * h / w + 0.4), dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, f, img in zip(axes.ravel(), frames, pixels, strict=False):
        drawn = draw_frame(img, boxes=None if boxes is None else boxes[box_f == f],
                           skeletons=None if skeletons is None else skeletons[sk_f == f])
        ax.imshow(drawn, interpolation="nearest")
        cap = _caption(segments, int(f), fps)
        ax.set_title(f"frame {f} ({f / fps:.2f} s)" + (f"\n{cap}" if cap else ""), fontsize=7)
    return finish(fig, save)


def write_overlay_video(
    video: str | Path | VideoSource,
    out: str | Path,
    *,
    boxes: pd.DataFrame | None = None,
    skeletons: pd.DataFrame | None = None,
    segments: pd.DataFrame | None = None,
    start: int = 0,
    stop: int | None = None,
    crf: int = 23,
    preset: str = "veryfast",
) -> Path:
    """Write frames ``[start, stop)`` with annotations drawn on as an H.264 mp4 that browsers play.

    libx264, yuv420p, even width and height (one edge row / column is repeated when odd), the moov atom at
    the front (``movflags=+faststart``) so playback starts before the download ends. The frame rate is the
    source's; the top-1 segment label of each source is shown as a caption.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    src, owned = _open(video)
    tmp = out.with_name(out.name + ".tmp.mp4")  # renamed when complete: never a half-written mp4 at ``out``
    try:
        rate = Fraction(src.info.fps).limit_denominator(1001)
        n = _encode_h264(_drawn_frames(src, start, stop, boxes, skeletons, segments), tmp, rate, crf, preset)
        if n == 0:
            raise ValueError(f"{src.path}: no frames in [{start}, {stop}) to write")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
        if owned:
            src.close()
    return out


def _drawn_frames(src: VideoSource, start: int, stop: int | None, boxes: pd.DataFrame | None,
                  skeletons: pd.DataFrame | None, segments: pd.DataFrame | None) -> Iterator[np.ndarray]:
    """Frames ``[start, stop)`` with their rows drawn, padded to even sizes (yuv420p halves the chroma)."""
    fps = src.info.fps
    box_f, sk_f = frames_of(boxes, fps), frames_of(skeletons, fps)
    for first, window in src.stream(window=32, start=start, stop=stop):
        for k, img in enumerate(window.numpy()):
            f = first + k
            drawn = draw_frame(img, boxes=None if boxes is None else boxes[box_f == f],
                               skeletons=None if skeletons is None else skeletons[sk_f == f],
                               text=_caption(segments, f, fps))
            h, w = drawn.shape[:2]
            yield np.pad(drawn, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else drawn


def _encode_h264(frames: Iterable[np.ndarray], path: Path, rate: Fraction, crf: int, preset: str) -> int:
    """Encode RGB frames as libx264 / yuv420p in an mp4 with the moov atom first; returns the frame count."""
    import av

    n = 0
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = None
        for img in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = img.shape[1], img.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": str(crf), "preset": preset}
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                container.mux(packet)
            n += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return n
