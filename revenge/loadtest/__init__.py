"""``revenge bench``: a listener load simulator that runs against any Revenge server.

N simulated players each start a playback session, read the multivariant and media playlists, keep a
few segments buffered ahead of a real-time (or sped-up) play clock, heartbeat every few seconds and
seek at random. The run reports stalls, segment latency, heartbeat (progress write) latency, errors,
and the server's CPU and memory when it runs on this machine.

Pure parts: :mod:`playlist` (m3u8 parsing), :mod:`playback` (play clock and stall accounting),
:mod:`stats` (percentiles), :mod:`report` (table and JSON). I/O: :mod:`http` (a small keep-alive
HTTP/1.1 client: thousands of players from one process need something lighter than a full client
library), :mod:`procstat` (``/proc``), :mod:`listener` (one player), :mod:`run` (the whole run),
:mod:`command` (the CLI).
"""
