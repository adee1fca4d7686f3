"""The campaign's counters, their sum over scenarios, and how they print."""

from __future__ import annotations

import json

from attrs import asdict, define, field

from tapepath.errors import AmbiguityError, TapepathError

__all__ = ["Tally"]

_MUST_BE_ZERO = (
    "records_lost",
    "records_duplicated",
    "records_foreign",
    "reads_wrong",
    "cartridges_misplaced",
    "deadline_overruns",
    "untyped_errors",
    "checks_failed",
)


@define
class Tally:
    """What a campaign (or one scenario) saw.

    Attributes:
        scenarios: scenarios run.
        sim_scenarios: of which on the virtual library.
        tgtd_scenarios: of which on tgtd.
        calls: application calls made (moves, writes, filemarks, reads, rewinds).
        faults_injected: faults that fired (FaultPlan applications, tgtd actions).
        scenarios_with_faults: scenarios in which at least one fault fired.
        recovered_transparently: of those, scenarios whose calls all returned normally.
        ambiguity_errors: typed ambiguity errors (AmbiguityError) raised.
        other_typed_errors: other TapepathError raised (no path, device errors).
        untyped_errors: any other exception (a bug: must be 0).
        records_lost: records of calls that returned, missing from the tape (must be 0).
        records_duplicated: records on a tape more often than written (must be 0).
        records_foreign: records no call wrote (must be 0).
        reads_wrong: reads that returned other data than the model (must be 0).
        cartridges_misplaced: cartridges neither where the model nor a doubted move
            put them (must be 0).
        deadline_overruns: calls that took longer than their bound (must be 0).
        checks_failed: after-scenario checks that could not read the state (must be 0).
        max_call_seconds: the longest call.
        error_names: typed error class name -> count.
        failures: one line per scenario that broke a must-be-0 counter.
    """

    scenarios: int = 0
    sim_scenarios: int = 0
    tgtd_scenarios: int = 0
    calls: int = 0
    faults_injected: int = 0
    scenarios_with_faults: int = 0
    recovered_transparently: int = 0
    ambiguity_errors: int = 0
    other_typed_errors: int = 0
    untyped_errors: int = 0
    records_lost: int = 0
    records_duplicated: int = 0
    records_foreign: int = 0
    reads_wrong: int = 0
    cartridges_misplaced: int = 0
    deadline_overruns: int = 0
    checks_failed: int = 0
    max_call_seconds: float = 0.0
    error_names: dict[str, int] = field(factory=dict)
    failures: list[str] = field(factory=list)

    @property
    def ok(self) -> bool:
        """Every must-be-0 counter is 0."""
        return all(getattr(self, name) == 0 for name in _MUST_BE_ZERO)

    def broken(self) -> list[str]:
        """The names of the must-be-0 counters that are not 0."""
        return [name for name in _MUST_BE_ZERO if getattr(self, name)]

    def add(self, other: Tally) -> None:
        """Add another tally's counts into this one."""
        for name, value in asdict(self, recurse=False).items():
            theirs = getattr(other, name)
            if name == "max_call_seconds":
                self.max_call_seconds = max(value, theirs)
            elif name == "error_names":
                for k, n in theirs.items():
                    self.error_names[k] = self.error_names.get(k, 0) + n
            elif name == "failures":
                self.failures.extend(theirs)
            else:
                setattr(self, name, value + theirs)

    def note_error(self, exc: BaseException) -> None:
        """Count an exception a call raised, by kind."""
        name = type(exc).__name__
        self.error_names[name] = self.error_names.get(name, 0) + 1
        if isinstance(exc, AmbiguityError):
            self.ambiguity_errors += 1
        elif isinstance(exc, TapepathError):
            self.other_typed_errors += 1
        else:
            self.untyped_errors += 1

    def to_json(self) -> str:
        """The counters as one JSON object (with ``ok``)."""
        data = asdict(self)
        data["ok"] = self.ok
        return json.dumps(data, sort_keys=True)

    def to_text(self) -> str:
        """The counters as aligned lines, the must-be-0 ones marked."""
        rows = [
            (
                "scenarios",
                f"{self.scenarios} ({self.sim_scenarios} sim, {self.tgtd_scenarios} tgtd)",
            ),
            ("calls", str(self.calls)),
            ("faults injected", str(self.faults_injected)),
            ("scenarios with faults", str(self.scenarios_with_faults)),
            ("recovered transparently", str(self.recovered_transparently)),
            ("typed ambiguity errors", str(self.ambiguity_errors)),
            ("other typed errors", str(self.other_typed_errors)),
            ("untyped errors (must be 0)", str(self.untyped_errors)),
            (
                "records lost or duplicated (must be 0)",
                f"{self.records_lost + self.records_duplicated}"
                f" (lost {self.records_lost}, duplicated {self.records_duplicated},"
                f" foreign {self.records_foreign}, wrong reads {self.reads_wrong})",
            ),
            ("cartridges misplaced (must be 0)", str(self.cartridges_misplaced)),
            ("calls over their deadline (must be 0)", str(self.deadline_overruns)),
            ("checks that failed (must be 0)", str(self.checks_failed)),
            ("longest call", f"{self.max_call_seconds:.3f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        if self.error_names:
            errs = ", ".join(f"{k} {v}" for k, v in sorted(self.error_names.items()))
            lines.append(f"{'errors by type':<{width}}  {errs}")
        lines.extend(f"FAILED: {f}" for f in self.failures)
        lines.append(
            "result: " + ("ok" if self.ok else "FAILED (" + ", ".join(self.broken()) + ")")
        )
        return "\n".join(lines)
