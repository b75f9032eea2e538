"""NTU RGB+D 60/120 raw ``.skeleton`` files (Kinect v2 SDK dumps) and the official missing-skeleton lists.

Format (``../shared/specs/evaluation.md`` §2; shahroudy/NTURGB-D ``Matlab/read_skeleton_file.m``), CRLF text::

    <num_frames>
    per frame:  <num_bodies>                      (0 is allowed: nobody tracked in that frame)
      per body: bodyID clipedEdges handLeftConfidence handLeftState handRightConfidence handRightState
                isResticted leanX leanY trackingState                                  (10 values)
                <num_joints> = 25
                25 lines: x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState

``read_ntu_skeleton`` tracks bodies by ``bodyID`` (not by slot order within a frame, which is what mmaction2's
``read_xyz`` does and which swaps people when the SDK reorders them). Frames where a body is absent stay zeros,
and so do frames with no body at all (T is always the file's frame count). With more than ``max_bodies``
tracked bodies it keeps those that move most: sum over joints and coordinates of the variance over the frames
where the body is present (pyskl's ranking; no pyskl/mmaction2 denoising is applied). Kept bodies are ordered
by that motion, most first. A file without any body gives ``M = 0``.

``coords`` picks the per-joint values: ``"xyz"`` camera space in metres (C=3), ``"depth"`` pixels of the
512x424 depth frame or ``"color"`` pixels of the 1920x1080 RGB frame (C=2). The joint ``trackingState``
(0 not tracked, 1 inferred, 2 tracked) is kept as ``meta["tracking_state"]`` (M, T, V) uint8; ``scores`` is
None. The name ``SsssCcccPpppRrrrAaaa`` gives ``label = A - 1``, ``subject = P``, ``view = C``; a file whose
name is not an NTU name is still read, with those left None.

Real files (``../shared/data/skeleton/ntu/skeletons``, 3 files; the spec mentions 5): CRLF, one body in every
frame (82, 100 and 124 frames), nothing after the last frame but the final CRLF; so multi-body and
empty-frame handling is tested on files built from the format. The official missing lists start with a
3-line header (302 names for NTU60, 535 for NTU120); the CTR-GCN statistics copies have no header.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from videoact.annotations.formats._common import FormatError, read_text
from videoact.annotations.formats.skeleton_pickle import NTU_FPS, ntu_split, parse_ntu_name
from videoact.datasets.skeleton._sample import SkeletonSample, parse_numbers

__all__ = [
    "NTU60_CLASSES",
    "NTU120_CLASSES",
    "ntu_split",
    "parse_ntu_name",
    "read_ntu_missing",
    "read_ntu_skeleton",
]

NTU_JOINTS = 25
_COORDS = {"xyz": slice(0, 3), "depth": slice(3, 5), "color": slice(5, 7)}
_NAME_LINE = re.compile(r"S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}")
_HEADER_LINES = 3  # official lists: two sentences and a blank line

# label_map_nturgbd_120.txt, id = A - 1; NTU60 is the first 60 (label_map_ntu60.txt is the same prefix)
NTU120_CLASSES: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw", "sitting down",
    "standing up (from sitting position)", "clapping", "reading", "writing", "tear up paper", "wear jacket",
    "take off jacket", "wear a shoe", "take off a shoe", "wear on glasses", "take off glasses", "put on a hat/cap",
    "take off a hat/cap", "cheer up", "hand waving", "kicking something", "reach into pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone", "playing with phone/tablet",
    "typing on a keyboard", "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute", "put the palms together",
    "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person", "giving something to other person",
    "touch other person's pocket", "handshaking", "walking towards each other", "walking apart from each other",
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball", "tennis bat swing",
    "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up", "thumb down", "make ok sign",
    "make victory sign", "staple book", "counting money", "cutting nails", "cutting paper (using scissors)",
    "snapping fingers", "open bottle", "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper",
    "play magic cube", "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects", "shake fist",
    "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles", "arm swings", "running on the spot",
    "butt kicks (kick backward)", "cross toe touch", "side kick", "yawn", "stretch oneself", "blow nose",
    "hit other person with something", "wield knife towards other person",
    "knock over other person (hit with body)", "grab other person’s stuff", "shoot at other person with a gun",
    "step on foot", "high-five", "cheers and drink", "carry something with other person",
    "take a photo of other person", "follow other person", "whisper in other person’s ear",
    "exchange things with other person", "support somebody with hand",
    "finger-guessing game (playing rock-paper-scissors)",
)  # fmt: skip
NTU60_CLASSES: tuple[str, ...] = NTU120_CLASSES[:60]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_ntu_skeleton(path: str | Path, *, max_bodies: int = 2, coords: str = "xyz") -> SkeletonSample:
    """One raw ``.skeleton`` file as a ``(M, T, 25, C)`` sample, layout ``ntu25``, M <= ``max_bodies``.

    Raises:
        FormatError: truncated or garbled file (names the line).
    """
    path = Path(path)
    if coords not in _COORDS:
        raise ValueError(f"coords must be one of {', '.join(_COORDS)}, got {coords!r}")
    if max_bodies < 1:
        raise ValueError(f"max_bodies must be >= 1, got {max_bodies}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NTU .skeleton file")
    lines = read_text(path).split("\n")
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1  # the final CRLF leaves one empty string

    def need(i: int, count: int, what: str) -> None:
        if i + count > end:
            raise FormatError(path, min(i, end) + 1, f"file ends while reading {what}: truncated file?")

    def int_line(i: int, what: str) -> int:
        need(i, 1, what)
        try:
            value = int(lines[i])
        except ValueError:
            raise FormatError(path, i + 1, f"{what} must be one integer, got {lines[i].strip()!r}") from None
        if value < 0:
            raise FormatError(path, i + 1, f"{what} must be >= 0, got {value}")
        return value

    n_frames = int_line(0, "the frame count")
    bodies_per_frame = np.zeros(n_frames, dtype=np.int64)
    tracks: dict[str, list[tuple[int, int]]] = {}  # bodyID -> [(frame, block number)]
    starts: list[int] = []  # 0-based line of each block's first joint
    i = 1
    for t in range(n_frames):
        where = f"frame {t + 1} of {n_frames}"
        nb = int_line(i, f"the body count of {where}")
        bodies_per_frame[t] = nb
        i += 1
        seen: set[str] = set()
        for b in range(nb):
            need(i, 1, f"body {b + 1} of {where}")
            parts = lines[i].split()
            if len(parts) != 10 or not parts[0].isdigit():
                raise FormatError(
                    path, i + 1, f"body line of {where} must be bodyID + 9 values, got {lines[i].strip()!r}"
                )
            if not all(_is_number(x) for x in parts[1:]):
                raise FormatError(path, i + 1, f"body line of {where} has a non-number: {lines[i].strip()!r}")
            if parts[0] in seen:
                raise FormatError(path, i + 1, f"bodyID {parts[0]} appears twice in {where}")
            seen.add(parts[0])
            nj = int_line(i + 1, f"the joint count of body {b + 1} in {where}")
            if nj != NTU_JOINTS:
                raise FormatError(path, i + 2, f"expected {NTU_JOINTS} joints (Kinect v2), got {nj}")
            need(i + 2, NTU_JOINTS, f"the joints of body {b + 1} in {where}")
            tracks.setdefault(parts[0], []).append((t, len(starts)))
            starts.append(i + 2)
            i += 2 + NTU_JOINTS
    if i < end:
        raise FormatError(path, i + 1, f"unexpected content after the last of {n_frames} frames: {lines[i].strip()!r}")

    joint_lines = [lines[s + k] for s in starts for k in range(NTU_JOINTS)]
    try:
        values = parse_numbers(path, joint_lines, 12)  # (blocks * 25, 12)
    except FormatError:
        for s in starts:  # re-parse block by block: the error then names the real line
            parse_numbers(path, lines[s : s + NTU_JOINTS], 12, first_line=s + 1)
        raise
    values = values.reshape(len(starts), NTU_JOINTS, 12)

    ids = list(tracks)  # first-appearance order
    motion = []
    for bid in ids:
        xyz = values[[blk for _, blk in tracks[bid]], :, 0:3]  # (frames present, 25, 3)
        motion.append(float(xyz.var(axis=0).sum()))
    order = sorted(range(len(ids)), key=lambda k: (-motion[k], k))
    kept, dropped = order[:max_bodies], order[max_bodies:]

    sl = _COORDS[coords]
    c = sl.stop - sl.start
    kp = np.zeros((len(kept), n_frames, NTU_JOINTS, c), dtype=np.float32)  # (M, T, V, C)
    state = np.zeros((len(kept), n_frames, NTU_JOINTS), dtype=np.uint8)  # (M, T, V)
    for m, k in enumerate(kept):
        ts = [t for t, _ in tracks[ids[k]]]
        blocks = values[[blk for _, blk in tracks[ids[k]]]]
        kp[m, ts] = blocks[..., sl]
        state[m, ts] = blocks[..., 11]

    name = path.name.split(".")[0]
    try:
        info: dict[str, int] | None = parse_ntu_name(name)
    except ValueError:
        info = None
    meta = {
        "coords": coords,
        "body_ids": [int(ids[k]) for k in kept],
        "motion": [motion[k] for k in kept],
        "dropped_body_ids": [int(ids[k]) for k in dropped],
        "bodies_per_frame": bodies_per_frame,
        "tracking_state": state,
    }
    if info is not None:
        meta.update(setup=info["setup"], replication=info["replication"])
    return SkeletonSample(
        name=name,
        keypoints=kp,
        layout="ntu25",
        label=info["action"] - 1 if info else None,
        fps=NTU_FPS,
        subject=info["performer"] if info else None,
        view=info["camera"] if info else None,
        meta=meta,
    )


def read_ntu_missing(path: str | Path) -> set[str]:
    """Sample names of an NTU missing-skeleton list: the official file (3-line header) or a plain list.

    Raises:
        FormatError: a line after the header that is not an ``SsssCcccPpppRrrrAaaa`` name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such missing-skeleton list")
    names: set[str] = set()
    for i, line in enumerate(read_text(path).splitlines()):
        text = line.strip()
        if _NAME_LINE.fullmatch(text):
            names.add(text)
        elif text and (names or i >= _HEADER_LINES):
            raise FormatError(path, i + 1, f"expected an NTU sample name (SsssCcccPpppRrrrAaaa), got {text!r}")
    if not names:
        raise FormatError(path, None, "no NTU sample names in the file")
    return names
