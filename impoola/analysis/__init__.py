"""Analyses of agents: network statistics, dormant neurons, translation sensitivity and episode videos."""
