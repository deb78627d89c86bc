"""Built-in search backends: Optuna (default) and Ray Tune."""
