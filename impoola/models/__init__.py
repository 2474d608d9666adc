"""Encoders, pooling heads and agents."""
