"""videoact: video action understanding, decode -> features -> heads -> one shared annotation format.

``videoact.run(source)`` runs the pipeline (``Tables`` in memory, or a run directory with ``out=``),
``videoact.Pipeline(**overrides)`` loads the models once for many videos, ``videoact.load(run_dir)`` reads a run,
``videoact.attrs(df)`` parses a table's JSON ``attrs`` column.
"""

from typing import Any

from videoact._version import __version__
from videoact.annotations import AnnotationError, Tables, load
from videoact.annotations.tables import parse_attrs as attrs

_API = ("Pipeline", "run")  # import the runner (and the stages) on first use: `import videoact` stays light


def __getattr__(name: str) -> Any:
    if name in _API:
        from videoact import api

        return getattr(api, name)
    raise AttributeError(f"module 'videoact' has no attribute {name!r}")


__all__ = ["AnnotationError", "Pipeline", "Tables", "__version__", "attrs", "load", "run"]
