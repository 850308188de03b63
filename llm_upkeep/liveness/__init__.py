"""Liveness between the daily runs: a one-token generation per endpoint every few minutes, an
alert when one goes down and a "resolved" when it is back, quiet otherwise."""
