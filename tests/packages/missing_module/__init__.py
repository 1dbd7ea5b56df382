"""Declares a task whose implementation module does not exist."""

from taskline import Params, declare

NOWHERE = declare("nowhere", params=Params, implementation="tests.packages.missing_module.gone:f")
