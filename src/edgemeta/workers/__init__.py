"""Long-running jobs: started and stopped by :mod:`edgemeta.bootstrap`, never by a request.

- :mod:`~edgemeta.workers.relay`: publish the outbox's system events on the bus, in order
- :mod:`~edgemeta.workers.ingest`: store the events device services publish (core-data)
- :mod:`~edgemeta.workers.moves`: resume the moves an interrupted instance left

A new background job goes here. Imports: the domain, the ports, the use cases and
:mod:`edgemeta.bus`; imported only by :mod:`edgemeta.bootstrap` (and tests).
"""
