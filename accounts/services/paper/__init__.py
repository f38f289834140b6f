"""The paper exchange's books: markets, prices, wallets, positions, orders and fills.

This is the venue side of `paper` (what Binance keeps for a real account); ETRMS reads
it through the exchange interface (`accounts.exchanges.paper.PaperExchange`) and its
sync, exactly as it reads a real venue. Conventions follow Binance USD-M: cross margin,
taker fee `PAPER_TAKER_FEE` on every fill, `realized_pnl` on a fill gross of its fee,
one-way mode by default (hedge mode per wallet), market orders filled at the mark
price, reduce-only orders never growing or flipping a position. Paper charges no
funding and never liquidates (a liquidation price is reported, not enforced).
"""

from accounts.services.paper.account import paper_account_state, paper_transfer
from accounts.services.paper.books import DEFAULT_PAPER_BALANCE, paper_wallet_ensure, taker_fee_rate
from accounts.services.paper.markets import (
    PaperQuote,
    paper_market_upsert,
    paper_markets,
    paper_price,
    paper_price_set,
    paper_quote,
)
from accounts.services.paper.orders import (
    paper_fills,
    paper_open_orders,
    paper_order_execute,
    paper_orders_cancel_all,
    paper_orders_match,
)

__all__ = [
    "DEFAULT_PAPER_BALANCE",
    "PaperQuote",
    "paper_account_state",
    "paper_fills",
    "paper_market_upsert",
    "paper_markets",
    "paper_open_orders",
    "paper_order_execute",
    "paper_orders_cancel_all",
    "paper_orders_match",
    "paper_price",
    "paper_price_set",
    "paper_quote",
    "paper_transfer",
    "paper_wallet_ensure",
    "taker_fee_rate",
]
