"""The model store: the files under MODELS_PATH.

files.py   ModelStore: names to paths, atomic writes, listing, loading, deleting, clean-up
"""
