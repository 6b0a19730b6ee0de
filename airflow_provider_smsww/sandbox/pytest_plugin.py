"""pytest plugin registered by the package (entry point ``pytest11``): sandbox fixtures for DAG tests.

Placeholder until the sandbox lands; the fixtures are defined with the sandbox itself.
"""
