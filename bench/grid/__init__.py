"""Where the grid is made: command-line axes parsed and validated, profiles and their blocks, every
config expanded before a single process starts. Nothing here measures or writes."""
