"""The HTTP API: EdgeX core-metadata v3 routes, envelope and error table, plus edgemeta's own."""
