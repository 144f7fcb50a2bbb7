"""The model store: the files under MODELS_PATH and nothing else. It owns where a version's
files are and that they are written atomically, that none is read before its signature is
checked, the signing key, the pointers (current version, aliases, history), recovery at
start-up, and the trust command that vouches for files."""
