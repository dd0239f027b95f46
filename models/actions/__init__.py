"""Domain actions: plain synchronous functions taking ids and values, called by handlers, CLI, workers, tests.

Each action checks role, ownership and state itself, writes inside one transaction, and raises
`models.foundation.errors.ApiError` subclasses that the web layer renders.
"""
