"""The monthly cost review: energy from GPU counters, hosting and amortized hardware, tokens served,
and the comparison with cloud API prices."""
