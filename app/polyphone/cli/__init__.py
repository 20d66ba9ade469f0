"""Command-line subcommands (headless)."""
