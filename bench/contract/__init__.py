"""The contract between measuring and analysing: a config, the records it produces, and the results
directory they are stored in (docs/results-format.md).

Standard library only, function-level imports included (tests/test_architecture.py enforces it), so
`analysis/` reads results on a machine without torch. Nothing read from a results directory is
imported, called or unpickled: CSV and JSON are parsed as data.
"""
