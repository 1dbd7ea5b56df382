"""A params model with a field JSON cannot describe."""

from pydantic import ConfigDict

from taskline import Params, declare


class Opaque:
    pass


class OpaqueParams(Params):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    thing: Opaque | None = None


OPAQUE = declare("opaque", params=OpaqueParams, implementation="tests.packages.no_schema.work:f")
