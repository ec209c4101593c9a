"""Revenge audio: a self-hosted audio streaming server."""

__version__ = "0.1.0"
