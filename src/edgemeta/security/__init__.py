"""Who is calling and what they may do: authentication, authorization, secrets.

Imported by ``api`` (the middleware and the role table), ``bootstrap`` and ``cli``; it
imports the domain and ports only, never ``api``.
"""
