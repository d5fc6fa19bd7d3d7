"""``dnnops tune``: hyperparameter search on Optuna, each trial a run, the best registered."""
