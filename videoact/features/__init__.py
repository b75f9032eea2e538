"""Features stage: clip tokens from video ViTs (``vit``) and PyTorchVideo 3D CNNs (``cnn``), both behind
``backbones``; poses from RGB (``pose``), skeleton networks (``skeleton``), text embeddings (``text``).

Models here are plain ``nn.Module`` s with shape comments at their boundaries; no I/O.
"""
