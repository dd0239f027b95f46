"""Environments for tests of start-up settings: a production environment that starts, and a local one
without Paystack keys. Made-up values shaped like real ones (random-looking, as production's strength
checks require); no one's keys."""

STRONG_SECRET_KEY = "vQ7nX2rK9wB4tL6mZ1cH8pJ3sD5fG0yE"
LIVE_SECRET_KEY = "sk_live_4f9c2a7e1b8d3c6f0a5e9b2d7c4f1a8e3b6d0c9f"
TEST_SECRET_KEY = "sk_test_8e1d4b7a0c3f6e9d2b5a8c1f4e7d0a3b6c9f2e5d"

# Everything ENV=production requires, each value good enough: a test changes one thing at a time.
PRODUCTION = {
    "ENV": "production",
    "SECRET_KEY": STRONG_SECRET_KEY * 2,
    "DATABASE_URL": "postgresql://db/serviceman",
    "PAYSTACK_SECRET_KEY": LIVE_SECRET_KEY,
    "PAYSTACK_PUBLIC_KEY": "pk_live_x",
    "PUBLIC_BASE_URL": "https://api.serviceman.ng/",
}

# Development without Paystack keys: the local checkout stands in for Paystack.
NO_KEYS = {"ENV": "development", "PAYSTACK_SECRET_KEY": "", "PAYSTACK_PUBLIC_KEY": "", "PAYSTACK_BASE_URL": ""}
