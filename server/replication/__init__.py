"""Serving replicas: the primary keeps in the store the set of versions it serves
(`manifest`, written by `publisher`); each replica loads and unloads to match it
(`follower`), and refuses every writing call (`role`)."""
