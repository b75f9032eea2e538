"""Heads: recognition, AVA detection, temporal detection, segmentation, anticipation -> ``Tables``. Not yet."""
