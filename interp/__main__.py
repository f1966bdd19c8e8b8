from interp.cli import entry

entry()
