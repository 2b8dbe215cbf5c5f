"""Fault injection: which requests the emulator answers with an error, drops, or delays.

A fault spec is a comma-separated list of ``[route:]key=value`` items, e.g.::

    429=0.1,500=0.05,503=0.05,drop=0.1,latency_ms=20,seed=7
    parts:429=0.2,complete:drop_after=x1

Fault types (value = probability in [0, 1] per matching request, or ``xN`` = exactly the next N
matching requests, which keeps tests deterministic):

``429``
    rate limited: code ``rate_limit_exceeded``, with ``retry-after`` (whole seconds, >= 1) and
    ``retry-after-ms`` headers.
``429_quota`` (alias ``quota``)
    429 with code ``insufficient_quota`` and no retry hint: not transient.
``500``, ``503``
    OpenAI-shaped server errors. ``502``: an HTML page, as a load balancer sends.
``drop``
    the connection is closed before the request has any effect: requests with a body are
    dropped mid-body (after about half of it was read); nothing is stored.
``drop_after``
    the request is fully processed (a part or file *is* stored, an upload *is* completed), then the
    connection is closed instead of sending the response: the client sees a connection error
    for a request that succeeded, as when a response is lost on the way back.

All types except ``drop_after`` are decided before the request has side effects.

Other keys: ``latency_ms=N`` adds N ms to every matching response (not random);
``retry_after=S`` sets the delay the 429s announce (seconds, default 0.05);
``seed=N`` seeds the dice.

Routes (default: all): ``create_file``, ``list_files``, ``retrieve_file``, ``delete_file``,
``file_content``, ``create_upload``, ``add_part`` (alias ``parts``), ``complete_upload``
(alias ``complete``), ``cancel_upload`` (alias ``cancel``), ``create_batch``,
``retrieve_batch``, ``list_batches``, ``cancel_batch``, and the groups ``files``, ``uploads``,
``batches``, ``all`` (alias ``*``). ``create_batch:drop_after=x1`` is a lost response to a
batch that was created.

One request gets at most one fault: counted (``xN``) rules are served first, then one roll of
the dice is matched against the probabilities of the matching rules in spec order.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

FAULT_TYPES = ("429", "429_quota", "500", "502", "503", "drop", "drop_after")
FAULT_TYPE_ALIASES = {"quota": "429_quota", "insufficient_quota": "429_quota"}

ROUTES = (
    "create_file",
    "list_files",
    "retrieve_file",
    "delete_file",
    "file_content",
    "create_upload",
    "add_part",
    "complete_upload",
    "cancel_upload",
    "create_batch",
    "retrieve_batch",
    "list_batches",
    "cancel_batch",
)
ROUTE_GROUPS: dict[str, frozenset[str]] = {
    "all": frozenset(ROUTES),
    "*": frozenset(ROUTES),
    "files": frozenset(r for r in ROUTES if r.endswith(("_file", "_files")) or r == "file_content"),
    "uploads": frozenset({"create_upload", "add_part", "complete_upload", "cancel_upload"}),
    "parts": frozenset({"add_part"}),
    "complete": frozenset({"complete_upload"}),
    "cancel": frozenset({"cancel_upload"}),
    "batches": frozenset({"create_batch", "retrieve_batch", "list_batches", "cancel_batch"}),
}
DEFAULT_RETRY_AFTER_S = 0.05


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed; the message names the bad item."""


@dataclass
class FaultRule:
    """One ``[route:]type=value`` item.

    :param routes: the routes it applies to.
    :param fault_type: one of :data:`FAULT_TYPES`.
    :param probability: chance per matching request (ignored when ``remaining`` is set).
    :param remaining: for ``xN`` rules, how many matching requests still get the fault.
    """

    routes: frozenset[str]
    fault_type: str
    probability: float = 0.0
    remaining: int | None = None


@dataclass
class FaultPlan:
    """A parsed fault spec plus its dice.

    :param rules: fault rules in spec order.
    :param latency_ms: added latency per route.
    :param retry_after_s: delay announced by injected 429s.
    :param seed: seed of the dice (None: unseeded).
    :param spec: the text it was parsed from.
    """

    rules: list[FaultRule] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    retry_after_s: float = DEFAULT_RETRY_AFTER_S
    seed: int | None = None
    spec: str = ""

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    @classmethod
    def parse(cls, spec: str, seed: int | None = None) -> FaultPlan:
        """Parse a fault spec; ``seed`` is overridden by a ``seed=`` item in the spec.

        :raises FaultSpecError: naming the first item that is not understood.
        """
        rules: list[FaultRule] = []
        latency: dict[str, float] = {}
        retry_after_s = DEFAULT_RETRY_AFTER_S
        for raw_item in spec.split(","):
            item = raw_item.strip()
            if not item:
                continue
            if "=" not in item:
                raise FaultSpecError(f"fault spec item {item!r} is not of the form [route:]key=value")
            target, value = (part.strip() for part in item.split("=", 1))
            route_name, _, key = target.rpartition(":")
            routes = _routes(route_name or "all", item)
            key = FAULT_TYPE_ALIASES.get(key, key)
            if key == "seed":
                seed = int(_number(value, item, int))
            elif key == "retry_after":
                retry_after_s = _number(value, item, float)
                if retry_after_s < 0:
                    raise FaultSpecError(f"fault spec item {item!r}: retry_after must be >= 0")
            elif key == "latency_ms":
                ms = _number(value, item, float)
                if ms < 0:
                    raise FaultSpecError(f"fault spec item {item!r}: latency_ms must be >= 0")
                for route in routes:
                    latency[route] = latency.get(route, 0.0) + ms
            elif key in FAULT_TYPES:
                if value.startswith("x"):
                    count = int(_number(value[1:], item, int))
                    if count < 0:
                        raise FaultSpecError(f"fault spec item {item!r}: count must be >= 0")
                    rules.append(FaultRule(routes, key, remaining=count))
                else:
                    probability = _number(value, item, float)
                    if not 0.0 <= probability <= 1.0:
                        raise FaultSpecError(f"fault spec item {item!r}: probability must be in [0, 1]")
                    rules.append(FaultRule(routes, key, probability=probability))
            else:
                known = ", ".join((*FAULT_TYPES, "latency_ms", "retry_after", "seed"))
                raise FaultSpecError(f"fault spec item {item!r}: unknown key {key!r} (known: {known})")
        return cls(rules=rules, latency_ms=latency, retry_after_s=retry_after_s, seed=seed, spec=spec)

    def decide(self, route: str) -> str | None:
        """The fault type to inject into one request on ``route``, or None."""
        with self._lock:
            chosen: str | None = None
            for rule in self.rules:
                if rule.remaining is not None and rule.remaining > 0 and route in rule.routes:
                    rule.remaining -= 1
                    chosen = rule.fault_type
                    break
            if chosen is None:
                roll = self._random.random()
                cumulative = 0.0
                for rule in self.rules:
                    if rule.remaining is None and route in rule.routes and rule.probability > 0:
                        cumulative += rule.probability
                        if roll < cumulative:
                            chosen = rule.fault_type
                            break
            if chosen is not None:
                self.injected[chosen] = self.injected.get(chosen, 0) + 1
            return chosen

    def added_latency_ms(self, route: str) -> float:
        return self.latency_ms.get(route, 0.0)

    def describe(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "seed": self.seed,
            "retry_after_s": self.retry_after_s,
            "latency_ms": dict(self.latency_ms),
            "rules": [
                {
                    "routes": sorted(rule.routes),
                    "type": rule.fault_type,
                    "probability": rule.probability,
                    "remaining": rule.remaining,
                }
                for rule in self.rules
            ],
            "injected": dict(self.injected),
        }


def _routes(name: str, item: str) -> frozenset[str]:
    if name in ROUTE_GROUPS:
        return ROUTE_GROUPS[name]
    if name in ROUTES:
        return frozenset({name})
    known = ", ".join((*ROUTES, *ROUTE_GROUPS))
    raise FaultSpecError(f"fault spec item {item!r}: unknown route {name!r} (known: {known})")


def _number(text: str, item: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise FaultSpecError(f"fault spec item {item!r}: {text!r} is not a number") from None
