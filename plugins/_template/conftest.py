"""The emulator fixtures (kie_emulator, kie_client) for this plugin's tests."""

pytest_plugins = ["kierouter.testing"]
