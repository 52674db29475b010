"""Ticks in PostgreSQL, and the symbol leases that split the ingest work between tasks.

Each symbol is ingested by one task at a time: the task that holds its lease in ``symbols``.
Every task heartbeats in ``workers`` and holds at most its fair share, ceil(symbols / live
tasks): a new task claims what the others release above their share, and the leases of a
task that stopped heartbeating expire and are claimed by the others. A write is fenced by the
lease (checked under the symbol's row lock in the same transaction), so two tasks never both
write a symbol, and rows no newer than the symbol's stored ``last_ts`` are skipped, so a
polled feed is never double-counted, whichever task polled it before.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..common.db import Database
from ..common.metrics import Counter
from ..common.schema import deregister, heartbeat
from .feed import Tick

SERVICE = "data-ingestion"


@dataclass(frozen=True)
class Lease:
    """A symbol this task ingests, with the last stored price and time (to resume from)."""

    symbol: str
    last_price: float | None
    last_ts: float | None


class TickStore:
    """The ``symbols`` and ``ticks`` tables as this task sees them."""

    def __init__(
        self,
        db: Database,
        *,
        worker_id: str,
        window: int,
        max_symbols: int = 500,
        lease_seconds: float = 15.0,
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self.window = window
        self.max_symbols = max_symbols
        self.lease_seconds = lease_seconds
        self.ingested = Counter()
        self.rejected_new_symbols = 0
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._refused: set[str] = set()
        self.leases: dict[str, Lease] = {}
        self.live_workers = 1

    @property
    def known(self) -> frozenset[str]:
        """Symbols in the table, as of the last register or rebalance."""
        with self._lock:
            return frozenset(self._known)

    def register(self, symbols: Iterable[str]) -> int:
        """Add new symbols to the work list, up to ``max_symbols`` in all; returns how many
        this call added (refused ones count in ``rejected_new_symbols``, once each)."""
        wanted = sorted(set(symbols) - self.known - self._refused)
        if not wanted:
            return 0
        with self.db.write() as conn:
            existing = {row[0] for row in conn.run("SELECT symbol FROM symbols")}
            new = [s for s in wanted if s not in existing]
            room = max(self.max_symbols - len(existing), 0)
            if new[:room]:
                conn.run(
                    "INSERT INTO symbols (symbol) SELECT unnest(CAST(:symbols AS text[])) "
                    "ON CONFLICT DO NOTHING",
                    symbols=new[:room],
                )
        self.rejected_new_symbols += len(new[room:])
        with self._lock:
            self._refused |= set(new[room:])
            self._known |= existing | set(new[:room])
        return len(new[:room])

    def rebalance(self) -> dict[str, Lease]:
        """Heartbeat, renew this task's leases, give back what is above its fair share and
        claim free or expired symbols up to it. Returns the leases now held."""
        ttl = self.lease_seconds
        with self.db.write() as conn:
            live = heartbeat(conn, SERVICE, self.worker_id, ttl)
            symbols = [row[0] for row in conn.run("SELECT symbol FROM symbols")]
            fair = math.ceil(len(symbols) / live)
            mine = conn.run(
                "UPDATE symbols SET lease_expires_at = now() + make_interval(secs => :ttl) "
                "WHERE owner = :me RETURNING symbol, last_price, last_ts",
                ttl=ttl,
                me=self.worker_id,
            )
            mine.sort()
            if len(mine) > fair:
                extra = [row[0] for row in mine[fair:]]
                mine = mine[:fair]
                conn.run(
                    "UPDATE symbols SET owner = NULL, lease_expires_at = NULL "
                    "WHERE symbol = ANY(CAST(:extra AS text[])) AND owner = :me",
                    extra=extra,
                    me=self.worker_id,
                )
            elif len(mine) < fair:
                mine += conn.run(
                    "UPDATE symbols SET owner = :me, "
                    "lease_expires_at = now() + make_interval(secs => :ttl) "
                    "WHERE symbol IN (SELECT symbol FROM symbols "
                    "WHERE owner IS NULL OR lease_expires_at < now() "
                    "ORDER BY symbol LIMIT :wanted FOR UPDATE SKIP LOCKED) "
                    "RETURNING symbol, last_price, last_ts",
                    me=self.worker_id,
                    ttl=ttl,
                    wanted=fair - len(mine),
                )
        leases = {row[0]: Lease(row[0], row[1], row[2]) for row in mine}
        with self._lock:
            self._known = set(symbols)
            self.leases = leases
            self.live_workers = live
        return leases

    def add(self, ticks: Iterable[Tick]) -> int:
        """Store the ticks of symbols this task leases that are newer than the stored ones;
        returns how many were stored. The window is trimmed in the same transaction."""
        by_symbol: dict[str, list[Tick]] = {}
        for tick in ticks:
            by_symbol.setdefault(tick.symbol, []).append(tick)
        if not by_symbol:
            return 0
        with self.db.write() as conn:
            held = conn.run(
                "SELECT symbol, last_ts FROM symbols WHERE symbol = ANY(CAST(:symbols AS text[])) "
                "AND owner = :me AND lease_expires_at > now() ORDER BY symbol FOR UPDATE",
                symbols=sorted(by_symbol),
                me=self.worker_id,
            )
            fresh = _newer(by_symbol, {row[0]: row[1] for row in held})
            if fresh:
                _insert(conn, fresh)
                self._trim(conn, sorted({t.symbol for t in fresh}))
        self.ingested.add(len(fresh))
        return len(fresh)

    def _trim(self, conn: Any, symbols: list[str]) -> None:
        """Keep the newest ``window`` ticks of each symbol (index scans on (symbol, id))."""
        conn.run(
            "DELETE FROM ticks t USING ("
            "  SELECT s.symbol, (SELECT id FROM ticks WHERE symbol = s.symbol "
            "    ORDER BY id DESC OFFSET :window LIMIT 1) AS cutoff "
            "  FROM unnest(CAST(:symbols AS text[])) AS s (symbol)"
            ") c WHERE t.symbol = c.symbol AND t.id <= c.cutoff",
            window=self.window,
            symbols=symbols,
        )

    def release(self) -> None:
        """Give every lease back and leave the registry (at shutdown), so the remaining tasks
        take the symbols over at their next rebalance instead of after the lease expires."""
        with self.db.write() as conn:
            conn.run(
                "UPDATE symbols SET owner = NULL, lease_expires_at = NULL WHERE owner = :me",
                me=self.worker_id,
            )
            deregister(conn, SERVICE, self.worker_id)
        with self._lock:
            self.leases = {}

    def recent(self, symbol: str, limit: int) -> tuple[list[Tick], int] | None:
        """The newest ``limit`` ticks, oldest first, and the lifetime count; None if unknown."""
        with self.db.read() as conn:
            rows = conn.run(
                "SELECT s.ticks_total, t.price, t.size, t.ts FROM symbols s "
                "LEFT JOIN LATERAL (SELECT id, price, size, ts FROM ticks "
                "  WHERE symbol = s.symbol ORDER BY id DESC LIMIT :limit) t ON true "
                "WHERE s.symbol = :symbol ORDER BY t.id",
                symbol=symbol,
                limit=limit,
            )
        if not rows or rows[0][1] is None:
            return None
        return [Tick(symbol, r[1], r[2], r[3]) for r in rows], int(rows[0][0])

    def symbols(self) -> list[dict[str, Any]]:
        """A summary per symbol that has ticks."""
        with self.db.read() as conn:
            rows = conn.run(
                "SELECT symbol, ticks_total, LEAST(ticks_total, :window), last_price, last_ts "
                "FROM symbols WHERE ticks_total > 0 ORDER BY symbol",
                window=self.window,
            )
        return [
            {
                "symbol": r[0],
                "ticks_total": int(r[1]),
                "window": int(r[2]),
                "last_price": r[3],
                "last_ts": r[4],
            }
            for r in rows
        ]


def _newer(by_symbol: Mapping[str, list[Tick]], held: Mapping[str, float | None]) -> list[Tick]:
    """Ticks of held symbols newer than the stored ``last_ts`` (trades sharing a timestamp
    within one batch all count)."""
    fresh = []
    for symbol, last_ts in held.items():
        fresh += [t for t in by_symbol[symbol] if last_ts is None or t.ts > last_ts]
    return fresh


def _insert(conn: Any, ticks: list[Tick]) -> None:
    conn.run(
        "INSERT INTO ticks (symbol, price, size, ts) SELECT * FROM unnest("
        "CAST(:symbols AS text[]), CAST(:prices AS float8[]), CAST(:sizes AS int8[]), "
        "CAST(:ts AS float8[]))",
        symbols=[t.symbol for t in ticks],
        prices=[float(t.price) for t in ticks],
        sizes=[int(t.size) for t in ticks],
        ts=[float(t.ts) for t in ticks],
    )
    latest: dict[str, Tick] = {}
    counts: dict[str, int] = {}
    for tick in ticks:  # the newest by ts; a later row wins a tie, as it arrived later
        if tick.symbol not in latest or tick.ts >= latest[tick.symbol].ts:
            latest[tick.symbol] = tick
        counts[tick.symbol] = counts.get(tick.symbol, 0) + 1
    names = sorted(latest)
    conn.run(
        "UPDATE symbols s SET ticks_total = s.ticks_total + u.n, last_price = u.price, "
        "last_ts = u.ts FROM unnest(CAST(:symbols AS text[]), CAST(:counts AS int8[]), "
        "CAST(:prices AS float8[]), CAST(:ts AS float8[])) AS u (symbol, n, price, ts) "
        "WHERE s.symbol = u.symbol",
        symbols=names,
        counts=[counts[s] for s in names],
        prices=[float(latest[s].price) for s in names],
        ts=[float(latest[s].ts) for s in names],
    )
