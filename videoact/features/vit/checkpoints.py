"""Load VideoMAE and mmaction2 ViT checkpoints into ``VideoViT`` (and write ours in their layouts).

Three key layouts, one renaming function each way:

* ``videomae`` — MCG-NJU/VideoMAE ``modeling_finetune.py``: ``patch_embed.proj``, ``blocks.N.attn.qkv.weight``
  with separate ``q_bias`` / ``v_bias`` (no k bias), ``blocks.N.mlp.fc1/fc2``, ``blocks.N.gamma_1/2`` (layer
  scale), ``fc_norm``, ``head``; wrapped in ``{"model": ...}`` or ``{"module": ...}``. Pretraining checkpoints
  carry an ``encoder.`` prefix and decoder keys (dropped, as VideoMAE's fine-tuning does). The sin-cos table
  is not in the state dict (a plain tensor attribute there).
* ``mmaction2`` — ``mmaction/models/backbones/vit_mae.py`` ``VisionTransformer`` in a ``Recognizer3D``:
  ``backbone.patch_embed.projection``, ``backbone.blocks.N.attn.{qkv.weight,q_bias,v_bias}``,
  ``backbone.blocks.N.mlp.layers.0.0`` / ``mlp.layers.1`` (mmcv ``FFN``), ``backbone.fc_norm``,
  ``cls_head.fc_cls``; ``{"state_dict": ..., "meta": ...}``. Its sin-cos table *is* stored
  (``backbone.pos_embed``, a persistent buffer).
* ``hf_videomae`` — Hugging Face transformers' ``VideoMAEForVideoClassification``: ``config.json`` beside
  ``model.safetensors`` (or ``pytorch_model.bin``); ``videomae.embeddings.patch_embeddings.projection``,
  ``videomae.encoder.layer.N.attention.attention.{query,key,value}`` (separate weights; the q / v biases as
  ``q_bias`` / ``v_bias`` in files written before transformers 5, as ``query.bias`` / ``value.bias`` after),
  ``attention.output.dense``, ``layernorm_before`` / ``layernorm_after``, ``intermediate.dense``,
  ``output.dense``, ``fc_norm``, ``classifier``. The network is built from the config (``build_hf_videomae``),
  with transformers' LayerNorm epsilons (the blocks' ``layer_norm_eps``, 1e-12 by default; ``fc_norm``
  PyTorch's 1e-5), so logits match transformers'. ``load_hf_videomae`` reads both files.
* ``videoact`` — ``VideoViT.state_dict()`` (timm names: ``blocks.N.attn.qkv.bias`` holds q, k and v biases).

The k bias: VideoMAE and mmaction2 have none, ours is timm's full qkv bias. Importing writes zeros there.
Exporting drops it, which changes no output: adding a constant vector to every key adds ``q · b_k`` to all
logits of a query alike, and softmax ignores that (it would matter only with a qk-norm, which these models do
not have). So a round trip ours -> theirs -> ours gives the same outputs and a zero k bias.

A fixed sin-cos table is verified against ours when a checkpoint stores one (and then skipped); a learned
table is loaded, resized bicubically per temporal slice when the checkpoint's spatial grid differs.

Sources: a local path, an ``http(s)://`` / ``file://`` URL (downloaded once into the torch hub cache), a
``hf-hub:OWNER/REPO/FILE`` id, or a model-zoo name (``videoact models list``; fetched and verified by
``videoact.models.hub``). Nothing is downloaded in the tests; without network the download fails with an error
that says where to put the file instead.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from videoact.annotations.store import load_torch_file
from videoact.features.backbones import BACKBONES, PRETRAINED
from videoact.features.vit.models import VideoViT, resize_pos_embed, sincos_table

LAYOUTS = ("videoact", "videomae", "mmaction2")

_HEAD_PREFIXES = ("fc_norm.", "head.")  # optional on both sides: a backbone-only checkpoint or model is fine


@dataclass
class LoadReport:
    """What ``load_pretrained`` did. ``missing``: model keys the checkpoint lacks; ``unexpected``: checkpoint keys
    (renamed as far as the layout knows them) with no place in the model; ``skipped``: dropped on purpose."""

    source: str
    layout: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # ``notes`` says why
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.source} ({self.layout}): {len(self.loaded)} tensors loaded"]
        for name in ("missing", "unexpected", "skipped"):
            keys = getattr(self, name)
            if keys:
                lines.append(f"  {name} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- reading


def read_checkpoint(source: str | Path, *, cache_dir: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint file / URL / hub id, unwrapped from ``model`` / ``module`` /
    ``state_dict`` / ``model_state``. Always ``torch.load(weights_only=True)``; argparse ``args`` (VideoMAE saves
    them) are allowed, anything else that is not plain data is refused with the fix."""
    path = _fetch(str(source), cache_dir)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    obj = load_torch_file(path, what="weights file", allow=[argparse.Namespace],
                          fix="; with the code that made it, save only the weights: "
                              "torch.save(model.state_dict(), 'weights.pth')")
    return unwrap_state_dict(obj, where=str(path))


def unwrap_state_dict(obj: Any, *, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "module", "model_state"):  # model_state: PyTorchVideo / SlowFast
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise ValueError(f"{where}: no state dict found (expected tensors, or one under 'state_dict', 'model', "
                     f"'module' or 'model_state')")


def _fetch(source: str, cache_dir: str | Path | None) -> Path:
    from videoact import models

    if models.is_model(source):  # a model-zoo card: downloaded into $VIDEOACT_HOME and verified (models.hub)
        return models.download(source)["weights"]
    if source.startswith("hf-hub:"):
        repo_and_file = source.removeprefix("hf-hub:")
        repo_id, _, filename = repo_and_file.rpartition("/")
        if repo_id.count("/") != 1 or not filename:
            raise ValueError(f"{source!r}: write hub ids as hf-hub:OWNER/REPO/FILE")
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir))
        except Exception as exc:
            raise RuntimeError(
                f"could not fetch {filename} from the Hugging Face hub repo {repo_id} ({type(exc).__name__}: "
                f"{exc}). Without network: download it elsewhere and pass the local path instead."
            ) from exc
    if re.match(r"^(https?|file)://", source):
        folder = Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"
        path = folder / source.rstrip("/").rsplit("/", 1)[-1]
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            try:
                torch.hub.download_url_to_file(source, str(path), progress=False)
            except Exception as exc:
                raise RuntimeError(
                    f"could not download {source} ({type(exc).__name__}: {exc}). Without network: download it "
                    f"elsewhere and put it at {path}, or pass the local path instead."
                ) from exc
        return path
    return Path(source)


# ------------------------------------------------------------------------------------------ key layouts


def detect_layout(state: Mapping[str, torch.Tensor]) -> str:
    keys = list(state)
    if any(".projection." in k or ".mlp.layers." in k or k.startswith("cls_head.") for k in keys):
        return "mmaction2"
    if any(k.endswith("attn.q_bias") for k in keys):
        return "videomae"
    if any(k.endswith("attn.qkv.bias") for k in keys):
        return "videoact"
    if any(k.startswith("encoder.") or k.startswith("patch_embed.proj.") for k in keys):
        return "videomae"  # a model without q/v biases
    raise ValueError(f"cannot tell the checkpoint layout from its keys ({', '.join(keys[:5])}, ...); pass "
                     f"layout= one of {', '.join(LAYOUTS)}")


_MMACTION2_RENAMES = [  # (theirs, ours) after dropping "backbone."
    (re.compile(r"^patch_embed\.projection\."), "patch_embed.proj."),
    (re.compile(r"^(blocks\.\d+)\.mlp\.layers\.0\.0\."), r"\1.mlp.fc1."),
    (re.compile(r"^(blocks\.\d+)\.mlp\.layers\.1\."), r"\1.mlp.fc2."),
]
_LAYER_SCALE = [(re.compile(r"^(blocks\.\d+)\.gamma_([12])$"), r"\1.ls\2.gamma")]
_PRETRAIN_ONLY = re.compile(r"^(decoder\.|decoder_|encoder_to_decoder\.|mask_token$)")


def from_videomae(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """VideoMAE names -> ours. Returns (renamed state, keys dropped on purpose). Unknown keys pass through."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        name = key.removeprefix("module.").removeprefix("backbone.").removeprefix("encoder.")
        if _PRETRAIN_ONLY.match(name) or (key.startswith("encoder.") and name.startswith("norm.")):
            dropped.append(key)  # pretraining decoder / encoder norm: VideoMAE's fine-tuning drops them too
            continue
        out[_rename(name, _LAYER_SCALE)] = value
    return _merge_qv_bias(out), dropped


def from_mmaction2(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """mmaction2 ``Recognizer3D`` + ``vit_mae.VisionTransformer`` names -> ours."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        if key.startswith("data_preprocessor."):
            dropped.append(key)
            continue
        name = key.removeprefix("module.")
        if name.startswith("cls_head.fc_cls."):
            name = "head." + name.removeprefix("cls_head.fc_cls.")
        else:
            name = _rename(name.removeprefix("backbone."), _MMACTION2_RENAMES + _LAYER_SCALE)
        out[name] = value
    return _merge_qv_bias(out), dropped


def to_videomae(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in VideoMAE's names (save it as ``{"model": ...}``); the k bias is dropped (see above)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in _split_qkv_bias(state).items():
        out[_rename(key, [(re.compile(r"^(blocks\.\d+)\.ls([12])\.gamma$"), r"\1.gamma_\2")])] = value
    return out


def to_mmaction2(state: Mapping[str, torch.Tensor], *, grid: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    """Our state dict in mmaction2's names (save it as ``{"state_dict": ..., "meta": ...}``). mmaction2 keeps
    the sin-cos table in its state dict, so it is written for ``grid`` when ours is not learned."""
    out: dict[str, torch.Tensor] = {}
    for key, value in to_videomae(state).items():
        if key.startswith("head."):
            out["cls_head.fc_cls." + key.removeprefix("head.")] = value
            continue
        key = key.replace("patch_embed.proj.", "patch_embed.projection.")
        key = re.sub(r"\.mlp\.fc1\.", ".mlp.layers.0.0.", key)
        key = re.sub(r"\.mlp\.fc2\.", ".mlp.layers.1.", key)
        out["backbone." + key] = value
    if "backbone.pos_embed" not in out:
        d = state["fc_norm.weight"].shape[0]
        out = {"backbone.pos_embed": sincos_table(grid[0] * grid[1] * grid[2], d), **out}
    return out


def export_state_dict(model: VideoViT, layout: str) -> dict[str, torch.Tensor]:
    """``model``'s weights in ``layout``'s key names (tensors detached, on the CPU)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if layout == "videoact":
        return state
    if layout == "videomae":
        return to_videomae(state)
    if layout == "mmaction2":
        return to_mmaction2(state, grid=model.grid)
    raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")


def _rename(key: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, repl in rules:
        key = pattern.sub(repl, key)
    return key


def _merge_qv_bias(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("attn.q_bias"):
            stem = key.removesuffix("q_bias")
            v_bias = state.get(stem + "v_bias")
            if v_bias is None:
                raise ValueError(f"checkpoint has {key} but no {stem}v_bias")
            out[stem + "qkv.bias"] = torch.cat([value, torch.zeros_like(value), v_bias])  # VideoMAE: no k bias
        elif not key.endswith("attn.v_bias"):
            out[key] = value
    return out


def _split_qkv_bias(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("attn.qkv.bias"):
            q, _k, v = value.chunk(3)  # the k bias is softmax-invariant: dropping it changes no output
            stem = key.removesuffix("qkv.bias")
            out[stem + "q_bias"], out[stem + "v_bias"] = q.clone(), v.clone()
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------------------------- load


def load_pretrained(
    model: VideoViT,
    source: str | Path | Mapping[str, Any],
    *,
    layout: str = "auto",
    strict: bool = True,
    cache_dir: str | Path | None = None,
) -> LoadReport:
    """Load a checkpoint (path, URL, ``hf-hub:`` id, model-zoo name, or an in-memory state dict) into ``model``.

    ``layout="auto"`` tells the layout from the key names. With ``strict`` (default), a backbone key missing
    from the checkpoint, a checkpoint key with no place in the model, or a shape mismatch is an error; the
    classifier side (``fc_norm``, ``head``) is optional either way, and a head of another size is skipped.

    Example::

        model = build_backbone("vit_b16", num_classes=400)
        print(load_pretrained(model, "videomae_b16_k400"))  # the zoo card: mmaction2's VideoMAE ViT-B K400
    """
    if isinstance(source, Mapping):
        name, state = "<state dict>", unwrap_state_dict(source)
    else:
        name, state = str(source), read_checkpoint(source, cache_dir=cache_dir)
        from videoact import models

        if layout == "auto" and models.is_model(str(source)):
            layout = models.get_model(str(source)).layout
    if layout == "auto":
        layout = detect_layout(state)
    report = LoadReport(source=name, layout=layout)
    if layout == "videomae":
        state, report.skipped = from_videomae(state)
        if report.skipped:
            report.notes.append("pretraining-only keys (decoder, encoder norm) skipped as VideoMAE fine-tuning does")
    elif layout == "mmaction2":
        state, report.skipped = from_mmaction2(state)
    elif layout != "videoact":
        raise ValueError(f"unknown layout {layout!r}; one of auto, {', '.join(LAYOUTS)}")
    state = dict(state)

    ours = model.state_dict()
    _take_pos_embed(model, state, report)
    for key in [k for k in state if k.startswith(_HEAD_PREFIXES) and k not in ours]:
        report.skipped.append(key)
        report.notes.append(f"{key}: the model has no classifier (num_classes=0)")
        del state[key]
    for key in [k for k in state if k in ours and state[k].shape != ours[k].shape]:
        if key.startswith("head."):
            report.skipped.append(key)
            report.notes.append(f"{key}: {tuple(state[key].shape)} in the checkpoint, {tuple(ours[key].shape)} in "
                                f"the model (another class count); left as initialised")
            del state[key]
        else:
            raise ValueError(f"{name}: {key} is {tuple(state[key].shape)} in the checkpoint but "
                             f"{tuple(ours[key].shape)} in the model: build the matching size (vit_s16 is 384 "
                             f"wide, vit_b16 768) with the checkpoint's num_frames / tubelet")

    result = model.load_state_dict(state, strict=False)
    report.missing = list(result.missing_keys)
    report.unexpected = list(result.unexpected_keys)
    report.loaded = [k for k in state if k in ours]
    if strict:
        missing = [k for k in report.missing if not k.startswith(_HEAD_PREFIXES)]
        if missing or report.unexpected:
            raise ValueError(f"{name} does not fit the model (layout {layout}):\n{report}\n"
                             f"pass layout= explicitly, or strict=False to load what fits")
    return report


def _take_pos_embed(model: VideoViT, state: dict[str, torch.Tensor], report: LoadReport) -> None:
    """Verify a stored sin-cos table against ours (then drop it), or resize a learned one to our grid."""
    table = state.get("pos_embed")
    if table is None:
        return
    n, d = table.shape[-2], table.shape[-1]
    if model.pos_embed_kind == "sincos":
        if not torch.allclose(table.float().reshape(1, n, d), sincos_table(n, d), atol=1e-5):
            raise ValueError(f"{report.source}: pos_embed is not the sin-cos table; the checkpoint learned its "
                             f"position embedding: build the model with pos_embed='learned'")
        del state["pos_embed"]
        report.skipped.append("pos_embed")
        report.notes.append("pos_embed: the checkpoint's fixed sin-cos table matches ours (not a parameter)")
        return
    t, h, w = model.grid
    if n != t * h * w:
        side = round((n // t) ** 0.5)
        if n % t or side * side * t != n:
            raise ValueError(f"{report.source}: pos_embed has {n} positions, not {t} slices of a square grid")
        state["pos_embed"] = resize_pos_embed(table.reshape(1, n, d), (t, side, side), model.grid)
        report.notes.append(f"pos_embed: resized from {t}x{side}x{side} to {t}x{h}x{w} (bicubic per slice)")


# ------------------------------------------------------------------------------- Hugging Face transformers


_HF_BLOCK = re.compile(r"^videomae\.encoder\.layer\.(\d+)\.(.+)$")
_HF_BLOCK_RENAMES = {
    "attention.output.dense.": "attn.proj.",
    "layernorm_before.": "norm1.",
    "layernorm_after.": "norm2.",
    "intermediate.dense.": "mlp.fc1.",
    "output.dense.": "mlp.fc2.",
}
_HF_OTHER_RENAMES = {
    "videomae.embeddings.patch_embeddings.projection.": "patch_embed.proj.",
    "fc_norm.": "fc_norm.",
    "classifier.": "head.",
}


def read_hf_config(path: str | Path) -> dict[str, Any]:
    """A transformers ``config.json`` as a dict (``ValueError`` naming the file when it is not one)."""
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable transformers config.json ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object of config fields")
    return config


def hf_class_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    """``id2label`` in class-id order ('' for a config without one)."""
    id2label = config.get("id2label") or {}
    try:
        ids = sorted((int(k), str(v)) for k, v in id2label.items())
    except (AttributeError, ValueError):
        raise ValueError(f"config id2label must map class ids to names, got {id2label!r:.80}") from None
    if [i for i, _ in ids] != list(range(len(ids))):
        raise ValueError(f"config id2label has ids {[i for i, _ in ids][:10]}..., not 0..{len(ids) - 1}")
    return tuple(name for _, name in ids)


def build_hf_videomae(config: Mapping[str, Any], *, where: str = "config.json") -> VideoViT:
    """A ``VideoViT`` with the shape of a transformers ``VideoMAEConfig`` (``VideoMAEForVideoClassification``:
    mean pooling, ``fc_norm``, ``classifier``) and transformers' LayerNorm epsilons."""
    if config.get("model_type", "videomae") != "videomae":
        raise ValueError(f"{where}: model_type {config.get('model_type')!r}, not videomae")
    if not config.get("use_mean_pooling", True):
        raise ValueError(f"{where}: use_mean_pooling is false (a final LayerNorm and the first token); only the "
                         f"mean-pooled VideoMAE classifier is supported")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{where}: hidden_act {config.get('hidden_act')!r}; VideoViT's MLP is exact GELU")
    if config.get("num_channels", 3) != 3:
        raise ValueError(f"{where}: num_channels {config.get('num_channels')}, expected 3 (RGB)")
    if not config.get("qv_bias", True):
        raise ValueError(f"{where}: qv_bias false (attention without q / v biases) is not supported")
    dim, hidden = int(config.get("hidden_size", 768)), int(config.get("intermediate_size", 3072))
    mlp_ratio = hidden / dim
    if int(dim * mlp_ratio) != hidden:
        raise ValueError(f"{where}: intermediate_size {hidden} is not representable as hidden_size x mlp_ratio")
    num_classes = len(hf_class_names(config)) or int(config.get("num_labels", 0) or 0)
    model = VideoViT(dim=dim, depth=int(config.get("num_hidden_layers", 12)),
                     num_heads=int(config.get("num_attention_heads", 12)), img_size=config.get("image_size", 224),
                     patch_size=int(config.get("patch_size", 16)), num_frames=int(config.get("num_frames", 16)),
                     tubelet=int(config.get("tubelet_size", 2)), mlp_ratio=mlp_ratio, num_classes=num_classes)
    eps = float(config.get("layer_norm_eps", 1e-12))
    for block in model.blocks:
        block.norm1.eps = block.norm2.eps = eps
    model.fc_norm.eps = 1e-5  # transformers: nn.LayerNorm(hidden_size), PyTorch's default epsilon
    return model


def from_hf_videomae(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``VideoMAEForVideoClassification`` names -> ours: q / k / v weights stacked into ``qkv``, their biases
    into ``qkv.bias`` (a zero k bias where the file has none). Returns (renamed state, keys not renamed)."""
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = _HF_BLOCK.match(key)
        if m:
            i, rest = m.groups()
            if rest.startswith("attention.attention."):
                part = rest.removeprefix("attention.attention.")
                part = {"q_bias": "query.bias", "v_bias": "value.bias"}.get(part, part)
                qkv.setdefault(i, {})[part] = value
                continue
            for theirs, ours in _HF_BLOCK_RENAMES.items():
                if rest.startswith(theirs):
                    out[f"blocks.{i}.{ours}{rest.removeprefix(theirs)}"] = value
                    break
            else:
                unknown.append(key)
            continue
        for theirs, ours in _HF_OTHER_RENAMES.items():
            if key.startswith(theirs):
                out[ours + key.removeprefix(theirs)] = value
                break
        else:
            unknown.append(key)
    for i, parts in qkv.items():
        where = f"videomae.encoder.layer.{i}.attention.attention"
        missing = [p for p in ("query.weight", "key.weight", "value.weight") if p not in parts]
        if missing:
            raise ValueError(f"{where}: no {', '.join(missing)}")
        extra = set(parts) - {"query.weight", "key.weight", "value.weight", "query.bias", "key.bias", "value.bias"}
        unknown += [f"{where}.{p}" for p in sorted(extra)]
        q = parts["query.weight"]
        zeros = q.new_zeros(q.shape[0])
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([q, parts["key.weight"], parts["value.weight"]])
        out[f"blocks.{i}.attn.qkv.bias"] = torch.cat([parts.get("query.bias", zeros), parts.get("key.bias", zeros),
                                                      parts.get("value.bias", zeros)])
    return out, unknown


def read_hf_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """``model.safetensors`` (``safetensors.torch.load_file``) or ``pytorch_model.bin`` (``torch.load``,
    ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ImportError(f"{path}: reading .safetensors needs safetensors: pip install safetensors") from None
        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:
            raise ValueError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    return read_checkpoint(path)


def load_hf_videomae(config: str | Path, weights: str | Path) -> tuple[VideoViT, tuple[str, ...]]:
    """A transformers VideoMAE classifier (``config.json`` + weights) as a ``VideoViT`` in eval mode, and its
    ``id2label`` names. Strict: a key of the file with no place in the model, a missing one, or a shape that
    differs is a ``ValueError`` naming the weights file and the keys."""
    cfg = read_hf_config(config)
    model = build_hf_videomae(cfg, where=str(config))
    state, unknown = from_hf_videomae(read_hf_weights(weights))
    ours = model.state_dict()
    missing = [k for k in ours if k not in state]
    unexpected = unknown + [k for k in state if k not in ours]
    if missing or unexpected:
        raise ValueError(f"{weights} does not fit the VideoMAE model of {config} (layout hf_videomae): "
                         f"missing: {_first(missing)}; unexpected: {_first(unexpected)}")
    for key, value in state.items():
        if value.shape != ours[key].shape:
            raise ValueError(f"{weights}: {key} is {tuple(value.shape)} in the file but {tuple(ours[key].shape)} "
                             f"in the model built from {config}")
    model.load_state_dict(state, strict=True)
    return model.eval(), hf_class_names(cfg)


def _first(keys: list[str], n: int = 5) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


# ------------------------------------------------------------------------------- zoo cards as backbones


def _pretrained_vit(card: Any, files: Mapping[str, Path], **kwargs: Any) -> VideoViT:
    """``build_backbone(NAME, pretrained=True)`` for a ViT card (mmaction2 / videomae files): the card's network
    with every backbone weight of its file (strict), the classifier left out (``fc_norm`` kept when present)."""
    options = {k: v for k, v in card.arch_kwargs.items() if k != "num_classes"}
    vit = BACKBONES.get(card.arch)(**{**options, **kwargs})
    load_pretrained(vit, files["weights"], layout=card.layout, strict=True)
    return vit.eval()


def _pretrained_hf_vit(card: Any, files: Mapping[str, Path], **kwargs: Any) -> VideoViT:
    """The same for transformers files: built from their ``config.json``; the classifier is dropped."""
    if kwargs:
        raise ValueError(f"model {card.name}: a transformers checkpoint is built from its config.json; builder "
                         f"options {', '.join(kwargs)} cannot apply")
    vit, _ = load_hf_videomae(files["config"], files["weights"])
    vit.head, vit.num_classes = torch.nn.Identity(), 0  # as built with num_classes=0
    return vit.eval()


PRETRAINED.register("mmaction2", _pretrained_vit)
PRETRAINED.register("videomae", _pretrained_vit)
PRETRAINED.register("hf_videomae", _pretrained_hf_vit)
