"""Joint layouts: joint names, skeleton graph, body parts, left/right pairs, and mappings between layouts.

A ``Layout`` is the single description of a skeleton that readers, pose backends, networks and plots share.
Joints are 0-based. ``edges`` are ``(child, parent)`` pairs pointing towards ``center`` (ST-GCN's "inward"
direction), so the parent of every joint (``parents``) is well defined and bones are ``x[j] - x[parent[j]]``.

Registered layouts (``LAYOUTS``)::

    kinect20     Kinect v1 SDK order: NW-UCLA, UTKinect-Action3D
    msr20        MSR Action3D real-world skeleton files (their own order, see body_model.mat)
    ntu25        Kinect v2: NTU RGB+D 60/120
    coco17       COCO keypoints: HRNet / RTMPose 2D poses, mmaction2/pyskl 2D pickles
    mediapipe33  MediaPipe BlazePose landmarks
    sbu15        SBU Kinect Interaction

``mapping(src, dst)`` is a ``(V_dst, V_src)`` matrix: each target joint is one source joint or the mean of a
few (e.g. Kinect "hip centre" = mean of MediaPipe's hips), so ``convert(x, src, dst)`` is one matmul and works
for coordinates and, with ``scores=True``, for confidences (a derived joint gets the *minimum* score of its
sources: it is only as good as its worst input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from videoact.registry import Registry


@dataclass(frozen=True)
class Layout:
    """A named skeleton: joints, inward edges ``(child, parent)``, centre joint, body parts, mirror pairs."""

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    parts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    mirror: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        v = len(self.joints)
        for a, b in self.edges:
            if not (0 <= a < v and 0 <= b < v) or a == b:
                raise ValueError(f"layout {self.name}: bad edge ({a}, {b}) for {v} joints")
        for part, idx in self.parts.items():
            if any(not 0 <= i < v for i in idx):
                raise ValueError(f"layout {self.name}: part {part!r} has a joint outside 0..{v - 1}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"layout {self.name} has no joint {joint!r}; joints: {', '.join(self.joints)}") from None

    @property
    def parents(self) -> np.ndarray:
        """``(V,)`` parent of each joint along the tree towards ``center`` (the centre is its own parent).

        Graphs with cycles (MediaPipe's face and feet) keep the first edge that reaches a joint in a
        breadth-first walk from the centre, which is a spanning tree.
        """
        v = self.num_joints
        nbrs: list[list[int]] = [[] for _ in range(v)]
        for a, b in self.edges:
            nbrs[a].append(b)
            nbrs[b].append(a)
        parent = np.full(v, -1, dtype=np.int64)
        parent[self.center] = self.center
        queue = [self.center]
        while queue:
            j = queue.pop(0)
            for k in nbrs[j]:
                if parent[k] < 0:
                    parent[k] = j
                    queue.append(k)
        # joints the graph does not reach (none in the registered layouts) hang off the centre
        parent[parent < 0] = self.center
        return parent

    def hop_distance(self) -> np.ndarray:
        """``(V, V)`` graph distance in edges (``inf`` when unreachable)."""
        v = self.num_joints
        a = np.eye(v, dtype=bool)
        for i, j in self.edges:
            a[i, j] = a[j, i] = True
        dist = np.full((v, v), np.inf)
        reach = np.eye(v, dtype=bool)
        dist[reach] = 0
        step = reach
        for d in range(1, v):
            step = (step.astype(np.int64) @ a.astype(np.int64)) > 0
            new = step & ~reach
            if not new.any():
                break
            dist[new] = d
            reach |= new
        return dist

    def adjacency(self, strategy: str = "spatial") -> np.ndarray:
        """``(K, V, V)`` normalised adjacency for graph convolution.

        ``spatial`` (ST-GCN's spatial configuration partition, as used by CTR-GCN / ST-GCN++): K=3 subsets:
        self links, inward (towards the centre) and outward, each column-normalised. ``uniform``: K=1,
        ``D^-1/2 (A + I) D^-1/2``.
        """
        v = self.num_joints
        eye = np.eye(v, dtype=np.float32)
        inward = np.zeros((v, v), np.float32)
        for child, parent in self.edges:
            inward[parent, child] = 1.0  # row = receiving joint, column = sending joint
        outward = inward.T.copy()
        if strategy == "spatial":
            return np.stack([eye, _norm_cols(inward), _norm_cols(outward)])
        if strategy == "uniform":
            a = np.clip(eye + inward + outward, 0, 1)
            d = a.sum(1) ** -0.5
            return (a * d[:, None] * d[None, :])[None]
        raise ValueError(f"unknown adjacency strategy {strategy!r}; use 'spatial' or 'uniform'")

    def mirror_permutation(self) -> np.ndarray:
        """``(V,)`` joint order of the left/right mirrored skeleton (for flip augmentation)."""
        perm = np.arange(self.num_joints)
        for a, b in self.mirror:
            perm[a], perm[b] = b, a
        return perm


def _norm_cols(a: np.ndarray) -> np.ndarray:
    deg = a.sum(0)
    return a / np.where(deg > 0, deg, 1.0)[None, :]


def _edges(pairs: list[tuple[int, int]], one_based: bool) -> tuple[tuple[int, int], ...]:
    off = 1 if one_based else 0
    return tuple((a - off, b - off) for a, b in pairs)


def _lr(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Mirror pairs from names: every ``left_*`` joint with its ``right_*`` twin."""
    out = []
    for i, n in enumerate(names):
        if n.startswith("left_"):
            twin = "right_" + n[5:]
            if twin in names:
                out.append((i, names.index(twin)))
    return tuple(out)


# ------------------------------------------------------------------------------------------------ layouts

_KINECT20_JOINTS = (
    "hip_center", "spine", "shoulder_center", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)  # fmt: skip
KINECT20 = Layout(
    name="kinect20",
    joints=_KINECT20_JOINTS,
    edges=_edges([(2, 1), (3, 2), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
                  (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)], one_based=True),
    center=0,  # hip centre: the edges point to it, as CTR-GCN's NW-UCLA graph
    parts={
        "torso": (0, 1, 2, 3),
        "left_arm": (2, 4, 5, 6, 7),
        "right_arm": (2, 8, 9, 10, 11),
        "left_leg": (0, 12, 13, 14, 15),
        "right_leg": (0, 16, 17, 18, 19),
    },
    mirror=_lr(_KINECT20_JOINTS),
)

# MSR Action3D real-world files: body_model.mat bones (1-based) 7-4, 4-3, 3-20, 3-1, 3-2, 1-8, 2-9, 8-10,
# 9-11, 10-12, 11-13, 7-5, 7-6, 5-14, 6-15, 14-16, 15-17, 16-18, 17-19; left_hip_index=5, right_hip_index=6.
_MSR20_JOINTS = (
    "left_shoulder", "right_shoulder", "shoulder_center", "spine", "left_hip", "right_hip", "hip_center",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot", "head",
)  # fmt: skip
MSR20 = Layout(
    name="msr20",
    joints=_MSR20_JOINTS,
    edges=_edges([(4, 7), (3, 4), (20, 3), (1, 3), (2, 3), (8, 1), (9, 2), (10, 8), (11, 9), (12, 10), (13, 11),
                  (5, 7), (6, 7), (14, 5), (15, 6), (16, 14), (17, 15), (18, 16), (19, 17)], one_based=True),
    center=6,  # hip centre: the edges point to it
    parts={
        "torso": (6, 3, 2, 19),
        "left_arm": (2, 0, 7, 9, 11),
        "right_arm": (2, 1, 8, 10, 12),
        "left_leg": (6, 4, 13, 15, 17),
        "right_leg": (6, 5, 14, 16, 18),
    },
    mirror=_lr(_MSR20_JOINTS),
)

_NTU25_JOINTS = (
    "spine_base", "spine_mid", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
    "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
)  # fmt: skip
NTU25 = Layout(
    name="ntu25",
    joints=_NTU25_JOINTS,
    edges=_edges([(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                  (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
                  (22, 23), (23, 8), (24, 25), (25, 12)], one_based=True),
    center=20,  # spine_shoulder, as ST-GCN
    parts={
        "torso": (0, 1, 20, 2, 3),
        "left_arm": (20, 4, 5, 6, 7, 21, 22),
        "right_arm": (20, 8, 9, 10, 11, 23, 24),
        "left_leg": (0, 12, 13, 14, 15),
        "right_leg": (0, 16, 17, 18, 19),
    },
    mirror=_lr(_NTU25_JOINTS),
)

_COCO17_JOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO17 = Layout(
    name="coco17",
    joints=_COCO17_JOINTS,
    edges=_edges([(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
                  (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)], one_based=False),
    center=0,  # nose, as pyskl's coco graph
    parts={
        "head": (0, 1, 2, 3, 4),
        "left_arm": (5, 7, 9),
        "right_arm": (6, 8, 10),
        "left_leg": (11, 13, 15),
        "right_leg": (12, 14, 16),
    },
    mirror=_lr(_COCO17_JOINTS),
)

_MEDIAPIPE33_JOINTS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky",
    "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
# MediaPipe's POSE_CONNECTIONS (which has cycles), plus nose-shoulder links so the graph is connected
MEDIAPIPE33 = Layout(
    name="mediapipe33",
    joints=_MEDIAPIPE33_JOINTS,
    edges=_edges([(1, 0), (2, 1), (3, 2), (7, 3), (4, 0), (5, 4), (6, 5), (8, 6), (10, 9), (9, 0), (11, 0),
                  (12, 0), (12, 11), (13, 11), (15, 13), (17, 15), (19, 15), (21, 15), (19, 17), (14, 12), (16, 14),
                  (18, 16), (20, 16), (22, 16), (20, 18), (23, 11), (24, 12), (24, 23), (25, 23), (26, 24),
                  (27, 25), (28, 26), (29, 27), (30, 28), (31, 29), (32, 30), (31, 27), (32, 28)], one_based=False),
    center=0,
    parts={
        "head": tuple(range(11)),
        "left_arm": (11, 13, 15, 17, 19, 21),
        "right_arm": (12, 14, 16, 18, 20, 22),
        "left_leg": (23, 25, 27, 29, 31),
        "right_leg": (24, 26, 28, 30, 32),
    },
    mirror=_lr(_MEDIAPIPE33_JOINTS),
)

# SBU Kinect Interaction: head, neck, torso, L shoulder, L elbow, L hand, R shoulder, R elbow, R hand,
# L hip, L knee, L foot, R hip, R knee, R foot
_SBU15_JOINTS = (
    "head", "neck", "torso", "left_shoulder", "left_elbow", "left_hand", "right_shoulder", "right_elbow",
    "right_hand", "left_hip", "left_knee", "left_foot", "right_hip", "right_knee", "right_foot",
)  # fmt: skip
SBU15 = Layout(
    name="sbu15",
    joints=_SBU15_JOINTS,
    edges=_edges([(0, 1), (1, 2), (3, 1), (4, 3), (5, 4), (6, 1), (7, 6), (8, 7), (9, 2), (10, 9), (11, 10),
                  (12, 2), (13, 12), (14, 13)], one_based=False),
    center=2,
    parts={
        "torso": (0, 1, 2),
        "left_arm": (1, 3, 4, 5),
        "right_arm": (1, 6, 7, 8),
        "left_leg": (2, 9, 10, 11),
        "right_leg": (2, 12, 13, 14),
    },
    mirror=_lr(_SBU15_JOINTS),
)

LAYOUTS: Registry[Layout] = Registry("joint layout")
for _layout in (KINECT20, MSR20, NTU25, COCO17, MEDIAPIPE33, SBU15):
    LAYOUTS.register(_layout.name, _layout)


def get_layout(layout: str | Layout) -> Layout:
    """A layout by name (or itself); ``UnknownNameError`` (a ``KeyError``) lists the registered ones."""
    if isinstance(layout, Layout):
        return layout
    return LAYOUTS.get(layout)


# ------------------------------------------------------------------------------------------------ mappings

# target joint -> source joints averaged (names). Only non-identity entries are spelled out; joints with the
# same name in both layouts map one to one.
_DERIVED: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("mediapipe33", "kinect20"): {
        "hip_center": ("left_hip", "right_hip"),
        "spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "shoulder_center": ("left_shoulder", "right_shoulder"),
        "head": ("left_ear", "right_ear"),
        "left_hand": ("left_pinky", "left_index"),
        "right_hand": ("right_pinky", "right_index"),
        "left_foot": ("left_foot_index",),
        "right_foot": ("right_foot_index",),
    },
    ("mediapipe33", "ntu25"): {
        "spine_base": ("left_hip", "right_hip"),
        "spine_mid": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "spine_shoulder": ("left_shoulder", "right_shoulder"),
        "neck": ("left_shoulder", "right_shoulder", "left_ear", "right_ear"),
        "head": ("left_ear", "right_ear"),
        "left_hand": ("left_pinky", "left_index"),
        "right_hand": ("right_pinky", "right_index"),
        "left_hand_tip": ("left_index",),
        "right_hand_tip": ("right_index",),
        "left_foot": ("left_foot_index",),
        "right_foot": ("right_foot_index",),
    },
    ("mediapipe33", "coco17"): {},
    ("ntu25", "kinect20"): {
        "hip_center": ("spine_base",),
        "spine": ("spine_mid",),
        "shoulder_center": ("spine_shoulder",),
    },
    ("kinect20", "ntu25"): {
        "spine_base": ("hip_center",),
        "spine_mid": ("spine",),
        "spine_shoulder": ("shoulder_center",),
        "neck": ("shoulder_center", "head"),
        "left_hand_tip": ("left_hand",),
        "left_thumb": ("left_hand",),
        "right_hand_tip": ("right_hand",),
        "right_thumb": ("right_hand",),
    },
    ("msr20", "kinect20"): {},
    ("kinect20", "msr20"): {},
    ("coco17", "kinect20"): {
        "hip_center": ("left_hip", "right_hip"),
        "spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "shoulder_center": ("left_shoulder", "right_shoulder"),
        "head": ("left_ear", "right_ear"),
        "left_hand": ("left_wrist",),
        "right_hand": ("right_wrist",),
        "left_foot": ("left_ankle",),
        "right_foot": ("right_ankle",),
    },
    ("ntu25", "coco17"): {
        "nose": ("head",),
        "left_eye": ("head",),
        "right_eye": ("head",),
        "left_ear": ("head",),
        "right_ear": ("head",),
    },
}


def mapping(src: str | Layout, dst: str | Layout) -> np.ndarray:
    """``(V_dst, V_src)`` averaging matrix from ``src`` joints to ``dst`` joints (rows sum to 1)."""
    s, d = get_layout(src), get_layout(dst)
    if s.name == d.name:
        return np.eye(s.num_joints, dtype=np.float32)
    if (s.name, d.name) not in _DERIVED:
        known = ", ".join(f"{a}->{b}" for a, b in _DERIVED)
        raise KeyError(f"no joint mapping from {s.name} to {d.name}; known: {known}")
    derived = _DERIVED[(s.name, d.name)]
    m = np.zeros((d.num_joints, s.num_joints), np.float32)
    for i, joint in enumerate(d.joints):
        sources = derived.get(joint, (joint,))
        for name in sources:
            m[i, s.index(name)] = 1.0 / len(sources)
    return m


def convert(x: np.ndarray, src: str | Layout, dst: str | Layout, *, scores: bool = False) -> np.ndarray:
    """Map joints on axis -2 (``(..., V_src, C) -> (..., V_dst, C)``); ``scores=True``: ``(..., V)`` confidences."""
    m = mapping(src, dst)
    x = np.asarray(x)
    if scores:
        if x.shape[-1] != m.shape[1]:
            raise ValueError(f"scores have {x.shape[-1]} joints, layout {get_layout(src).name} has {m.shape[1]}")
        # a derived joint is only as confident as its least confident source
        masked = np.where(m[None] > 0, x.reshape(-1, 1, m.shape[1]), np.inf)
        return masked.min(-1).reshape(*x.shape[:-1], m.shape[0]).astype(x.dtype)
    if x.shape[-2] != m.shape[1]:
        raise ValueError(f"keypoints have {x.shape[-2]} joints, layout {get_layout(src).name} has {m.shape[1]}")
    return np.einsum("ds,...sc->...dc", m, x).astype(x.dtype)
