SELECT __schema__.rollup_terminal_counts(%(lag)s::interval)
