"""The monthly security audit: exposure, versions vs known CVEs, firewall, file permissions, access logs.

Everything here only reads: sockets tables, harmless HTTP probes, firewall listings, file modes, logs.
"""
