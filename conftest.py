pytest_plugins = ["kierouter.testing"]

# The copy-me plugin template is not installed in this workspace; tests/test_docs_tutorial.py
# runs its tests from a fresh copy, the way a plugin author would.
collect_ignore = ["plugins/_template"]
