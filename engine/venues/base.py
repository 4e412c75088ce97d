"""The `Venue` protocol the Engine trades through, and the venue-neutral values that cross it.

The Engine decides, checks risk, journals and tracks; a venue adapter only turns that into its wire and back.
Everything here is plain typed values: no adapter's JSON, URLs or signatures leak past its package.

How each Coinbase venue maps onto it:

- **Advanced Trade** (`engine.venues.advanced.venue.AdvancedTradeVenue`): REST for submit / cancel (batch) /
  edit / close a CFM futures position / orders / fills / accounts / products; our `client_order_id` is
  idempotent, so a retried create can never make a second order. Market data and order events come from two
  WebSocket connections (market channels, and the `user` channel whose order JSON the adapter turns into
  `OrderUpdate`s and, after a resubscribe, an `OpenOrdersSnapshot`).
  https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api
- **Coinbase Exchange** (`engine.venues.exchange.venue.ExchangeVenue`, built by `exchange_venue`): REST with
  HMAC and passphrase; `client_oid` is our id, and must be a UUID (`Capabilities.uuid_client_order_ids`:
  the Engine mints UUID-form ids). A create whose answer was lost is looked up by
  `GET /orders/client:<client_oid>` before anything is sent again. Cancel is one order per request (the
  adapter runs a few at once), there is no edit (`Capabilities.edit` False) and no positions. The feed's
  `user` channel carries `received`/`open`/`match`/`done` messages: the adapter folds them into cumulative
  `OrderUpdate`s, and lists the open orders (an `OpenOrdersSnapshot`) after each subscribe and periodically.
  https://docs.cdp.coinbase.com/exchange/reference
- **Global perpetuals, the Deribit-powered gateway** (`engine.venues.derivatives.venue.DerivativesVenue`):
  JSON-RPC 2.0 over one WebSocket carries both the calls and the subscriptions; `label` carries our id but is
  not unique, so `idempotent_client_order_id` is False: a create whose answer was lost is looked up with
  `private/get_order_state_by_label` before anything is sent again, never blindly retried. Cancel-all is one
  call (`private/cancel_all`, `mass_cancel`), edit is `private/edit`, a position close is a labelled
  reduce-only market order; `user.changes.*` notifications become `OrderUpdate`s and, after a reconnect, the
  open orders an `OpenOrdersSnapshot`. It is a `MarginVenue`: mark prices, margin and positions.
  https://docs.cdp.coinbase.com/international-exchange/docs/welcome
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.marketdata.feed import MarketFeed
    from engine.net.transport import ApiKey

_ZERO = Decimal(0)


class OrderState(enum.Enum):
    """The local life of an order, the same on every venue; each adapter maps its statuses onto these."""

    PENDING_NEW = "PENDING_NEW"  # intent journalled; the create request may be in flight
    UNKNOWN = "UNKNOWN"  # the create's outcome could not be established: reconcile by client_order_id
    OPEN = "OPEN"  # the exchange holds the order (including its PENDING/QUEUED/EDIT_QUEUED/CANCEL_QUEUED)
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"  # accepted, then failed on the exchange
    REJECTED = "REJECTED"  # the create was refused: no order exists
    NOT_PLACED = "NOT_PLACED"  # reconciliation found no order with its client_order_id: it never left

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_unresolved(self) -> bool:
        """Whether the order's existence on the exchange is still unknown."""
        return self is OrderState.PENDING_NEW or self is OrderState.UNKNOWN


TERMINAL_STATES = frozenset(
    {
        OrderState.FILLED,
        OrderState.CANCELLED,
        OrderState.EXPIRED,
        OrderState.FAILED,
        OrderState.REJECTED,
        OrderState.NOT_PLACED,
    }
)


# == what goes in ========================================================================================


class OrderIntent(Protocol):
    """A venue's prepared order: what the Engine, the risk rules and the journal read from it.

    Built by `Venue.order_request` (or by the caller with the venue's own order types); `body` is the exact
    request the venue will send, kept in the journal beside the intent.
    """

    @property
    def client_order_id(self) -> str: ...
    @property
    def product_id(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def configuration(self) -> OrderShape: ...
    @property
    def body(self) -> bytes: ...


class OrderShape(Protocol):
    """An order's sizes and prices as one flat mapping (`base_size`, `quote_size`, `limit_price`, ...)."""

    def fragment(self) -> dict[str, Any]: ...


# == what comes back =====================================================================================


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The venue holds the order (a create, or a position close, it answered)."""

    order_id: str
    client_order_id: str
    side: str


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    order_id: str
    success: bool
    failure_reason: str = ""


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue reports it, its status already mapped to an `OrderState`."""

    order_id: str
    client_order_id: str
    product_id: str
    side: str
    state: OrderState
    filled_size: Decimal | None
    filled_value: Decimal | None
    total_fees: Decimal | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution of one of our orders."""

    entry_id: str  # unique per fill on the venue: the journal's key
    trade_id: str
    order_id: str
    client_order_id: str | None
    product_id: str
    side: str
    price: Decimal
    size: Decimal
    commission: Decimal
    trade_time: str


@dataclass(frozen=True, slots=True)
class Balance:
    currency: str
    available: Decimal | None
    hold: Decimal | None


@dataclass(frozen=True, slots=True)
class Position:
    product_id: str
    size: Decimal  # signed: long positive, short negative
    average_price: Decimal | None = None  # of the open size, when the venue reports it


@dataclass(frozen=True, slots=True)
class MarginAccount:
    """A margined account's collateral and margin in its settlement currency, as the venue last reported."""

    currency: str
    equity: Decimal | None
    initial_margin: Decimal | None
    maintenance_margin: Decimal | None
    available_funds: Decimal | None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """One margined position with what the venue says about its risk (every figure None when unknown)."""

    product_id: str
    size: Decimal  # signed
    average_price: Decimal | None = None
    mark_price: Decimal | None = None
    leverage: Decimal | None = None
    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    estimated_liquidation_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None
    realized_funding: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ProductInfo:
    product_id: str
    currencies: tuple[str, str] | None  # (base, quote) for spot; None for a contract (futures, perpetuals)


# == order events, venue to Engine =======================================================================


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """The venue's news about one order: cumulative fills and its state, as of this message."""

    client_order_id: str
    order_id: str | None
    state: OrderState
    filled_size: Decimal | None = None
    filled_value: Decimal | None = None
    total_fees: Decimal | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    side: str | None = None  # BUY or SELL, when the venue says: a position close learns its side from it


@dataclass(frozen=True, slots=True)
class OpenOrdersSnapshot:
    """After (re)subscribing: every order the venue holds open. An order the Engine holds open that is not
    among them finished while nobody was listening, and is looked up."""

    client_order_ids: frozenset[str]


OrderEvent = OrderUpdate | OpenOrdersSnapshot


class Connection(Protocol):
    """A venue's long-lived connection (a WebSocket), as the Engine watches it."""

    @property
    def connected(self) -> asyncio.Event: ...
    @property
    def stats(self) -> Any: ...  # counters: connects, disconnects, gaps, resubscribes, messages


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a venue can do; the Engine asks instead of assuming."""

    idempotent_client_order_id: bool  # a resent create with our id can never make a second order
    order_events: bool  # pushes order events (else the Engine learns from REST only)
    edit: bool = False
    close_position: bool = False
    cancel_batch: int = 1  # how many orders one cancel call takes
    uuid_client_order_ids: bool = False  # the venue takes only UUIDs as client order ids
    # one call cancels every open order (`MarginVenue.cancel_all_orders`): what the kill switch uses
    mass_cancel: bool = False
    # margined trading: the venue is a `MarginVenue` (mark prices, margin, positions it reports as the truth)
    margin: bool = False


# == the protocol ========================================================================================


class Venue(Protocol):
    """One trading venue, as the Engine uses it. Every call is typed and venue-neutral in and out."""

    name: str
    capabilities: Capabilities

    # -- lifecycle: `open` before any call (REST), `start` for the streams, then `stop`, `close` ------------
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def start(self, market: MarketFeed, on_order_event: Callable[[OrderEvent], None]) -> None:
        """Start the streams: market data into `market`, order events to `on_order_event` (on the loop)."""
        ...

    async def stop(self) -> None: ...
    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109 (the Engine's one deadline)
        """Until every connection is up."""
        ...

    @property
    def connections(self) -> tuple[Connection, ...]: ...
    def replace_key(self, key: ApiKey) -> None: ...

    # -- orders -----------------------------------------------------------------------------------------
    def order_request(
        self,
        product_id: str,
        side: str,
        configuration: Any,
        *,
        client_order_id: str,
        leverage: Any = None,
        margin_type: Any = None,
    ) -> OrderIntent: ...
    async def submit(self, request: OrderIntent) -> Acknowledged: ...
    async def cancel(self, order_ids: Sequence[str]) -> list[CancelOutcome]: ...
    async def edit(self, order_id: str, *, size: Any = None, price: Any = None) -> bool: ...
    async def close_position(self, product_id: str, size: Any, *, client_order_id: str) -> Acknowledged: ...

    # -- what the venue knows ---------------------------------------------------------------------------
    async def order(self, order_id: str) -> VenueOrder:
        """Raises `NotFound` when the venue has no such order."""
        ...

    async def find_order(self, client_order_id: str) -> VenueOrder | None: ...
    async def open_orders(self, product_id: str | None = None) -> list[VenueOrder]: ...
    async def fills(self, order_ids: Sequence[str]) -> list[VenueFill]: ...
    async def positions(self) -> list[Position]: ...
    async def balances(self) -> list[Balance]: ...
    async def products(self) -> list[ProductInfo]: ...


class MassCancelVenue(Venue, Protocol):
    """A venue with `capabilities.mass_cancel`: one call cancels every open order, tracked or not."""

    async def cancel_all_orders(self, product_id: str | None = None) -> int: ...


class MarginVenue(Venue, Protocol):
    """A venue with `capabilities.margin`: what it knows of the margined account, kept current from its
    streams (no request on the order path). Its `positions()` are the account's truth."""

    def mark_price(self, product_id: str) -> Decimal | None: ...
    def leverage(self, product_id: str) -> Decimal | None:
        """The leverage the venue applies to new exposure in this product (its initial margin is 1/x)."""
        ...

    def margin_account(self) -> MarginAccount | None: ...
    def position_risk(self, product_id: str) -> PositionRisk | None: ...
