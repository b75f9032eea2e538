"""Plumbing shared by the format modules: the registries of importers/exporters and error helpers.

``IMPORTERS`` / ``EXPORTERS`` live here, below the format modules, which register with
``@register_importer("ava")``; the package (``formats/__init__.py``) imports the built-in modules.
"""

from __future__ import annotations

import inspect
import io
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from videoact.annotations.schema import AnnotationError
from videoact.annotations.tables import Tables
from videoact.registry import Registry

Importer = Callable[..., Tables]  # (path, **options) -> Tables
Exporter = Callable[..., list[Path]]  # (tables, out, **options) -> written files

IMPORTERS: Registry[Importer] = Registry("import format")
EXPORTERS: Registry[Exporter] = Registry("export format")


class FormatError(AnnotationError):
    """A malformed annotation file: the message names the file, the line (1-based) and the problem."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def register_importer(name: str) -> Callable[[Importer], Importer]:
    """Register ``fn(path, **options) -> Tables`` as the importer of format ``name``."""
    return IMPORTERS.register(name)


def register_exporter(name: str) -> Callable[[Exporter], Exporter]:
    """Register ``fn(tables, out, **options) -> list[Path]`` as the exporter of format ``name``."""
    return EXPORTERS.register(name)


def list_importers(pattern: str = "*") -> list[str]:
    return IMPORTERS.names(pattern)


def list_exporters(pattern: str = "*") -> list[str]:
    return EXPORTERS.names(pattern)


def _call(fn: Callable[..., Any], name: str, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    options = {k: v for k, v in options.items() if v is not None}
    unknown = [k for k in options if k not in params and not takes_any]
    if unknown:
        known = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        raise AnnotationError(f"format {name!r} does not take option(s) {unknown}; it takes {known}")
    return fn(*args, **options)


def import_annotations(fmt: str, path: str | Path, **options: Any) -> Tables:
    """Read a file (or folder) in format ``fmt`` into ``Tables``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    return _call(IMPORTERS.get(fmt), fmt, (path,), options)


def export_annotations(fmt: str, tables: Tables, out: str | Path, **options: Any) -> list[Path]:
    """Write ``tables`` in format ``fmt`` to ``out``; returns the files written."""
    return _call(EXPORTERS.get(fmt), fmt, (tables, Path(out)), options)


def parse_float(text: str, path: str | Path, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, line, f"{what} is not a number: {text!r}") from None
    if not np.isfinite(value):
        raise FormatError(path, line, f"{what} is not finite: {text!r}")
    return value


def parse_int(text: str, path: str | Path, line: int, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FormatError(path, line, f"{what} is not an integer: {text!r}") from None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: no arbitrary code from a shared file."""

    _ALLOWED: frozenset[tuple[str, str]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("builtins", "slice"), ("collections", "OrderedDict"),
        ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
        # protocol 5 stores arrays as raw buffers rebuilt by _frombuffer (bytes -> array, no code)
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED or (module.startswith("numpy") and name.endswith("Dtype")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays and plain data are allowed")


def safe_pickle_load(path: str | Path) -> Any:
    """Load a pickle that may only contain dicts, lists, scalars and numpy arrays.

    mmaction2 / pyskl annotation files are pickles. Pickle can run code, so this loader refuses any
    class other than numpy's array machinery; a file that needs more is rejected, not trusted.
    """
    data = Path(path).read_bytes()
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, ImportError) as exc:
        raise FormatError(path, None, f"not a plain-data pickle ({exc})") from None


def accepts(fn: Callable[..., Any]) -> list[str]:
    """The keyword options of an importer or exporter (for ``--help`` listings)."""
    return [k for k, p in inspect.signature(fn).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def get_importer(name: str) -> Importer:
    return IMPORTERS.get(name)


def get_exporter(name: str) -> Exporter:
    return EXPORTERS.get(name)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def read_json(path: Path) -> tuple[Any, str]:
    """Parse a json file, refusing repeated keys (json.loads would silently keep the last one).

    Returns the value and the text (format modules use the text to point at lines). A syntax error or a
    repeated key becomes a ``FormatError`` with its line.
    """
    text = read_text(path)
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs), text
    except json.JSONDecodeError as exc:
        raise FormatError(path, exc.lineno, f"broken JSON: {exc.msg} (column {exc.colno})") from None
    except _DuplicateKey as exc:
        needle = json.dumps(exc.key)  # the line is known when the key is written exactly twice
        second = text.find(needle, text.find(needle) + 1) if text.count(needle) == 2 else -1
        line = text.count("\n", 0, second) + 1 if second >= 0 else None
        raise FormatError(path, line, f"duplicate key {exc.key!r} (JSON keys must be unique here)") from None


def read_text(path: Path) -> str:
    """A text file as UTF-8, line endings untouched (exporters write ``\r\n`` files back as they were).

    One policy for every text format: a leading byte-order mark (Windows editors write one) is not part of the
    first field, so it is dropped, here and only here (``utf-8-sig``); other bytes that are not UTF-8 are a
    ``FormatError`` naming the file and the byte offset."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
