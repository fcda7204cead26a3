"""Use cases: one function per operation. Load, decide with the domain, write the records and
their events in one transaction. Each takes :class:`~edgemeta.usecases.deps.Deps` (the
ports and the policy), never HTTP.

Imports: the domain, the ports and :mod:`edgemeta.documents` (for the documents the store
serves as they are). Imported by :mod:`edgemeta.api`, :mod:`edgemeta.workers` and
:mod:`edgemeta.bootstrap`; never by the adapters (store, bus, peers).
"""
