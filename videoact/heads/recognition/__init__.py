"""Action recognition heads: skeleton windows -> classes (``skeleton``)."""
