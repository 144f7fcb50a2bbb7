"""The trust command, `model-server trust` (or `python -m server.trust`): list which model
files the server trusts, sign the ones an operator vouches for, rotate the signing key."""
