"""Every script under taskline/core/lua/ is driven by a state machine: a new script fails here
until a machine has a rule for it (the brief of the machines: model every transition, not only the
ones a change touched)."""

import re
from pathlib import Path

from taskline.core.transitions import LUA

MACHINES = Path(__file__).parent.parent / "integration"

# Each script, the machine that drives it and the core.transitions methods its rules call
# (`results`: the result backend's writes).
COVERED = {
    "create": ("test_record_machine.py", ["create"]),
    "edit": ("test_record_machine.py", ["edit"]),
    "release": ("test_record_machine.py", ["release"]),
    "cancel": ("test_record_machine.py", ["cancel"]),
    "delete": ("test_record_machine.py", ["delete"]),
    "confirm": ("test_record_machine.py", ["confirm"]),
    "claim": ("test_record_machine.py", ["claim"]),
    "progress": ("test_record_machine.py", ["progress"]),
    "page": ("test_record_machine.py", ["page"]),
    "renew": ("test_record_machine.py", ["renew"]),
    "finish": ("test_record_machine.py", ["finish"]),
    "retry": ("test_record_machine.py", ["retry"]),
    "recover": ("test_record_machine.py", ["recover"]),
    "reissue": ("test_record_machine.py", ["reissue"]),
    "read": ("test_record_machine.py", ["read"]),
    "head": ("test_record_machine.py", ["head"]),
    "store_result": ("test_record_machine.py", ["store"]),
    "signin": (
        "test_access_machine.py",
        ["signin", "signin_begin", "signin_failed", "signed_in"],
    ),
    "allowance": ("test_access_machine.py", ["serial_check"]),
    "issue_token": ("test_access_machine.py", ["issue_token"]),
    "revoke_tokens": ("test_access_machine.py", ["revoke_tokens"]),
}


def test_every_script_has_a_machine() -> None:
    scripts = {path.stem for path in LUA.glob("*.lua")} - {"task"}  # task.lua: shared helpers
    assert scripts == set(COVERED), "map the new script to the machine rules that drive it"


def test_every_mapped_rule_calls_its_script() -> None:
    for script, (machine, methods) in COVERED.items():
        source = (MACHINES / machine).read_text()
        # A machine of several lines calls through a line's transitions: `self.on[line].x(`,
        # `self._of(task_id).x(`.
        called = set(re.findall(r"(?:transitions|results|on\[\w+\]|_of\(\w+\))\.(\w+)\(", source))
        assert set(methods) <= called, f"{script}: {machine} never calls {set(methods) - called}"
