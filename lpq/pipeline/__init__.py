"""Pipeline glue shared by the commands: atomic file writes, progress reporting."""
