"""`taskline`: a command-line client of the Taskline HTTP API (it speaks HTTP only)."""
