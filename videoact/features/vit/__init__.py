"""Video ViT backbones with keyframe-centric token dropout (EVAD). Not in this release yet."""
