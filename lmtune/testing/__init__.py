"""Tools for testing lmtune and plugins: synthetic objectives, and the conformance suites every sampler
(:mod:`lmtune.testing.samplers`), scheduler (:mod:`lmtune.testing.schedulers`) and storage
(:mod:`lmtune.testing.storage`) must pass. Nothing here imports pytest."""
