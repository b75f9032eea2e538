"""Heads -> ``Tables``: ``recognition`` (clips, skeleton windows), ``detection`` (AVA boxes), ``localization``
(temporal action detection), ``segmentation`` (frame-wise temporal segmentation), ``anticipation``."""
