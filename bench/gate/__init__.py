"""The CI gate: another commit's code unpacked beside this checkout, both timed pair by pair in the
same interleaved rounds, and a baseline's grid re-run that way. The statistics that judge the pairs
live in analysis/compare.py."""
