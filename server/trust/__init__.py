"""`python -m server.trust`: the trust command's name, kept since v3 (it lives in
server.store.trust; `python -m server trust` runs it too)."""
