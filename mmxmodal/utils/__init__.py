"""Small shared utilities (distributed helpers, checkpoint I/O)."""
