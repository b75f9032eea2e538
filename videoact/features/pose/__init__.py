"""Pose extraction from RGB onto named joint layouts (BlazePose by default). Not in this release yet."""
