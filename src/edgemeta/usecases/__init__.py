"""Use cases: one function per operation. Load, decide with the domain, write the records and
their events in one transaction. They take the ports they need (:class:`Deps`), never HTTP.
"""
