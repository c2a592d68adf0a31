pytest_plugins = ["opbench.pytest_plugin"]
