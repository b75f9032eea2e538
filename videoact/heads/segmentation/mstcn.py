"""MS-TCN (Farha & Gall, "MS-TCN: Multi-Stage Temporal Convolutional Network for Action Segmentation", CVPR 2019).

A stage is a 1x1 projection, ``layers`` dilated residual layers (kernel 3, dilation ``2**i``, so the receptive
field doubles per layer: 2**(layers+1) - 1 steps), and a 1x1 classifier; every later stage refines the softmax of
the previous one. The loss sums over stages a cross-entropy and the **truncated MSE smoothing loss** over
log-probabilities of neighbouring steps, ``mean(clamp((log p_t - log p_{t-1}.detach())**2, 0, tau**2))`` with
``tau = 4`` and weight ``lambda = 0.15`` (yabufarha/ms-tcn ``model.py``), so over-segmentation is penalised but a
true boundary costs at most ``tau**2``.

Kept from the reference: layer and stage layout, dropout 0.5 inside the residual layers, masking of padded steps.
Different on purpose: the smoothing mean is over the valid (unpadded) positions only (the reference multiplies
by the mask and then averages over every position, so padding dilutes it in a batch of unequal lengths).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DilatedResidualLayer(nn.Module):
    """ReLU(dilated conv) -> 1x1 -> dropout, added to the input.  (B, C, T) -> (B, C, T)."""

    def __init__(self, dilation: int, channels: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # mask (B, 1, T)
        out = self.dropout(self.conv_1x1(F.relu(self.conv_dilated(x))))
        return (x + out) * mask


class SingleStage(nn.Module):
    """(B, D, T) features or probabilities -> (B, K, T) logits."""

    def __init__(self, layers: int, channels: int, in_dim: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(in_dim, channels, 1)
        self.layers = nn.ModuleList([DilatedResidualLayer(2**i, channels, dropout) for i in range(layers)])
        self.conv_out = nn.Conv1d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.conv_in(x)
        for layer in self.layers:
            out = layer(out, mask)
        return self.conv_out(out) * mask


class MSTCN(nn.Module):
    """Multi-stage TCN.  (B, D, T) features, (B, T) bool mask -> (stages, B, K, T) logits (the last is the output)."""

    def __init__(self, *, in_dim: int, num_classes: int, stages: int = 4, layers: int = 10, channels: int = 64,
                 dropout: float = 0.5, input_dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.input_dropout = nn.Dropout1d(input_dropout) if input_dropout else nn.Identity()
        self.stage1 = SingleStage(layers, channels, in_dim, num_classes, dropout)
        self.stages = nn.ModuleList([SingleStage(layers, channels, num_classes, num_classes, dropout)
                                     for _ in range(stages - 1)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(x.shape[0], x.shape[2], dtype=torch.bool, device=x.device)
        m = mask[:, None].to(x.dtype)  # (B, 1, T)
        # whole feature channels dropped (Dropout1d on (B, D, T)): features of training videos may come from a
        # backbone that saw them, so they are cleaner than at test time
        out = self.stage1(self.input_dropout(x), m)
        outputs = [out]
        for stage in self.stages:
            out = stage(F.softmax(out, dim=1) * m, m)
            outputs.append(out)
        return torch.stack(outputs)  # (S, B, K, T)

    def probabilities(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D, T) -> (B, K, T) softmax of the last stage."""
        return F.softmax(self.forward(x, mask)[-1], dim=1)


def smoothing_loss(logits: torch.Tensor, mask: torch.Tensor, *, tau: float = 4.0) -> torch.Tensor:
    """Truncated MSE over log-probabilities of neighbouring steps.  logits (B, K, T), mask (B, T) bool."""
    logp = F.log_softmax(logits, dim=1)
    diff = (logp[:, :, 1:] - logp.detach()[:, :, :-1]) ** 2  # (B, K, T-1)
    diff = diff.clamp(0, tau * tau)
    pair = (mask[:, 1:] & mask[:, :-1])[:, None].to(diff.dtype)  # both neighbours are real steps
    return (diff * pair).sum() / (pair.sum() * logits.shape[1]).clamp_min(1)


def mstcn_loss(outputs: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, *, tau: float = 4.0,
               smooth_weight: float = 0.15, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over stages of CE + ``smooth_weight`` * truncated MSE.  outputs (S, B, K, T), labels (B, T), mask (B, T)."""
    target = labels.masked_fill(~mask, -100)
    loss = outputs.new_zeros(())
    for logits in outputs:
        loss = loss + F.cross_entropy(logits, target, weight=class_weights, ignore_index=-100)
        loss = loss + smooth_weight * smoothing_loss(logits, mask, tau=tau)
    return loss
