"""Commands from the north: EdgeX core-command's *ExternalMQTT* request/response pair.

A cloud application that cannot reach the gateway over HTTP publishes core-command requests
on an external MQTT broker (which may be another broker than the internal bus) and gets the
answers there: :mod:`~edgemeta.north.wire` reads the topics and envelopes and writes the
answers, :mod:`~edgemeta.north.bridge` keeps the connection and serves each request through
the same use cases as core-command's REST routes (:mod:`edgemeta.usecases.commands`), with
the same authorization (:data:`edgemeta.security.roles.NORTH`).

Imports: the domain, the ports, the bus adapters, the security module, the use cases and, for
the one error-kind table and core-command's documents, :mod:`edgemeta.api`: the north is a
second transport of core-command's API, so it shares them rather than copying them. Imported
by :mod:`edgemeta.bootstrap` only.
"""
