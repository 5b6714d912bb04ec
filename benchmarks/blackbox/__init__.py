"""Black-box optimiser benchmark: lmtune's samplers beside Optuna, Hyperopt and random search."""
