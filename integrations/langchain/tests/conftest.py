"""The tests folder is on sys.path (pytest's prepend import mode), so tests share ``lc_tiny``."""
