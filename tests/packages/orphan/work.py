from taskline import Context, Params, implements
from tests.packages.orphan import FINE
from tests.packages.unloaded import GHOST


@implements(FINE)
def fine(context: Context, params: Params) -> str:
    return "fine"


@implements(GHOST)
def ghost(context: Context, params: Params) -> str:
    return "boo"
