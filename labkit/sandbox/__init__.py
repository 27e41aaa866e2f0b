"""Where student code runs: the parent's worker handle, the child, the wire, bubblewrap and containers."""
