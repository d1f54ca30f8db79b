"""`manage.py bench`: generated data, then polling throughput and staff-page latency.

A tiny app only so Django finds the management command; it has no models.
"""
