"""Dataset readers producing training samples; skeleton datasets (NTU, NW-UCLA, ...) in ``.skeleton``.

Annotation *files* are read and written by ``videoact.annotations.formats``; this package turns
datasets into training samples for ``videoact train``.
"""
