"""The domain: records, rules and the events changes cause. Pure: no I/O, no JSON.

Records (``records``, ``enrollment``), patches, the profile rules, the move state machine
and its pre-flight checks, allocation and attestation, value rules of core-data
(``readings``), names, durations, ids and the error kinds. Imports nothing of edgemeta
outside itself; everything else may import it.
"""
