"""thumbgen's Lambda code: everything here ships with `chalice deploy`."""
