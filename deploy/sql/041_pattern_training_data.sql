-- 041: pattern_training_data, the table the Catalyst plan trains from: one row per
-- bullish candlestick pattern event, its 16 features (docs/data.md), the rule-based
-- detector's signal, and the outcome over the label horizon. Filled by bin/marketgen
-- from market_bars with the same code the fetch worker uses (kernels/kn_features).
create table if not exists pattern_training_data (
    id                  bigserial primary key,
    symbol              text not null,
    timestamp           timestamptz not null,
    pattern_type        text not null,          -- e.g. 'hammer,doji'
    body_to_range_ratio double precision,
    upper_shadow_ratio  double precision,
    lower_shadow_ratio  double precision,
    volume_surge        double precision,
    rsi_14              double precision,
    bb_position         double precision,
    macd_histogram      double precision,
    adx_strength        double precision,
    vix_level           double precision,
    spy_correlation     double precision,
    sector_momentum     double precision,
    market_breadth      double precision,
    news_present        double precision,
    premarket_gap       double precision,
    unusual_volume      double precision,
    options_activity    double precision,
    rule_signal         smallint not null check (rule_signal in (0, 1)),
    horizon_bars        integer not null check (horizon_bars >= 1),
    label_timestamp     timestamptz not null,   -- when the outcome is known
    forward_return      double precision not null,
    pattern_success     boolean not null,
    unique (symbol, timestamp)
);
create index if not exists pattern_training_data_ts on pattern_training_data (timestamp);
