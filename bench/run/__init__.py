"""How configs run: executors (a fresh process per config, inline, Slurm), the worker processes and
their pipe protocol, the sweep loop that writes each row as it arrives, interleaved rounds, the
max-n_mc search and the dry run's estimate."""
