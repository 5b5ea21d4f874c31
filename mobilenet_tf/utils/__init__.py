"""The lowest layer: atomic file writes, quiet native output, terminal output, the CPU line
timings are printed under. Imports no other part of the package."""
