"""Records, ids, time and the error tree. Standard library only."""
