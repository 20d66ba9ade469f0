"""Polyphone: a desktop softphone for PolyAI voice agents."""

__version__ = "0.1.0"
APP_NAME = "Polyphone"
