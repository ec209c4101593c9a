"""Revenge audio: a self-hosted audio streaming server."""

from revenge.system_lame import prefer_system_lame

__version__ = "0.1.0"

# Before anything imports PyAV (see revenge.system_lame): the faster MP3 encoder where there is one.
SYSTEM_LAME = prefer_system_lame()
