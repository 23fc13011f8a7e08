"""Serving the mock over HTTP: the server process model and the ``sora-mock`` command line."""
