"""Impoola: average pooling for image-based deep RL (RLC 2025), reference implementation."""

__version__ = "1.0.0"
