"""Declares a name the built-ins already declare."""

from taskline import Params, declare

REVERSE_AGAIN = declare("reverse", params=Params, implementation="tests.packages.duplicate:x")
