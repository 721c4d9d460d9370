"""From one config to one ready training run: the single builder every command uses (sweep, train,
maxnmc, profile, check's counters, the peers) and the speed levers it applies."""
