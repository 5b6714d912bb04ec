"""Tools for testing lmtune and plugins: synthetic objectives and conformance suites (no pytest import at package import)."""
