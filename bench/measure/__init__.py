"""What is measured about a training step: synchronized time, memory (graph bytes, CUDA peaks, NVML,
RSS), FLOPs and the deterministic counters, profiler summaries, and the machine they ran on.
`step.measure` turns one config into one runs.csv row; it never writes files."""
