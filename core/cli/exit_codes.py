"""Exit statuses of every `pneumoscan-cli` command (scripts and the PACS service depend on them)."""
EXIT_OK = 0
EXIT_FAILURE = 1  # the work failed (unreadable model, store, network...)
EXIT_USAGE = 2  # bad arguments or input: the message says which
