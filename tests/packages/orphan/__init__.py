"""Its implementation module also implements a task no loaded package declares."""

from taskline import Params, declare

FINE = declare("fine", params=Params, implementation="tests.packages.orphan.work:fine")
