"""Dataset readers (NTU, NW-UCLA, AVA, Ego4D, EPIC-KITCHENS) producing training samples. Not yet.

Annotation *files* are read and written by ``videoact.annotations.formats``; this package turns
datasets into training samples for ``videoact train``.
"""
