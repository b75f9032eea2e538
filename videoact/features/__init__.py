"""Features stage: clip tokens from video ViTs (``vit``), poses from RGB (``pose``), skeleton networks (``skeleton``).

Models here are plain ``nn.Module`` s with shape comments at their boundaries; no I/O.
"""
