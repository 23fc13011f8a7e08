"""Tools that talk to a real relay: the shared create budget and the answer recorder."""
