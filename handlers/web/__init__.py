"""The web layer's machinery under the endpoints: identity, web sessions, XSRF, rate limits, the
client address behind proxies, the database thread pool, the websocket hub and the listing cache."""
