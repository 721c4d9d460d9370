# Record of what was run on 2026-11-30 (from 15:00 UTC, here and in ../gate-trials-paired-v3-20261130/) on the 2-vCPU Intel Xeon VM (paths of that machine); kept as evidence, not maintained: it uses the module layout of that time (workers ran as `python -m bench.rounds`).
"""Sample which CPU each paired worker is running on (state R), by side, every 50 ms."""
import os, time, sys, collections, json
end = time.time() + float(sys.argv[1])
counts = collections.Counter()
while time.time() < end:
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            cmd = open(f'/proc/{pid}/cmdline','rb').read().split(b'\0')
            if b'bench.rounds' not in cmd: continue
            st = open(f'/proc/{pid}/stat').read().rsplit(')',1)[1].split()
            state, cpu = st[0], int(st[36])
            cwd = os.readlink(f'/proc/{pid}/cwd')
        except OSError:
            continue
        if state == 'R':
            side = 'base' if "bnn-bench-base" in cwd else 'cand'
            counts[(side, cpu)] += 1
    time.sleep(0.05)
print(json.dumps({f'{s} cpu{c}': n for (s, c), n in sorted(counts.items())}))
