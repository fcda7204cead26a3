"""What edgemeta asks of others: the adapters of the use cases' outbound ports.

- :mod:`~edgemeta.peers.validation`: ask a device service to validate a device over the bus
  (``DeviceValidator``)
- :mod:`~edgemeta.peers.releases`: hear device services confirm a move's release
  (``Releases``)
- :mod:`~edgemeta.peers.webhooks`: call an enrolment's allocation webhook over HTTP
  (``AllocationHook``)

Imports: the domain, the ports, :mod:`edgemeta.documents` and :mod:`edgemeta.bus` (topics,
envelope). Imported only by :mod:`edgemeta.bootstrap`, which hands them to the use cases.
"""
