"""Podcast feed subscriptions: feeds and OPML parsed (pure), checks scheduled (pure), outbound requests
guarded, episodes downloaded into the podcast library folder, where the scanner makes them items."""
