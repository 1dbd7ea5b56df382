"""Declares a task whose implementation module lacks the function."""

from taskline import Params, declare

LOST = declare("lost", params=Params, implementation="tests.packages.unimplemented.work:lost")
