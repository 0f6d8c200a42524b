"""Subcommands of the `skewcheck` CLI; each module has add_parser(subparsers, name) and run(args)."""
