"""The lowest layer: atomic file writes, quiet native output, terminal output. Imports no other
part of the package."""
