"""`dsar`: the command line (CONTRACT.md, Commands); `api.cli.main` holds the entry point."""
