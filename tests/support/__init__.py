"""Helpers the tests share: servers and brokers, TCP proxies, wired services, test data.

Tests and conftest modules import from here; nothing here imports a conftest (pytest loads
those itself, and importing one by path runs it twice).
"""
