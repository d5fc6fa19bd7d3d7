"""The statistics floor: pure functions of numbers (drift tests and their registry,
significance, sketches, the multivariate test). Nothing here reads a file, a log or the
registry; ``pyproject.toml``'s import contracts hold it to that."""
