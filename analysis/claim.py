"""One claim of the guidelines: a typed record whose `to_json()` is the guidelines.json contract (ARCHITECTURE.md:
metric, kind, subject, reference, estimate, ci_low, ci_high, p_adj, test, family, n_networks, n_images, n_patients,
then the kind's own fields). It reads like a mapping (`c["kind"]`, `c.get("factor")`) so the renderers stay plain;
it is never changed in place (`replace`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

KINDS = ("factor_importance", "best", "better", "worse", "equivalent", "undecided", "depends",
         "insufficient_replication")


@dataclass(frozen=True, eq=False)
class Claim(Mapping):
    metric: str
    kind: str
    subject: Any
    reference: Any
    estimate: float
    ci_low: float
    ci_high: float
    p_adj: float
    test: str
    family: str
    n_networks: int
    n_images: int
    n_patients: int
    details: dict = field(default_factory=dict)  # the kind's own fields (population, tied, factor, would_be, …)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @classmethod
    def of(cls, values: Mapping) -> Claim:
        """A claim from its fields as one mapping (the contract's and the kind's own)."""
        names = CONTRACT
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"claim {dict(values).get('kind')!r} lacks {', '.join(missing)}")
        return cls(**{n: values[n] for n in names}, details={k: v for k, v in values.items() if k not in names})

    def replace(self, **changes) -> Claim:
        """This claim with some fields changed (contract or kind's own)."""
        return Claim.of({**self, **changes})

    def to_json(self) -> dict:
        """The guidelines.json object: the contract's fields, then the kind's own."""
        return {**{n: getattr(self, n) for n in CONTRACT}, **self.details}

    def __getitem__(self, key: str):
        if key in CONTRACT:
            return getattr(self, key)
        return self.details[key]

    def __iter__(self) -> Iterator[str]:
        return iter((*CONTRACT, *self.details))

    def __len__(self) -> int:
        return len(CONTRACT) + len(self.details)

    def __eq__(self, other) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    __hash__ = None


CONTRACT = tuple(f.name for f in fields(Claim) if f.name != "details")
