"""The client register: known clients kept as keyed hashes, and their search in a text."""
