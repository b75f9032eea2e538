"""Video ViT backbones with keyframe-centric token dropout (EVAD).

``models`` defines ``VideoViT`` and registers ``vit_s16``, ``vit_b16`` and ``vit_tiny`` with
``videoact.features.backbones`` (build them with ``build_backbone``); ``checkpoints`` loads VideoMAE and
mmaction2 weights. Nothing is imported here, so importing the package stays cheap.
"""
