"""A right package whose implementation refuses to be imported anywhere but in a worker."""

from taskline import Params, declare

GUARDED = declare("guarded", params=Params, implementation="tests.packages.guarded.work:guarded")
