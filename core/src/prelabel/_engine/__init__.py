"""The engine: runtime, store, job queue and workers, training policies, prediction runner."""
