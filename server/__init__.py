"""Serviceman: the application package (settings, app factory, auth, errors, CLI)."""
