pytest_plugins = ["kierouter.testing"]
