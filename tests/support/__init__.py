"""Helpers the tests share that are no tests themselves: the virtual clock (clock.py)."""
