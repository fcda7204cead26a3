"""The domain: records, rules and the events changes cause. Pure; no I/O."""
