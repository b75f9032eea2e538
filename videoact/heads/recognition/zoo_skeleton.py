"""Zoo skeleton models (``task: skeleton`` cards): mmaction2's ST-GCN++ checkpoints run over the pose stage's track.

``heads.recognition.zoo.load_zoo_recognizer(name)`` downloads a card's files and calls
``load_zoo_skeleton(card, files)``; the result is what ``skeleton.recognize_track`` runs::

    from videoact import models
    from videoact.heads.recognition.zoo_skeleton import load_zoo_skeleton

    card = models.get_model("stgcnpp_ntu60_xsub_2d_joint")
    clf = load_zoo_skeleton(card, models.download(card.name))
    segs = recognize_track(track, clf, video_id="v", label_space=clf.label_space, source=clf.name,
                           window_s=4.0, stride_s=2.0)

Each window of the track goes through mmaction2's own test pipeline (``features.skeleton.mmaction2``):
BlazePose's 33 landmarks (or any layout with a mapping) become COCO-17 (nose, eyes, ears, shoulders, elbows,
wrists, hips, knees, ankles: BlazePose 0, 2, 5, 7, 8, 11-16, 23-28), in **image pixels** with the backend's
per-joint score as the third channel (MediaPipe: landmark visibility); ``PreNormalize2D`` with the track's image
size, ``UniformSampleFrames(clip_len, num_clips, test_mode=True)`` over the window, ``FormatGCNInput``; the
class probabilities are the softmax averaged over the clips (``average_clips='prob'``). 3D cards (``ntu25``) read
the track's metric world coordinates turned into Kinect axes, then ``PreNormalize3D``.

Card fields read: ``arch`` (``stgcnpp_mmaction2``), ``layout`` (``mmaction2_stgcn``: the checkpoint's own key
names, loaded strictly), ``arch_kwargs`` (``features.skeleton.mmaction2.build_recognizer``'s: ``graph_layout``,
``graph_mode``, backbone options), ``num_classes``, ``labels``, and ``input``:

=================  ==========================================================================================
``keypoint_layout``  ``coco17`` (2D) or ``ntu25`` (3D); default from ``arch_kwargs.graph_layout``
``clip_len``         frames per clip (100)
``num_clips``        clips per window, probabilities averaged (10)
``num_person``       persons per clip, zero-padded (2)
``normalize``        ``PreNormalize2D`` / ``2d``, ``PreNormalize3D`` / ``3d`` or ``none`` (by layout: 2d / 3d)
``feats``            ``GenSkeFeat`` features: ``[j]``, ``[b]``, ``[jm]``, ``[bm]`` (or joint, bone, ...)
``dataset``          ``GenSkeFeat``'s dataset (coco, nturgb+d); default from the layout
``img_shape``        ``[h, w]`` used when a track has no image size (mmaction2's default 1080 x 1920)
``seed``             ``UniformSampleFrames``' test seed (255)
``average_clips``    ``prob`` (softmax then mean), ``score`` (mean logits, then softmax here)
=================  ==========================================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from videoact.features.pose.base import PoseTrack
from videoact.features.pose.extract import to_array
from videoact.features.skeleton import mmaction2 as mm

log = logging.getLogger("videoact.recognition")

ARCHS = ("stgcnpp_mmaction2",)
CHECKPOINT_LAYOUTS = ("mmaction2_stgcn", "mmaction2")
INPUT_KEYS = ("keypoint_layout", "clip_len", "num_clips", "num_person", "num_persons", "normalize", "feats",
              "dataset", "img_shape", "seed", "average_clips", "coords", "scores")
_FEATS = {"j": "j", "joint": "j", "b": "b", "bone": "b", "jm": "jm", "joint_motion": "jm", "bm": "bm",
          "bone_motion": "bm"}
_NORMALIZE = {"prenormalize2d": "2d", "2d": "2d", "prenormalize3d": "3d", "3d": "3d", "none": "none"}


class ZooCardError(ValueError):
    """A skeleton card this loader cannot run: the card and the field are named."""


@dataclass
class ZooSkeletonClassifier:
    """An mmaction2 skeleton network with its card's pipeline and class names; ``recognize_track`` runs it."""

    model: mm.Recognizer
    classes: tuple[str, ...]
    pipeline: mm.MMAction2SkeletonPipeline
    layout: str  # the joints it reads (coco17, ntu25)
    dims: int  # 2: image pixels + score; 3: metric world coordinates
    name: str  # the card's name (the segments' source)
    labels: str  # the card's label map (the segments' label space)
    batch_size: int = 4  # windows per forward pass (each is num_clips x num_person clips)
    meta: dict[str, Any] = field(default_factory=dict)
    wants_image_size = True  # recognize_track passes the track's image size to predict_proba

    @property
    def label_space(self) -> str:
        return self.labels

    @property
    def num_persons(self) -> int:
        return self.pipeline.num_person

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> ZooSkeletonClassifier:
        self.model.to(device)
        return self

    def track_input(self, track: PoseTrack) -> np.ndarray:
        """``(M, T, V, 3)`` over the track's processed frames: pixels + score (2D) or Kinect-axes metres (3D);
        zeros where a person or joint is absent (as in mmaction2's pickles)."""
        if self.dims == 2:
            kp, sc = to_array(track, self.layout, coords="image_px", num_persons=self.num_persons)
            return np.concatenate([kp, sc[..., None]], -1).astype(np.float32)
        from videoact.heads.recognition.skeleton import track_keypoints

        return track_keypoints(track, layout=self.layout, dims=3, num_persons=self.num_persons)

    def img_shape(self, image_size: tuple[int, int] | None) -> tuple[int, int]:
        """``(h, w)`` for ``PreNormalize2D`` from a track's ``(W, H)``."""
        if image_size is None:
            log.warning("%s: the pose track has no image size; PreNormalize2D uses %s (h, w)", self.name,
                        self.pipeline.img_shape)
            return self.pipeline.img_shape
        return (int(image_size[1]), int(image_size[0]))

    def clips(self, seq: np.ndarray, image_size: tuple[int, int] | None = None) -> np.ndarray:
        """One window ``(M, T, V, 3)`` (``track_input``'s) -> ``(num_clips, num_person, clip_len, V, C)``."""
        seq = np.asarray(seq, np.float32)
        if self.dims == 2:
            return self.pipeline(seq[..., :2], seq[..., 2], img_shape=self.img_shape(image_size))
        return self.pipeline(seq)

    @torch.no_grad()
    def predict_proba(self, keypoints: np.ndarray | Sequence[np.ndarray],
                      image_size: tuple[int, int] | None = None) -> np.ndarray:
        """Windows ``(M, T, V, 3)`` (``track_input``'s; ``image_size`` the track's ``(W, H)``) -> ``(N, K)``."""
        seqs = [keypoints] if isinstance(keypoints, np.ndarray) else list(keypoints)
        self.model.eval()
        out = []
        for i in range(0, len(seqs), self.batch_size):
            x = np.stack([self.clips(s, image_size) for s in seqs[i:i + self.batch_size]])
            out.append(self.predict_clips(x))
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    @torch.no_grad()
    def predict_clips(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """``(B, num_clips, M, T, V, C)`` (``FormatGCNInput``'s, batched) -> ``(B, K)`` probabilities."""
        x = torch.as_tensor(np.asarray(x, np.float32), device=self.device)
        p = self.model.predict(x)
        if self.model.average_clips != "prob":
            p = F.softmax(p if p.ndim == 2 else p.mean(1), dim=-1)
        return p.float().cpu().numpy()

    def predict_keypoints(self, keypoint: np.ndarray, keypoint_score: np.ndarray | None = None,
                          img_shape: tuple[int, int] | None = None) -> np.ndarray:
        """One sample as in an mmaction2 pickle (``keypoint (M, T, V, 2|3)``, ``keypoint_score``, ``img_shape``
        ``(h, w)``) -> ``(K,)`` probabilities."""
        clips = self.pipeline(np.asarray(keypoint, np.float32),
                              None if keypoint_score is None else np.asarray(keypoint_score, np.float32),
                              img_shape=img_shape)
        return self.predict_clips(clips[None])[0]


def _pipeline(card: Any, layout: str) -> tuple[mm.MMAction2SkeletonPipeline, str]:
    inp = dict(card.input)
    unknown = sorted(set(inp) - set(INPUT_KEYS))
    if unknown:
        raise ZooCardError(f"model {card.name}: unknown input key(s) {', '.join(unknown)}; a skeleton card's input "
                           f"takes {', '.join(INPUT_KEYS)}")
    dims = 2 if layout == "coco17" else 3
    norm_raw = str(inp.get("normalize", "2d" if dims == 2 else "3d")).lower()
    if norm_raw not in _NORMALIZE:
        raise ZooCardError(f"model {card.name}: input.normalize {inp['normalize']!r}; use PreNormalize2D, "
                           f"PreNormalize3D or none")
    feats_raw = inp.get("feats", ["j"])
    feats_raw = [feats_raw] if isinstance(feats_raw, str) else list(feats_raw)
    bad = [f for f in feats_raw if str(f).lower() not in _FEATS]
    if bad:
        raise ZooCardError(f"model {card.name}: input.feats {bad}; use j, b, jm, bm")
    avg = inp.get("average_clips", "prob")
    if avg not in ("prob", "score"):
        raise ZooCardError(f"model {card.name}: input.average_clips {avg!r}; use prob or score")
    pipe = mm.MMAction2SkeletonPipeline(
        clip_len=int(inp.get("clip_len", 100)), num_clips=int(inp.get("num_clips", 10)),
        num_person=int(inp.get("num_person", inp.get("num_persons", 2))),
        dataset=str(inp.get("dataset", mm.LAYOUT_TO_MM.get(layout, "coco"))),
        feats=tuple(_FEATS[str(f).lower()] for f in feats_raw), normalize=_NORMALIZE[norm_raw],
        img_shape=tuple(inp.get("img_shape", (1080, 1920))), seed=int(inp.get("seed", 255)))
    return pipe, avg


def build_zoo_skeleton_model(card: Any) -> tuple[mm.Recognizer, mm.MMAction2SkeletonPipeline, str]:
    """The network (random weights) and pipeline a skeleton card describes: ``(model, pipeline, layout)``."""
    if card.arch not in ARCHS:
        raise ZooCardError(f"model {card.name}: arch {card.arch!r} is not a zoo skeleton network "
                           f"({', '.join(ARCHS)})")
    if card.layout not in CHECKPOINT_LAYOUTS:
        raise ZooCardError(f"model {card.name}: checkpoint layout {card.layout!r}; the ST-GCN loader reads "
                           f"{', '.join(CHECKPOINT_LAYOUTS)}")
    kwargs = dict(card.arch_kwargs)
    graph = kwargs.get("graph_layout", "coco")
    layout = str(card.input.get("keypoint_layout", mm.MM_TO_LAYOUT.get(graph, graph)))
    if layout not in ("coco17", "ntu25"):
        raise ZooCardError(f"model {card.name}: input.keypoint_layout {layout!r}; use coco17 or ntu25")
    kwargs.setdefault("graph_layout", mm.LAYOUT_TO_MM[layout])
    pipe, avg = _pipeline(card, layout)
    kwargs.setdefault("in_channels", 3 * len(pipe.feats))
    num_classes = kwargs.pop("num_classes", card.num_classes)
    if num_classes is None:
        raise ZooCardError(f"model {card.name}: no num_classes (set the card's num_classes)")
    model = mm.build_recognizer(num_classes=int(num_classes), average_clips=avg, **kwargs)
    return model, pipe, layout


def load_zoo_skeleton(card: Any, files: dict[str, Path], *, device: str | torch.device = "cpu"
                      ) -> ZooSkeletonClassifier:
    """A ``task: skeleton`` card and its downloaded files (``{"weights": path}``) -> a classifier for
    ``recognize_track``; class names from ``models.label_map(card.labels)``."""
    from videoact import models

    model, pipe, layout = build_zoo_skeleton_model(card)
    if "weights" not in files:
        raise ZooCardError(f"model {card.name}: no weights file among {', '.join(files) or 'none'}")
    mm.load_checkpoint(model, files["weights"])
    classes = models.label_map(card.labels) if card.labels else ()
    k = model.cls_head.fc.out_features
    if len(classes) != k:
        raise ZooCardError(f"model {card.name}: label map {card.labels!r} has {len(classes)} names, the network "
                           f"{k} classes")
    return ZooSkeletonClassifier(model=model.to(device).eval(), classes=tuple(classes), pipeline=pipe,
                                 layout=layout, dims=2 if layout == "coco17" else 3, name=card.name,
                                 labels=card.labels, meta={"card": card.name, "weights": str(files["weights"])})
