"""Readers and writers for the field's annotation formats, each registered by name.

Every module states its conventions (coordinates, time units, what the format cannot hold) in its
docstring. ``import_annotations(fmt, path)`` -> ``Tables``; ``export_annotations(fmt, tables, out)``.
"""

from videoact.annotations.formats import activitynet, ava, ego4d_lta, mstcn, skeleton_pickle, thumos14  # noqa: F401
from videoact.annotations.formats._common import (
    FormatError,
    export_annotations,
    get_exporter,
    get_importer,
    import_annotations,
    list_exporters,
    list_importers,
    register_exporter,
    register_importer,
    safe_pickle_load,
)

__all__ = [
    "FormatError",
    "export_annotations",
    "get_exporter",
    "get_importer",
    "import_annotations",
    "list_exporters",
    "list_importers",
    "register_exporter",
    "register_importer",
    "safe_pickle_load",
]
