"""The facts one batch of events needs, loaded in bulk and kept in memory.

Processing an event reads a handful of related facts (the click a token names, the installs
and clicks of a device, the friend of a user id, the sightings of a hash...). Reading them
one query at a time costs more than everything else an event does, so :class:`Facts` loads
each kind for a whole batch with one ``IN`` query per kind (``ensure_*``), indexes the rows,
and takes the batch's new rows into the same indexes. Writes are collected and made at the
end with one ``executemany`` per table (:meth:`Facts.write`).

Rows are plain dicts of column values, read and written on the driver's cursor
(:mod:`parrain.db.rows`): SQLAlchemy's work per statement cost more than the database's.
Every lookup loads what is missing first, so a lookup is never wrong for want of a preload;
the preloads only make it cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, MetaData, Table
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from parrain.campaigns.models import Campaign
from parrain.db.rows import rows_of
from parrain.db.session import DriverCursor
from parrain.referrals.models import (
    Click,
    Closure,
    Enrolment,
    Friend,
    Install,
    Order,
    Reward,
    Sighting,
)

Row = dict[str, Any]
MarketKey = tuple[str, str]

#: The most values one ``IN`` list carries (SQLite allows 32,766 bound parameters).
CHUNK = 500

_CLICKS: Table = Click.__table__  # type: ignore[assignment]
_CLOSURES: Table = Closure.__table__  # type: ignore[assignment]
_ENROLMENTS: Table = Enrolment.__table__  # type: ignore[assignment]
_FRIENDS: Table = Friend.__table__  # type: ignore[assignment]
_INSTALLS: Table = Install.__table__  # type: ignore[assignment]
_ORDERS: Table = Order.__table__  # type: ignore[assignment]
_REWARDS: Table = Reward.__table__  # type: ignore[assignment]
_SIGHTINGS: Table = Sighting.__table__  # type: ignore[assignment]
_CAMPAIGNS: Table = Campaign.__table__  # type: ignore[assignment]
#: The campaign columns :mod:`parrain.db.rows` converts (all but the JSON ones); the only
#: :func:`~parrain.db.rows.rows_of` table named ``campaigns`` (the whole table has JSON).
_CAMPAIGN_COLUMNS = Table(
    _CAMPAIGNS.name,
    MetaData(),
    *(
        Column(column.name, column.type)
        for column in _CAMPAIGNS.columns
        if not isinstance(column.type, JSON)
    ),
)

#: The friend columns that evaluation derives; written back for the friends it changed.
FRIEND_STATE = (
    "new_customer",
    "seen_before",
    "install_id",
    "enrolment_id",
    "campaign_id",
    "attribution_reason",
    "status",
    "status_reason",
    "qualified_at",
    "not_credited_at",
    "disqualified_at",
    "disqualified_reason",
)
ORDER_STATE = (
    "user_hash",
    "amount_minor",
    "currency",
    "status",
    "ordered_at",
    "refunded_minor",
    "fully_refunded",
    "refunded_at",
    "charged_back_at",
)


def chunks(values: Collection[Any]) -> Iterator[list[Any]]:
    ordered = list(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


class Facts:
    """Indexes of the rows a batch touches, loaded on demand in bulk (see the module doc)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._dialect = session.get_bind().dialect.name
        self.campaigns: dict[UUID, Campaign] = {}
        self.enrolments: dict[UUID, Row] = {}
        self.enrolment_by_code: dict[str, Row] = {}
        self.clicks: dict[UUID, Row] = {}
        self.click_by_token: dict[str, Row] = {}
        self.clicks_by_device: defaultdict[str, list[Row]] = defaultdict(list)
        self.installs_by_device: defaultdict[MarketKey, list[Row]] = defaultdict(list)
        self.friends: dict[UUID, Row] = {}
        self.friend_by_user: dict[MarketKey, Row] = {}
        self.friends_by_device: defaultdict[MarketKey, list[Row]] = defaultdict(list)
        self.friends_by_email: defaultdict[MarketKey, list[Row]] = defaultdict(list)
        self.order_by_ref: dict[MarketKey, Row] = {}
        self.orders_by_user: defaultdict[MarketKey, list[Row]] = defaultdict(list)
        self.closure_by_user: dict[MarketKey, Row] = {}
        self.sightings: defaultdict[tuple[str, str, str], list[Row]] = defaultdict(list)
        self.posted_release: dict[UUID, Any] = {}
        #: The member id of each (market, user hash) a batch's signups need.
        self.member_ids: dict[MarketKey, UUID] = {}
        self._loaded: defaultdict[str, set[Any]] = defaultdict(set)
        self._new: defaultdict[str, list[Row]] = defaultdict(list)
        self._dirty_friends: set[UUID] = set()
        self._dirty_orders: set[UUID] = set()

    # Loading

    def _missing(self, kind: str, keys: Iterable[Any]) -> list[Any]:
        loaded = self._loaded[kind]
        missing = [key for key in set(keys) if key is not None and key not in loaded]
        loaded.update(missing)
        return missing

    def _select(
        self,
        table: Table,
        column: str,
        values: Sequence[Any],
        kinds: Sequence[str] = (),
        **equal: Any,
    ) -> list[Row]:
        if not values:
            return []
        rows: list[Row] = []
        reader = rows_of(table, self._dialect)
        with DriverCursor.of(self.session) as cursor:
            for part in chunks(values):
                rows.extend(
                    reader.select(
                        cursor,
                        column=column,
                        values=part,
                        equal=equal,
                        among={"kind": kinds} if kinds else None,
                    )
                )
        return rows

    def _select_in_market(
        self,
        table: Table,
        column: str,
        keys: Sequence[tuple[Any, ...]],
        kinds: Sequence[str] = (),
        **equal: Any,
    ) -> list[Row]:
        """Rows whose (market, column) is one of ``keys``: one query per market, so that the
        (market, column) indexes serve it."""
        by_market: defaultdict[str, list[Any]] = defaultdict(list)
        for market, value in keys:
            by_market[market].append(value)
        rows: list[Row] = []
        for market, values in sorted(by_market.items()):
            rows.extend(self._select(table, column, values, kinds, market=market, **equal))
        return rows

    def ensure_campaigns(self, ids: Iterable[UUID | None]) -> None:
        """Campaigns are ORM objects (the prize path and the campaigns service take them),
        shared through the session's identity map: one already there is used as it is (as
        a query would return it); the others are read on the driver's cursor and put in the
        identity map as if a query had loaded them (SQLAlchemy's ORM load cost a single
        event's transaction about a tenth of its time)."""
        missing = self._missing("campaigns", ids)
        identity_map = self.session.identity_map
        unknown: list[UUID] = []
        for campaign_id in missing:
            known = identity_map.get(identity_key(Campaign, campaign_id))
            if isinstance(known, Campaign):
                self.campaigns[campaign_id] = known
            else:
                unknown.append(campaign_id)
        for row in self._select(_CAMPAIGN_COLUMNS, "id", unknown):
            campaign = Campaign(**row)
            # Its values are the stored ones: detached then added, it is persistent and
            # unmodified; the columns not read (JSON) load on first access.
            make_transient_to_detached(campaign)
            self.session.add(campaign)
            self.campaigns[campaign.id] = campaign

    def _take_enrolment(self, row: Row) -> None:
        if row["id"] not in self.enrolments:
            self.enrolments[row["id"]] = row
            self.enrolment_by_code[row["code"]] = row
            self._loaded["enrolment_ids"].add(row["id"])
            self._loaded["codes"].add(row["code"])

    def ensure_codes(self, codes: Iterable[str | None]) -> None:
        for row in self._select(_ENROLMENTS, "code", self._missing("codes", codes)):
            self._take_enrolment(row)

    def ensure_enrolments(self, ids: Iterable[UUID | None]) -> None:
        for row in self._select(_ENROLMENTS, "id", self._missing("enrolment_ids", ids)):
            self._take_enrolment(row)

    def _take_click(self, row: Row) -> None:
        if row["id"] not in self.clicks:
            self.clicks[row["id"]] = row
            self.click_by_token[row["token"]] = row
            self._loaded["click_ids"].add(row["id"])
            self._loaded["tokens"].add(row["token"])
            if row["device_hash"] in self._loaded["click_devices"]:
                self.clicks_by_device[row["device_hash"]].append(row)

    def ensure_tokens(self, tokens: Iterable[str | None]) -> None:
        for row in self._select(_CLICKS, "token", self._missing("tokens", tokens)):
            self._take_click(row)

    def ensure_click_ids(self, ids: Iterable[UUID | None]) -> None:
        for row in self._select(_CLICKS, "id", self._missing("click_ids", ids)):
            self._take_click(row)

    def ensure_click_devices(self, devices: Iterable[str]) -> None:
        missing = self._missing("click_devices", devices)
        for device in missing:  # rows taken before this device was asked for
            self.clicks_by_device[device] = [
                row for row in self.clicks.values() if row["device_hash"] == device
            ]
        for row in self._select(_CLICKS, "device_hash", missing):
            if row["id"] in self.clicks:
                continue
            self._take_click(row)

    def ensure_install_devices(self, keys: Iterable[MarketKey]) -> None:
        missing = self._missing("install_devices", keys)
        for row in self._select_in_market(_INSTALLS, "device_hash", missing):
            self.installs_by_device[(row["market"], row["device_hash"])].append(row)

    def _take_friend(self, row: Row) -> None:
        if row["id"] in self.friends:
            return
        self.friends[row["id"]] = row
        market = row["market"]
        self.friend_by_user[(market, row["user_hash"])] = row
        self.friends_by_device[(market, row["device_hash"])].append(row)
        self.friends_by_email[(market, row["email_hash"])].append(row)

    def ensure_friends(
        self,
        *,
        users: Iterable[MarketKey] = (),
        devices: Iterable[MarketKey] = (),
        emails: Iterable[MarketKey] = (),
    ) -> None:
        wanted = [
            ("user_hash", self._missing("friend_users", users)),
            ("device_hash", self._missing("friend_devices", devices)),
            ("email_hash", self._missing("friend_emails", emails)),
        ]
        markets = {market for _, keys in wanted for market, _ in keys}
        if len(markets) == 1 and sum(len(keys) for _, keys in wanted) <= CHUNK:
            # The usual case (one market, a small batch): one query for the three columns.
            for row in self._select_any(_FRIENDS, [(c, keys) for c, keys in wanted if keys]):
                self._take_friend(row)
            return
        for column, keys in wanted:
            for row in self._select_in_market(_FRIENDS, column, keys):
                self._take_friend(row)

    def _select_any(
        self, table: Table, columns: Sequence[tuple[str, Sequence[MarketKey]]]
    ) -> list[Row]:
        """Rows of one market whose value of any of ``columns`` is one of its keys (the
        keys all of one market), in one statement: a ``UNION ALL`` of one ``SELECT`` per
        column, so that each uses its (market, column) index. A row may come twice."""
        if not columns:
            return []
        reader = rows_of(table, self._dialect)
        mark = "?" if self._dialect == "sqlite" else "%s"
        market = reader.encode("market", columns[0][1][0][0])
        selects: list[str] = []
        params: list[Any] = []
        for column, keys in columns:
            selects.append(
                f"{reader.select_sql} WHERE market = {mark} "
                f"AND {column} IN ({', '.join(mark for _ in keys)})"
            )
            params.append(market)
            params.extend(reader.encode(column, value) for _, value in keys)
        with DriverCursor.of(self.session) as cursor:
            return [reader.decode(row) for row in cursor.query(" UNION ALL ".join(selects), params)]

    def _take_order(self, row: Row) -> None:
        key = (row["market"], row["order_ref"])
        if key in self.order_by_ref:
            return
        self.order_by_ref[key] = row
        self._loaded["order_refs"].add(key)
        if row["user_hash"] is not None:
            self.orders_by_user[(row["market"], row["user_hash"])].append(row)

    def ensure_orders(
        self, *, refs: Iterable[MarketKey] = (), users: Iterable[MarketKey] = ()
    ) -> None:
        for row in self._select_in_market(_ORDERS, "order_ref", self._missing("order_refs", refs)):
            self._take_order(row)
        missing_users = self._missing("order_users", users)
        for row in self._select_in_market(_ORDERS, "user_hash", missing_users):
            self._take_order(row)

    def ensure_closures(self, users: Iterable[MarketKey]) -> None:
        for row in self._select_in_market(_CLOSURES, "user_hash", self._missing("closures", users)):
            self.closure_by_user[(row["market"], row["user_hash"])] = row

    def ensure_sightings(self, keys: Iterable[tuple[str, str, str]]) -> None:
        missing = self._missing("sightings", keys)
        wanted = set(missing)
        kinds = sorted({kind for _, kind, _ in missing})
        pairs = [(market, value) for market, _, value in missing]
        for row in self._select_in_market(_SIGHTINGS, "value_hash", pairs, kinds=kinds):
            key = (row["market"], row["kind"], row["value_hash"])
            if key in wanted:
                self.sightings[key].append(row)

    def ensure_posted_releases(self, enrolment_ids: Iterable[UUID | None]) -> None:
        """When each enrolment's posted prize (if any) was released: a refund at or after it
        no longer counts (ADR 8)."""
        missing = self._missing("posted_releases", enrolment_ids)
        for row in self._select(_REWARDS, "enrolment_id", missing):
            if row["status"] == "posted":
                self.posted_release[row["enrolment_id"]] = row["release_at"]

    # Lookups (each loads what it needs first)

    # A lookup of a key already loaded skips ``ensure_*`` (which would find nothing missing):
    # a batch makes tens of thousands of them.

    def _loaded_key(self, kind: str, key: Any) -> bool:
        return key in self._loaded[kind]

    def enrolment(self, enrolment_id: UUID) -> Row | None:
        if not self._loaded_key("enrolment_ids", enrolment_id):
            self.ensure_enrolments([enrolment_id])
        return self.enrolments.get(enrolment_id)

    def enrolment_of_code(self, code: str) -> Row | None:
        if not self._loaded_key("codes", code):
            self.ensure_codes([code])
        return self.enrolment_by_code.get(code)

    def campaign(self, campaign_id: UUID) -> Campaign:
        if not self._loaded_key("campaigns", campaign_id):
            self.ensure_campaigns([campaign_id])
        return self.campaigns[campaign_id]

    def click(self, click_id: UUID) -> Row | None:
        if not self._loaded_key("click_ids", click_id):
            self.ensure_click_ids([click_id])
        return self.clicks.get(click_id)

    def click_of_token(self, token: str) -> Row | None:
        if not self._loaded_key("tokens", token):
            self.ensure_tokens([token])
        return self.click_by_token.get(token)

    def device_clicks(self, device_hash: str) -> list[Row]:
        if not self._loaded_key("click_devices", device_hash):
            self.ensure_click_devices([device_hash])
        return self.clicks_by_device[device_hash]

    def device_installs(self, market: str, device_hash: str) -> list[Row]:
        if not self._loaded_key("install_devices", (market, device_hash)):
            self.ensure_install_devices([(market, device_hash)])
        return self.installs_by_device[(market, device_hash)]

    def friend_of_user(self, market: str, user_hash: str) -> Row | None:
        if not self._loaded_key("friend_users", (market, user_hash)):
            self.ensure_friends(users=[(market, user_hash)])
        return self.friend_by_user.get((market, user_hash))

    def friends_sharing(self, friend: Row) -> list[Row]:
        """Every friend of the market with the same device, email or user id (itself too)."""
        market = friend["market"]
        if not (
            self._loaded_key("friend_users", (market, friend["user_hash"]))
            and self._loaded_key("friend_devices", (market, friend["device_hash"]))
            and self._loaded_key("friend_emails", (market, friend["email_hash"]))
        ):
            self.ensure_friends(
                users=[(market, friend["user_hash"])],
                devices=[(market, friend["device_hash"])],
                emails=[(market, friend["email_hash"])],
            )
        found = {
            row["id"]: row
            for row in (
                *self.friends_by_device[(market, friend["device_hash"])],
                *self.friends_by_email[(market, friend["email_hash"])],
            )
        }
        owner = self.friend_by_user.get((market, friend["user_hash"]))
        if owner is not None:
            found[owner["id"]] = owner
        return list(found.values())

    def order(self, market: str, order_ref: str) -> Row | None:
        if not self._loaded_key("order_refs", (market, order_ref)):
            self.ensure_orders(refs=[(market, order_ref)])
        return self.order_by_ref.get((market, order_ref))

    def orders_of(self, market: str, user_hash: str) -> list[Row]:
        if not self._loaded_key("order_users", (market, user_hash)):
            self.ensure_orders(users=[(market, user_hash)])
        return self.orders_by_user[(market, user_hash)]

    def closure_of(self, market: str, user_hash: str) -> Row | None:
        if not self._loaded_key("closures", (market, user_hash)):
            self.ensure_closures([(market, user_hash)])
        return self.closure_by_user.get((market, user_hash))

    def seen(self, market: str, kind: str, value_hash: str) -> list[Row]:
        if not self._loaded_key("sightings", (market, kind, value_hash)):
            self.ensure_sightings([(market, kind, value_hash)])
        return self.sightings[(market, kind, value_hash)]

    def posted_release_of(self, enrolment_id: UUID) -> Any:
        if not self._loaded_key("posted_releases", enrolment_id):
            self.ensure_posted_releases([enrolment_id])
        return self.posted_release.get(enrolment_id)

    # New rows and changes

    # A new row joins its index without loading the index first: a later load adds the
    # stored rows beside it (the new row is not stored yet, so it is never there twice).

    def add_install(self, row: Row) -> None:
        self._new["installs"].append(row)
        self.installs_by_device[(row["market"], row["device_hash"])].append(row)

    def add_friend(self, row: Row) -> None:
        self._new["friends"].append(row)
        self._take_friend(row)

    def add_sighting(self, row: Row) -> None:
        self._new["sightings"].append(row)
        self.sightings[(row["market"], row["kind"], row["value_hash"])].append(row)

    def add_order(self, row: Row) -> None:
        self._new["orders"].append(row)
        self._take_order(row)

    def set_order_user(self, order: Row, user_hash: str) -> None:
        order["user_hash"] = user_hash
        self.orders_by_user[(order["market"], user_hash)].append(order)

    def add_closure(self, row: Row) -> None:
        self._new["closures"].append(row)
        self.closure_by_user[(row["market"], row["user_hash"])] = row

    def changed_order(self, order: Row) -> None:
        self._dirty_orders.add(order["id"])

    def changed_friend(self, friend: Row) -> None:
        self._dirty_friends.add(friend["id"])

    def write(self) -> None:
        """Insert the new rows and write back the changed friends and orders."""
        inserts = (
            (_INSTALLS, "installs"),
            (_FRIENDS, "friends"),
            (_SIGHTINGS, "sightings"),
            (_ORDERS, "orders"),
            (_CLOSURES, "closures"),
        )
        new_ids: set[UUID] = set()
        with DriverCursor.of(self.session) as cursor:
            for table, kind in inserts:
                rows = self._new.pop(kind, [])
                if rows:
                    rows_of(table, self._dialect).insert(cursor, rows)
                    new_ids.update(row["id"] for row in rows)
            changed_friends = [self.friends[i] for i in sorted(self._dirty_friends - new_ids)]
            rows_of(_FRIENDS, self._dialect).update(cursor, FRIEND_STATE, changed_friends)
            orders = {row["id"]: row for row in self.order_by_ref.values()}
            changed_orders = [orders[i] for i in sorted(self._dirty_orders - new_ids)]
            rows_of(_ORDERS, self._dialect).update(cursor, ORDER_STATE, changed_orders)
        self._dirty_friends.clear()
        self._dirty_orders.clear()
