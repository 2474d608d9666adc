"""Evaluation of agents: which levels are played, when and under which keys (registry), running the episodes and
scoring them (episodes), and recording them as video (video)."""
