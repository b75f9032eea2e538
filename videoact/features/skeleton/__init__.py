"""Skeleton networks (ST-GCN, PSUMNet-style part streams, ISTA-Net, 1D-CNN ensemble). Not in this release yet."""
