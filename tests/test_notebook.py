"""``notebooks/explore_predictions.ipynb`` executes top to bottom (nbclient) on a real run, and saves its plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import videoact

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore_predictions.ipynb"
# name -> (width, height) in pixels: figsize * dpi as the notebook asks
EXPECTED = {"timeline.png": (1000, 400), "keyframes.png": (1200, 300), "confusion.png": (700, 600),
            "per_class_ap.png": (800, 600)}


@pytest.mark.slow
def test_notebook_runs_and_saves_its_plots(short_run: Path, shared_data: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    figures = tmp_path / "figures"
    # the kernel inherits the environment: the run, the output folder and the data folder
    monkeypatch.setenv("VIDEOACT_RUN", str(short_run))
    monkeypatch.setenv("VIDEOACT_FIGURES", str(figures))
    monkeypatch.setenv("VIDEOACT_SHARED_DATA", str(shared_data))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    # the kernel read the run and the folders it was given, not the notebook's defaults
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "".join(o.get("text", "") for o in code[0].outputs) == f"{short_run} -> {figures}\n"
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in code[1].outputs)  # the run's videos table
    assert all(v in shown for v in videoact.load(short_run).videos["video_id"]), shown
    for name, size in EXPECTED.items():
        path = figures / name
        assert path.is_file() and path.stat().st_size > 0, name
        img = np.asarray(Image.open(path).convert("RGB"))
        assert (img.shape[1], img.shape[0]) == size, name
        flat = img.reshape(-1, 3)
        colours, counts = np.unique(flat, axis=0, return_counts=True)
        assert (flat != colours[counts.argmax()]).any(axis=1).mean() > 0.01, f"{name} is blank"
    assert (figures / "overlay.mp4").stat().st_size > 10_000
    # the figures are also shown inline (not only saved)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4
