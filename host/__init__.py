"""Host tools (CPython): token tools, provisioning, depot host, back office."""
