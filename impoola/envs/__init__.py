"""Procgen environments, games, tracks and normalization constants."""
