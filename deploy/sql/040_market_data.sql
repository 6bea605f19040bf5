-- 040: market data, shaped like the trading system's own tables (the Catalyst plan).
-- market_bars carries no CHECK constraints on purpose: it mirrors a table other
-- systems write, so the fetch worker validates every value it reads (NaN, inf,
-- high < low...) instead of trusting the schema.

create table if not exists market_symbols (
    symbol     text primary key,
    sector     text not null default '',
    kind       text not null default 'stock' check (kind in ('stock', 'index', 'volatility')),
    source     text not null default 'marketgen',
    created_at timestamptz not null default now()
);

create table if not exists market_bars (
    symbol         text not null,
    ts             timestamptz not null,
    open           double precision not null,
    high           double precision not null,
    low            double precision not null,
    close          double precision not null,
    volume         double precision not null,
    news_count     integer,             -- news items in the bar; null: unknown
    options_volume double precision,    -- options contracts traded; null: unknown
    primary key (symbol, ts)
);
create index if not exists market_bars_ts on market_bars (ts);
