"""``dnnops quickstart``: the whole lifecycle played on builtin:digits in a few minutes."""
