"""Budgets: their YAML keys (config.py). Evaluation lives in analyses/budgets.py, delivery in notifiers/."""
