"""A package no test lists in TASKLINE_TASK_PACKAGES."""

from taskline import Params, declare

GHOST = declare("ghost", params=Params, implementation="tests.packages.orphan.work:ghost")
