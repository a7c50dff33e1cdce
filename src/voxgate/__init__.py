"""voxgate."""
