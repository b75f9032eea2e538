"""Decode stage: read videos (decord first, PyAV fallback) into frames and metadata."""

from videoact.decode.probe import VIDEO_EXTENSIONS, VideoDecodeError, VideoInfo, probe_video

__all__ = ["VIDEO_EXTENSIONS", "VideoDecodeError", "VideoInfo", "probe_video"]
