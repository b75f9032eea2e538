"""Notebook exploration: timelines, keyframe grids, overlays, review exports. Not in this release yet."""
