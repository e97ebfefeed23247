"""The web console: staff sign in and act as themselves (``sferum-audit web``)."""
