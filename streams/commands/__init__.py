"""Subcommands of `gdx`: each module registers its own parser and handler."""
