"""``python -m dnnops``: what ``torchrun -m dnnops train`` runs on every rank."""

from dnnops.cli import main

main()
