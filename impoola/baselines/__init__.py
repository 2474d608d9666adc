"""The paper's training-time baselines on top of a model: their options (options), gradual magnitude pruning
(pruning) and ReDo (redo)."""
