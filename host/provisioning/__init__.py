"""The depot technician's provisioning tool (DESIGN §7): `host/provision.py` is the CLI;
this package holds its steps. Guide: docs/provisioning.md."""
