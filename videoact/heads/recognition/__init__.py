"""Action recognition heads: skeleton windows -> classes (``skeleton``); RGB clips -> classes, closed set or
zero-shot from text (``clip``)."""
