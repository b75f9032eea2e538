"""Readers and writers for the field's annotation formats, each registered by name.

Every module states its conventions (coordinates, time units, what the format cannot hold) in its
docstring. ``import_annotations(fmt, path)`` -> ``Tables``; ``export_annotations(fmt, tables, out)``.
The registries (``IMPORTERS``, ``EXPORTERS``) sit in ``_common`` below the format modules; this package
imports the built-in ones so that they register.
"""

from videoact.annotations.formats import (  # noqa: F401
    activitynet,
    ava,
    cvat_video,
    ego4d_lta,
    labelstudio,
    mstcn,
    skeleton_pickle,
    thumos14,
)
from videoact.annotations.formats._common import (
    EXPORTERS,
    IMPORTERS,
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
    "EXPORTERS",
    "IMPORTERS",
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
