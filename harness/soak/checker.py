"""What the ledger applied, against what the clients sent and learned: pure logic, no I/O.

Input: every request id the clients sent (its operands, whether any answer acknowledged it, and the
other operands it was deliberately reused with), the applied entries of `/v1/entries`, `/v1/total` and
the `total` file. Rules:

- an acknowledged id is applied exactly once, with its operands (else *lost* or *duplicated*);
- an id whose outcome the client never learned is applied at most once;
- no entry names an id that was never sent, or operands never sent with it, or a wrong sum (*phantom*);
- an id's conflicting reuse (same id, other operands) is never what was applied (*conflicts counted*);
- the total and count of `/v1/total` equal the sum and number of the entries, and so does the file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sent:
    """One client-chosen request id (canonical form) and what its client knows about it."""

    a: int
    b: int
    acknowledged: bool = False
    conflicts: set[tuple[int, int]] = field(default_factory=set)
    # Unacknowledged when a Kafka log started again: its event may have been in the lost log, unread,
    # and a later retry may be acknowledged from a sum service's idempotency record without a new event.
    # Lost, it is reported as lost_with_log (a known limit in docs/guarantees.md), not as lost.
    at_risk: bool = False
    # A conflicting reuse was accepted by a replica that did not know the id (each replica keeps its own
    # idempotency record): that replica then refuses the original operands as a conflict.
    conflict_accepted: bool = False


RETRIABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


def answer_allowed(kind: str, code: str, sent: Sent, *, first_attempt: bool, stopping: bool) -> bool:
    """Whether the contract allows `code` (a status name; WRONG_SUM for an OK with another sum,
    REPLAYED for an OK marked replayed) as one attempt's answer to a `kind` request ("new", "duplicate"
    or "conflict") for `sent`'s id. A fresh id is never refused as a conflict nor answered as a replay
    on its first attempt; CANCELLED only comes while the run is stopping; anything else (INTERNAL,
    UNKNOWN, a wrong sum, ...) is never allowed for a valid request."""
    if code in RETRIABLE or code == "OK":
        return True
    if code == "REPLAYED":  # replayed is true only where this replica already knew the id
        return not (kind == "new" and first_attempt)
    if code == "CANCELLED":
        return stopping
    if code == "ALREADY_EXISTS":
        return kind == "conflict" or (kind == "duplicate" and sent.conflict_accepted)
    return False


@dataclass(frozen=True)
class Verdict:
    sent_ids: int
    acknowledged: int
    unknown_outcome: int
    unknown_applied: int
    entries: int
    lost: int
    lost_with_log: int
    duplicated: int
    phantom: int
    conflicts_counted: int
    total: int
    entries_total: int
    total_file: str | None
    total_matches_entries: bool
    total_file_matches: bool
    examples: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return (
            self.lost == self.duplicated == self.phantom == self.conflicts_counted == 0
            and self.total_matches_entries
            and self.total_file_matches
        )


EXAMPLES = 5


def check(
    sent: Mapping[str, Sent],
    entries: Iterable[Mapping[str, Any]],
    total: Mapping[str, Any],
    total_file: str | None,
) -> Verdict:
    """Judge `entries` (as `/v1/entries` returns them), `total` (as `/v1/total` does) and the text of the
    `total` file (None when it could not be read) against `sent`."""
    examples: dict[str, list[str]] = {
        "lost": [],
        "lost_with_log": [],
        "duplicated": [],
        "phantom": [],
        "conflicts_counted": [],
    }

    def note(kind: str, text: str) -> None:
        if len(examples[kind]) < EXAMPLES:
            examples[kind].append(text)

    per_id: Counter[str] = Counter()
    applied_right: set[str] = set()
    phantom = conflicts_counted = count = entries_total = 0
    for entry in entries:
        count += 1
        request_id, a, b, entry_sum = entry["request_id"], int(entry["a"]), int(entry["b"]), int(entry["sum"])
        entries_total += entry_sum
        per_id[request_id] += 1
        if per_id[request_id] == 2:
            note("duplicated", request_id)
        known = sent.get(request_id)
        if known is None or entry_sum != a + b:
            phantom += 1
            note("phantom", f"{request_id} a={a} b={b} sum={entry_sum}")
        elif (a, b) == (known.a, known.b):
            applied_right.add(request_id)
        elif (a, b) in known.conflicts:
            conflicts_counted += 1
            note("conflicts_counted", f"{request_id} applied a={a} b={b}, sent first a={known.a} b={known.b}")
        else:
            phantom += 1
            note("phantom", f"{request_id} a={a} b={b} never sent with this id")
    missing = [rid for rid, s in sent.items() if s.acknowledged and rid not in applied_right]
    lost_ids = [rid for rid in missing if not sent[rid].at_risk]
    for rid in lost_ids[:EXAMPLES]:
        note("lost", rid)
    for rid in [rid for rid in missing if sent[rid].at_risk][:EXAMPLES]:
        note("lost_with_log", rid)
    total_value = int(total["total"])
    file_text = None if total_file is None else total_file.strip()
    acknowledged = sum(1 for s in sent.values() if s.acknowledged)
    return Verdict(
        sent_ids=len(sent),
        acknowledged=acknowledged,
        unknown_outcome=len(sent) - acknowledged,
        unknown_applied=sum(1 for rid, s in sent.items() if not s.acknowledged and rid in per_id),
        entries=count,
        lost=len(lost_ids),
        lost_with_log=len(missing) - len(lost_ids),
        duplicated=sum(n - 1 for n in per_id.values()),
        phantom=phantom,
        conflicts_counted=conflicts_counted,
        total=total_value,
        entries_total=entries_total,
        total_file=file_text,
        total_matches_entries=total_value == entries_total and int(total["count"]) == count,
        total_file_matches=file_text == str(total_value),
        examples={k: v for k, v in examples.items() if v},
    )
