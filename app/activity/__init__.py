"""What happened to documents: an event row per accepted ref update, and a signal for hooks."""
