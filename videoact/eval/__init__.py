"""Official metrics over two ``Tables`` (ground truth, predictions). Not in this release yet."""
