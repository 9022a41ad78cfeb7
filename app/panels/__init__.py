"""One panel per workflow step: Model → Prune → Train → Compare → Export."""
