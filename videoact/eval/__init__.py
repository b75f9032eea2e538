"""Official metrics over two ``Tables`` (ground truth, predictions), one module per task.

=========== ========================= ==============================================================
task        function                  reference it follows (default variant first)
=========== ========================= ==============================================================
ava         ``evaluate_ava``          ActivityNet ``get_ava_performance.py`` | mmaction2 ``ava_eval``
recognition ``evaluate_recognition``  mmaction2 ``evaluation/functional/accuracy.py``
lta         ``evaluate_lta``          EGO4D/forecasting ``evaluation/lta_metrics.py``
tad         ``evaluate_detection``    ActivityNet ``eval_detection.py`` | mmaction2 | THUMOS14 evalkit
tas         ``evaluate_segmentation`` yabufarha/ms-tcn ``eval.py``
=========== ========================= ==============================================================

Every function returns a JSON-able dict (NaN as ``None``); ``evaluate(task, gt, pred, **options)``
dispatches by task name through ``EVALUATORS`` (the names ``videoact eval`` accepts and lists).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from videoact.annotations.tables import Tables
from videoact.eval._common import EvalError, levenshtein
from videoact.eval.ava import evaluate_ava
from videoact.eval.detection import evaluate_detection
from videoact.eval.lta import aued, edit_distance, evaluate_lta
from videoact.eval.recognition import evaluate_recognition, ntu_subset
from videoact.eval.segmentation import evaluate_segmentation
from videoact.registry import Registry

# task name -> fn(gt, pred, **options) -> JSON-able dict
EVALUATORS: Registry[Callable[..., dict[str, Any]]] = Registry("evaluation task")
EVALUATORS.register("ava", evaluate_ava)
EVALUATORS.register("recognition", evaluate_recognition)
EVALUATORS.register("lta", evaluate_lta)
EVALUATORS.register("tad", evaluate_detection)
EVALUATORS.register("tas", evaluate_segmentation)


def evaluate(task: str, gt: Tables, pred: Tables, **options: Any) -> dict[str, Any]:
    """Score ``pred`` against ``gt`` with the official metric of ``task``; ``UnknownNameError`` (a ``KeyError``)
    lists the tasks of ``EVALUATORS``."""
    return EVALUATORS.get(task)(gt, pred, **options)


__all__ = [
    "EVALUATORS",
    "EvalError",
    "aued",
    "edit_distance",
    "evaluate",
    "evaluate_ava",
    "evaluate_detection",
    "evaluate_lta",
    "evaluate_recognition",
    "evaluate_segmentation",
    "levenshtein",
    "ntu_subset",
]
