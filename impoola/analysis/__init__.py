"""Analyses of agents: network statistics, dormant neurons and translation sensitivity."""
