"""Trends in the history store: robust slopes and their significance, turned into verdicts
(a drifting TTFT, a falling decode rate, a creeping GPU-memory baseline)."""
