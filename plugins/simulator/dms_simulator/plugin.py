"""Entry point of the ``simulator`` plugin (the ``leitstand sim`` runner comes with the grid twin)."""
