"""The foundation: what every layer stands on (clock, errors, settings, money formatting, tokens, the
Paystack and Redis clients). It imports nothing of the project."""
