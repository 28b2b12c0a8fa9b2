"""parkflow's shared core: what the ingest process and the service process both need (the
park registry, units, the reading model, errors, time units, the store and its backends,
settings), the ``parkflow`` command and the composition roots that run the two together."""
