"""Late-fusion ensemble of four residual temporal 1D-CNN subnets (``cnn1d_ensemble``).

A skeleton sequence is read as a multichannel 1D signal over time: the ``V * C`` joint coordinates of a frame
are its channels (joint-major: channel ``v * C + c``). Four subnets read the same joints differently and vote:

* ``two_stream``: one 1D-CNN over joint coordinates and one over bones (``x[v] - x[parent(v)]``), their pooled
  features concatenated before one classifier. Bones rather than joint motion, because motion has its own subnet.
* ``body_part``: one small 1D-CNN per body part of the layout (``layout.parts``), pooled features concatenated.
  A part sees the coordinates of its joints only, so each branch models one limb's trajectory.
* ``attention``: input-conditioned joint attention (softmax over joints, scaled so the mean weight is 1) re-weights
  each joint's channels, then a 1D-CNN whose features are pooled over time with learned temporal attention
  instead of the mean. Both attentions start uniform (zero-initialised last layers), so at initialisation this
  subnet is a plain 1D-CNN and attention is learnt only where it helps.
* ``frame_difference``: a 1D-CNN over frame differences ``x[t+1] - x[t]``; blind to where the body is, it sees
  only how it moves (adding a constant offset to every frame leaves its output unchanged).

Every 1D-CNN is the same residual stack (:class:`TemporalResNet`): input BatchNorm over the channels (ST-GCN's
``data_bn``: coordinates differ in scale per axis and per dataset, metres vs pixels), a Conv1d-BN-ReLU stem, then
one stage per width of ResNet basic blocks (two Conv1d-BN, ReLU, identity or 1x1-conv skip); every stage after the
first halves time with a stride-2 first block. Each subnet ends in global pooling over time, a mean over persons,
dropout and a linear classifier.

Choices where the design is open:

* **Persons** are folded into the batch; a subnet's pooled features are averaged over the persons *present*
  (a person whose coordinates are all zero is padding, as in NTU's 2-person arrays, and is left out; a sample with
  nobody present averages all). So the output does not depend on the person order or on zero padding, and the
  weights do not depend on ``M``: ``num_persons`` is accepted for the shared builder signature only.
* **Fusion** (``fusion="prob"``, default): the fused output is ``log(mean_s softmax(z_s))``, so ``softmax`` of it is
  exactly the average of the subnets' probabilities and its argmax is the ensemble vote; it is a log-probability,
  usable wherever logits are. ``fusion="logit"`` averages the logits instead.
* **Training** sums the per-subnet cross-entropies (``forward(x, return_all=True)`` -> ``(S, N, K)``, then
  :func:`ensemble_loss`), so each subnet learns as a standalone classifier and the fusion has no weights.
* Frames are pooled by a plain mean (attention subnet: attention), zero-padded frames included; resample or crop
  sequences to their real length upstream if padding is long.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from videoact.features.skeleton.layouts import Layout, get_layout
from videoact.features.skeleton.modalities import bones, motion, person_weights
from videoact.features.skeleton.registry import register_model

SUBNETS = ("two_stream", "body_part", "attention", "frame_difference")
FUSIONS = ("prob", "logit")


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) -> (N * M, V * C, T): persons into the batch, joints x coordinates into channels."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)



class ResBlock1d(nn.Module):
    """ResNet basic block over time: (B, C_in, T) -> (B, C_out, ceil(T / stride))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, stride, pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, 1, pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm1d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class TemporalResNet(nn.Module):
    """Residual 1D-CNN: (B, C_in, T) -> (B, widths[-1], T'), T' = ceil(T / 2 ** (len(widths) - 1))."""

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        *,
        blocks_per_stage: int = 1,
        kernel_size: int = 5,
        input_norm: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        if not widths or blocks_per_stage < 1:
            raise ValueError(f"need at least one stage and one block per stage, got {widths=}, {blocks_per_stage=}")
        self.data_bn = nn.BatchNorm1d(in_channels) if input_norm else nn.Identity()
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, widths[0], kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        prev = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks_per_stage):
                blocks.append(ResBlock1d(prev, w, kernel_size, stride=2 if i > 0 and b == 0 else 1))
                prev = w
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(self.data_bn(x)))


class _Subnet(nn.Module):
    """Per-person features -> mean over present persons -> dropout -> linear classifier."""

    def __init__(self, out_features: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(out_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N * M, F) pooled over time."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M), person weights (N, M) -> logits (N, K)."""
        f = self.features(x)  # (N * M, F)
        f = (f.view(*weights.shape, -1) * weights[..., None]).sum(1)  # (N, F)
        return self.fc(self.drop(f))


class TwoStreamSubnet(_Subnet):
    """Joints and bones, one 1D-CNN each, features concatenated before the classifier."""

    def __init__(
        self, layout: Layout, in_channels: int, num_classes: int, widths: Sequence[int], dropout: float, **cnn: int
    ) -> None:
        ch = layout.num_joints * in_channels
        joint, bone = TemporalResNet(ch, widths, **cnn), TemporalResNet(ch, widths, **cnn)
        super().__init__(joint.out_channels + bone.out_channels, num_classes, dropout)
        self.layout, self.joint, self.bone = layout, joint, bone

    def features(self, x: torch.Tensor) -> torch.Tensor:
        j = self.joint(_flatten(x)).mean(-1)
        b = self.bone(_flatten(bones(x, self.layout))).mean(-1)
        return torch.cat([j, b], 1)


class BodyPartSubnet(_Subnet):
    """One small 1D-CNN per body part over that part's joints; features concatenated."""

    def __init__(
        self, layout: Layout, in_channels: int, num_classes: int, widths: Sequence[int], dropout: float, **cnn: int
    ) -> None:
        if not layout.parts:
            raise ValueError(f"layout {layout.name} defines no body parts; drop 'body_part' from subnets")
        branches = {name: TemporalResNet(len(idx) * in_channels, widths, **cnn) for name, idx in layout.parts.items()}
        super().__init__(sum(b.out_channels for b in branches.values()), num_classes, dropout)
        self.branches = nn.ModuleDict(branches)
        for name, idx in layout.parts.items():
            self.register_buffer(f"joints_{name}", torch.tensor(idx, dtype=torch.long), persistent=False)

    def part_features(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """(N, C, T, V, M) -> (N * M, F_part): one part's branch."""
        idx = getattr(self, f"joints_{name}")
        return self.branches[name](_flatten(x[:, :, :, idx])).mean(-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.part_features(x, name) for name in self.branches], 1)


class AttentionSubnet(_Subnet):
    """Joint attention on the input channels, a 1D-CNN, and attention pooling over time."""

    def __init__(
        self, layout: Layout, in_channels: int, num_classes: int, widths: Sequence[int], dropout: float, **cnn: int
    ) -> None:
        v = layout.num_joints
        ch = v * in_channels
        # the CNN gets already-normalised channels: the joint attention reads them too
        cnn_net = TemporalResNet(ch, widths, input_norm=False, **cnn)
        f = cnn_net.out_channels
        super().__init__(f, num_classes, dropout)
        self.in_channels, self.cnn = in_channels, cnn_net
        self.data_bn = nn.BatchNorm1d(ch)
        # joint scores from each channel's mean and spread over time (where a joint is, how much it moves)
        self.joint_att = nn.Sequential(nn.Linear(2 * ch, max(16, ch // 2)), nn.ReLU(), nn.Linear(max(16, ch // 2), v))
        self.temporal_att = nn.Sequential(nn.Conv1d(f, max(8, f // 4), 1), nn.Tanh(), nn.Conv1d(max(8, f // 4), 1, 1))
        for last in (self.joint_att[-1], self.temporal_att[-1]):  # uniform attention at initialisation
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def _attend(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, C, T, V, M) -> features (B, F, T'), joint weights (B, V), temporal weights (B, T'); B = N * M."""
        h = self.data_bn(_flatten(x))  # (B, V * C, T)
        stats = torch.cat([h.mean(-1), h.std(-1, unbiased=False)], 1)  # (B, 2 * V * C)
        joint_w = self.joint_att(stats).softmax(-1) * x.shape[3]  # (B, V), mean 1
        h = self.cnn(h * joint_w.repeat_interleave(self.in_channels, 1)[..., None])  # (B, F, T')
        temporal_w = self.temporal_att(h).squeeze(1).softmax(-1)  # (B, T')
        return h, joint_w, temporal_w

    def attention_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, T, V, M) -> joint weights (N, M, V) (mean 1) and temporal weights (N, M, T') (sum 1)."""
        n, m = x.shape[0], x.shape[-1]
        _, joint_w, temporal_w = self._attend(x)
        return joint_w.view(n, m, -1), temporal_w.view(n, m, -1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h, _, temporal_w = self._attend(x)
        return (h * temporal_w[:, None]).sum(-1)


class FrameDifferenceSubnet(_Subnet):
    """A 1D-CNN over frame differences (joint motion)."""

    def __init__(
        self, layout: Layout, in_channels: int, num_classes: int, widths: Sequence[int], dropout: float, **cnn: int
    ) -> None:
        net = TemporalResNet(layout.num_joints * in_channels, widths, **cnn)
        super().__init__(net.out_channels, num_classes, dropout)
        self.cnn = net

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(_flatten(motion(x))).mean(-1)


_SUBNET_CLASSES: dict[str, type[_Subnet]] = {
    "two_stream": TwoStreamSubnet,
    "body_part": BodyPartSubnet,
    "attention": AttentionSubnet,
    "frame_difference": FrameDifferenceSubnet,
}


class CNN1DEnsemble(nn.Module):
    """Four residual 1D-CNN subnets, late fusion: (N, C, T, V, M) -> (N, num_classes) fused logits."""

    def __init__(
        self,
        layout: str | Layout,
        num_classes: int,
        in_channels: int = 3,
        num_persons: int = 1,
        *,
        widths: Sequence[int] = (32, 64, 128),
        part_widths: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 1,
        kernel_size: int = 5,
        dropout: float = 0.0,
        fusion: str = "prob",
        subnets: Sequence[str] = SUBNETS,
    ) -> None:
        super().__init__()
        lay = get_layout(layout)
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; use one of {FUSIONS}")
        unknown = [s for s in subnets if s not in _SUBNET_CLASSES]
        if unknown or not subnets or len(set(subnets)) != len(subnets):
            raise ValueError(f"subnets must be distinct names from {SUBNETS}, got {tuple(subnets)}")
        self.layout, self.in_channels, self.num_persons, self.fusion = lay, in_channels, num_persons, fusion
        self.num_classes = num_classes
        cnn = {"blocks_per_stage": blocks_per_stage, "kernel_size": kernel_size}
        self.subnets = nn.ModuleDict(
            {
                name: _SUBNET_CLASSES[name](
                    lay, in_channels, num_classes, part_widths if name == "body_part" else widths, dropout, **cnn
                )
                for name in subnets
            }
        )

    @property
    def subnet_names(self) -> list[str]:
        return list(self.subnets)

    def fuse(self, logits: torch.Tensor) -> torch.Tensor:
        """(S, N, K) per-subnet logits -> (N, K): log of the mean probability (``prob``) or mean logit."""
        if self.fusion == "logit":
            return logits.mean(0)
        return torch.logsumexp(logits.log_softmax(-1), 0) - math.log(logits.shape[0])

    def stream_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-subnet logits (S, N, K): the trainer sums a cross-entropy over them (``train.skeleton``)."""
        return self.forward(x, return_all=True)

    def forward(self, x: torch.Tensor, return_all: bool = False) -> torch.Tensor:
        """(N, C, T, V, M) -> fused (N, K); ``return_all=True``: per-subnet logits (S, N, K), order ``subnet_names``."""
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[3] != self.layout.num_joints:
            raise ValueError(
                f"expected (N, C={self.in_channels}, T, V={self.layout.num_joints}, M) joints of layout "
                f"{self.layout.name}, got shape {tuple(x.shape)}"
            )
        w = person_weights(x)  # (N, M)
        logits = torch.stack([net(x, w) for net in self.subnets.values()])  # (S, N, K)
        return logits if return_all else self.fuse(logits)


def ensemble_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Sum over subnets of each subnet's mean cross-entropy: (S, N, K) logits, (N,) labels -> scalar."""
    s = logits.shape[0]
    ce = F.cross_entropy(logits.flatten(0, 1), target.repeat(s), label_smoothing=label_smoothing)
    return ce * s


@register_model
def build_cnn1d_ensemble(
    *,
    layout: str,
    num_classes: int,
    in_channels: int = 3,
    num_persons: int = 1,
    widths: Sequence[int] = (32, 64, 128),
    part_widths: Sequence[int] = (16, 32, 64),
    blocks_per_stage: int = 1,
    kernel_size: int = 5,
    dropout: float = 0.0,
    fusion: str = "prob",
    subnets: Sequence[str] = SUBNETS,
) -> CNN1DEnsemble:
    """Four-subnet 1D-CNN ensemble; defaults: about 1.0M parameters (kinect20, 10 classes)."""
    return CNN1DEnsemble(
        layout,
        num_classes,
        in_channels,
        num_persons,
        widths=widths,
        part_widths=part_widths,
        blocks_per_stage=blocks_per_stage,
        kernel_size=kernel_size,
        dropout=dropout,
        fusion=fusion,
        subnets=subnets,
    )
