"""Thin Tornado handlers, one module per area; each ends with a `default_handlers` route list."""
