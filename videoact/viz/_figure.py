"""Figures without pyplot: an Agg canvas per figure, so plots work headless and never pop up windows."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float], dpi: int) -> Figure:
    """A figure on its own Agg canvas (no global pyplot state; notebooks display it like any figure)."""
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def finish(fig: Figure, save: str | Path | None) -> Figure:
    """Write the PNG when asked: exactly ``figsize * dpi`` pixels (no tight bbox, so sizes are predictable)."""
    if save is not None:
        save = Path(save)
        save.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, format="png", dpi=fig.dpi)
    return fig
