"""Where networks run and in which precision: ``runner.device`` / ``runner.precision`` (``videoact run``) and
``optim.device`` / ``optim.precision`` (every epoch trainer), resolved here and nowhere else.

``device``: ``auto`` (``cuda`` when ``torch.cuda.is_available()``, else ``cpu``), ``cpu``, ``cuda`` or ``cuda:N``.
A CUDA device this machine does not have is a ``ConfigError`` naming the key (the CLI: rc 2, one line), raised
when the config is checked, before any video or batch.

``precision``: ``fp32`` (the default: bit-identical to code without this module), ``bf16`` or ``fp16``:
``torch.autocast`` of that dtype around the forward passes (weights stay fp32). ``fp16`` needs CUDA (on CPU it is
a ``ConfigError``); training in fp16 scales the loss (``torch.amp.GradScaler``). Reduced precision changes scores
(bf16: probabilities within about 1e-2 of fp32 on the tiny test models, ``tests/test_devices.py``), so
``runner.precision`` other than fp32 is part of the run's config fingerprint; the device is not.

Imports torch lazily: the config layer and the CLI import this module without loading torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from videoact.config import ConfigError

if TYPE_CHECKING:
    import torch

Device = str  # auto | cpu | cuda | cuda:N
Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(spec: str, *, key: str = "runner.device") -> torch.device:
    """``auto | cpu | cuda | cuda:N`` -> a ``torch.device`` this machine has; ``ConfigError`` naming ``key``
    otherwise (a bad spelling, no CUDA, or an index past the GPUs there are)."""
    import torch

    spec = str(spec).strip().lower()
    if not _SPEC.match(spec):
        raise ConfigError(f"{key}: {spec!r} is not a device; use auto, cpu, cuda or cuda:N")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"{key}: {spec} asked for, but this machine has no CUDA device (torch "
                          f"{torch.__version__}); use {key}=cpu or {key}=auto")
    index = int(spec.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"{key}: {spec} asked for, but this machine has {count} CUDA device(s) "
                          f"(cuda:0..cuda:{count - 1}); use {key}=cuda:N below {count} or {key}=auto")
    return torch.device(f"cuda:{index}" if ":" in spec else "cuda")


def check_precision(precision: str, device: torch.device, *, key: str = "runner.precision") -> str:
    """``precision`` if ``device`` runs it; ``ConfigError`` naming ``key`` otherwise (fp16 on CPU)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{key}: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"{key}: fp16 runs on CUDA only (the device is {device}); use {key}=bf16 or fp32 on CPU")
    return precision


def resolve(device: str, precision: str, *, prefix: str = "runner") -> tuple[torch.device, str]:
    """Both settings of one config section (``runner`` or ``optim``), checked: ``(device, precision)``."""
    dev = resolve_device(device, key=f"{prefix}.device")
    return dev, check_precision(precision, dev, key=f"{prefix}.precision")


def dtype_of(precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None: fp32, no autocast)."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str = "fp32") -> Iterator[None]:
    """``torch.autocast`` of ``precision`` on ``device``'s type; fp32 is a no-op (bit-identical outputs)."""
    import torch

    dtype = dtype_of(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=dtype):
        yield


def module_device(module: Any) -> torch.device:
    """The device of a module's first parameter (or buffer); cpu for a module without tensors."""
    import torch

    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


def _map_tensors(obj: Any, fn: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple
        return type(obj)(*(_map_tensors(v, fn) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # a model's output record
        return dataclasses.replace(obj, **{f.name: _map_tensors(getattr(obj, f.name), fn)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def host_io(module: Any, device: torch.device | str) -> Any:
    """``module`` moved to ``device`` and wrapped so that callers keep passing and reading CPU tensors: its
    ``forward`` moves tensor arguments to the module's device and returns its tensors on the CPU (floating ones
    as float32; differentiable, so a loss computed on the CPU trains the module on the GPU). For code written for
    the CPU (the temporal heads' chunked inference and trainers); on the CPU nothing is wrapped."""
    import torch

    device = torch.device(device)
    module.to(device)
    if device.type == "cpu" or getattr(module, "_videoact_host_io", False):
        return module

    def pre(m: Any, args: Any, kwargs: Any) -> Any:
        dev = module_device(m)  # where it is now (moved back to the CPU to be saved: nothing moves)
        return _map_tensors(args, lambda t: t.to(dev)), _map_tensors(kwargs, lambda t: t.to(dev))

    def post(_m: Any, _args: Any, out: Any) -> Any:
        return _map_tensors(out, lambda t: (t.float() if t.is_floating_point() else t).cpu())

    module.register_forward_pre_hook(pre, with_kwargs=True)
    module.register_forward_hook(post)
    module._videoact_host_io = True
    return module


def grad_scaler(device: torch.device, precision: str) -> Any:
    """A ``GradScaler`` for fp16 training on CUDA, else None (bf16 and fp32 need no loss scaling)."""
    if precision != "fp16":
        return None
    import torch

    return torch.amp.GradScaler(device.type)


__all__ = ["PRECISIONS", "Device", "Precision", "autocast", "check_precision", "dtype_of", "grad_scaler",
           "host_io", "module_device", "resolve", "resolve_device"]
