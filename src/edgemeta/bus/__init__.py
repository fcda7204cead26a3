"""Message bus adapters only: in-process (:mod:`~edgemeta.bus.memory`), MQTT
(:mod:`~edgemeta.bus.mqtt`) and NATS (:mod:`~edgemeta.bus.nats`) behind the ``Bus`` port, the
topic builder (:mod:`~edgemeta.bus.topics`), the EdgeX MessageEnvelope
(:mod:`~edgemeta.bus.envelope`), what the adapters share (:mod:`~edgemeta.bus.shared`) and
the broker credentials and TLS options they all take (:mod:`~edgemeta.bus.security`).

Imports: the domain, the ports and :mod:`edgemeta.documents`. What edgemeta *does* over a bus
lives elsewhere: asking device services in :mod:`edgemeta.peers`, the relay and core-data's
ingest in :mod:`edgemeta.workers`. Imported by those, by :mod:`edgemeta.sdk` and by
:mod:`edgemeta.bootstrap`.
"""
