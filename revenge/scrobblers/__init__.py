"""Forwarding listens to ListenBrainz and Last.fm: each user links their own accounts, a background
forwarder drains the per-service outboxes of the records store, and a session's start sends "now
playing". ``model`` holds the rules (pure), ``listenbrainz``/``lastfm`` the protocols (request building
and answer parsing pure, the HTTP call thin), ``links*`` the link storage, ``forwarder`` the loop and
``service`` what the routes call."""
