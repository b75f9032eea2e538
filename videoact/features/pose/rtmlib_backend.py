"""RTMPose through ``rtmlib``: a person detector (YOLOX or RTMDet) then top-down RTMPose, COCO-17, many persons.

Untested here: rtmlib is not installed in the development environment and the ONNX models are not shipped,
so only the argument checks and error messages are covered by the tests. Install ``rtmlib`` and
``onnxruntime`` yourself and pass the two ONNX files of the mmpose model zoo
(``https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/``, unzip ``end2end.onnx``)::

    build_pose_backend("rtmpose", det_model="yolox_m/end2end.onnx", pose_model="rtmpose_m/end2end.onnx")

The paths must exist: rtmlib downloads a model when it is given a name it cannot open, and a run should
never fetch weights behind the user's back. No tracking: ``person_id`` is left None, i.e. the person's rank
in the frame (detection order), which is not an identity across frames. ``box`` is the detector box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from videoact.features.pose.base import PersonPose, register_pose_backend

DETECTORS = ("yolox", "rtmdet")
_HOW = ("pass pose.options.det_model=... pose.options.pose_model=...; RTMPose ONNX files from the mmpose model zoo "
        "(https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/)")


def _check_file(path: str | Path | None, what: str) -> Path:
    if path is None:
        raise ValueError(f"pose backend rtmpose needs a {what} ONNX file: {_HOW}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} ONNX file not found; {_HOW}")
    return path


def import_rtmlib() -> Any:
    try:
        import rtmlib
    except ImportError:
        raise ImportError("pose backend rtmpose needs rtmlib and onnxruntime: pip install rtmlib onnxruntime; "
                          f"then {_HOW}") from None
    return rtmlib


class RTMPoseBackend:
    """Detector then RTMPose on each box, frame by frame (stateless: ``close`` only drops the sessions)."""

    name = "rtmpose"
    layout = "coco17"

    def __init__(self, *, det_model: str | Path | None = None, pose_model: str | Path | None = None,
                 detector: str = "yolox", det_input_size: tuple[int, int] = (640, 640),
                 pose_input_size: tuple[int, int] = (192, 256), device: str = "cpu",
                 runtime: str = "onnxruntime") -> None:
        if detector not in DETECTORS:
            raise ValueError(f"rtmpose detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        self.det_path = _check_file(det_model, "person detector (det_model)")
        self.pose_path = _check_file(pose_model, "pose (pose_model)")
        self._rtmlib = import_rtmlib()
        self._opts = {"detector": detector, "det_input_size": tuple(det_input_size),
                      "pose_input_size": tuple(pose_input_size), "device": device, "runtime": runtime}
        self._det: Any = None
        self._pose: Any = None

    def _open(self) -> None:
        o = self._opts
        det_cls = self._rtmlib.YOLOX if o["detector"] == "yolox" else self._rtmlib.RTMDet
        self._det = det_cls(str(self.det_path), model_input_size=o["det_input_size"], backend=o["runtime"],
                            device=o["device"])
        self._pose = self._rtmlib.RTMPose(str(self.pose_path), model_input_size=o["pose_input_size"],
                                          backend=o["runtime"], device=o["device"])

    def __call__(self, frame: np.ndarray, t_ms: int) -> list[PersonPose]:
        if self._det is None:
            self._open()
        bgr = np.ascontiguousarray(frame[..., ::-1])  # rtmlib reads OpenCV (BGR) images
        boxes = np.asarray(self._det(bgr), dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return []  # RTMPose alone would pose the whole frame: no box, no person
        out = self._pose(bgr, bboxes=boxes)
        if isinstance(out, tuple):  # current rtmlib: (keypoints (N, V, 2), scores (N, V))
            keypoints, scores = out
        else:  # early releases: one dict per box
            keypoints = np.stack([o["keypoints"] for o in out]).reshape(len(out), -1, 2)
            scores = np.stack([o["scores"] for o in out]).reshape(len(out), -1)
        return [PersonPose(keypoints=k, scores=s, box=tuple(float(x) for x in b))
                for k, s, b in zip(keypoints, scores, boxes, strict=True)]

    def close(self) -> None:
        self._det = self._pose = None


@register_pose_backend("rtmpose")
def build_rtmpose(*, det_model: str | Path | None = None, pose_model: str | Path | None = None,
                  detector: str = "yolox", det_input_size: tuple[int, int] = (640, 640),
                  pose_input_size: tuple[int, int] = (192, 256), device: str = "cpu",
                  runtime: str = "onnxruntime") -> RTMPoseBackend:
    """RTMPose (COCO-17) with user-supplied ONNX files; sizes are ``(width, height)`` as rtmlib takes them."""
    return RTMPoseBackend(det_model=det_model, pose_model=pose_model, detector=detector,
                          det_input_size=det_input_size, pose_input_size=pose_input_size, device=device,
                          runtime=runtime)
