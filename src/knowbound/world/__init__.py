"""The offline knowledge world: a synthetic encyclopedia, a tiny model trained on it, and the
ground truth of which facts the model has seen and how often."""
