"""Batch prediction of files: the server's input policy, preprocessing and graph, in chunks."""
