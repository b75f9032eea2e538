"""MAC counting for the benchmarks: torch's FLOP counter plus the fused-attention ops it misses.

torch 2.14's CPU flash attention (``aten._scaled_dot_product_flash_attention_for_cpu``, what
``F.scaled_dot_product_attention`` runs on CPU) has no formula in ``torch.utils.flop_counter``, so the N²
attention MACs of every transformer block would count 0. ``mac_counter()`` adds the SDPA formula for it.

    with mac_counter() as c:
        model(x)
    gmacs = c.get_total_flops() / 2e9
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils import flop_counter


def _missing_attention_formulas() -> dict[Any, Any]:
    packet = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if packet is None or packet in flop_counter.flop_registry:
        return {}

    def sdpa(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
             **kwargs: Any) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    return {packet: sdpa}


def mac_counter() -> flop_counter.FlopCounterMode:
    """A ``FlopCounterMode`` (no display) that also counts CPU fused attention; MACs = flops / 2."""
    return flop_counter.FlopCounterMode(display=False, custom_mapping=_missing_attention_formulas())
