"""The OpenSubsonic face (``/rest/…``): the apps people already use, over the same services as the
native API. Envelope and errors (``envelope``), login (``auth``), the request loop (``protocol``) and one
module per endpoint group; the rules live below, in the library, playback and progress services."""
