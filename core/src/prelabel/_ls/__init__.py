"""Talking to Label Studio: its API client and safe media downloads (used by ``prelabel.media``)."""
