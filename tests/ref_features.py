"""ref_features.py - an independent numpy/pandas implementation of the 16 features,
the candlestick detector, the rule signal and the label (definitions in docs/data.md
and kernels/kn_features.h), vectorised per symbol. Tests compare bin/marketgen's
output with it; tests/bench/fetch.sh times it against the C code.

    import ref_features
    bars = pandas.read_csv(bars_csv)           # columns as bin/marketgen --bars-csv writes
    rows = ref_features.compute(bars, horizon=5)  # every stock bar past the warm-up
"""
import numpy as np
import pandas as pd

FEATURES = ["body_to_range_ratio", "upper_shadow_ratio", "lower_shadow_ratio", "volume_surge",
            "rsi_14", "bb_position", "macd_histogram", "adx_strength", "vix_level",
            "spy_correlation", "sector_momentum", "market_breadth", "news_present",
            "premarket_gap", "unusual_volume", "options_activity"]
WARMUP = 34
RULE_RSI_MAX = 50.0
RULE_SURGE_MIN = 1.0


def _wilder(x, first):
    """Wilder's average: the plain mean of x[first-13..first] at index first, then
    (13 avg + x) / 14 - pandas' ewm(alpha=1/14, adjust=False) seeded with that mean."""
    out = np.full(len(x), np.nan)
    if len(x) <= first:
        return out
    seeded = x[first:].copy()
    seeded[0] = x[first - 13:first + 1].mean()
    out[first:] = pd.Series(seeded).ewm(alpha=1 / 14, adjust=False).mean().to_numpy()
    return out


def _symbol(g, idx_close, vix_close):
    o, h, l, c, v = (g[k].to_numpy(float) for k in ("open", "high", "low", "close", "volume"))
    ts = g["ts"].to_numpy(np.int64)
    n = len(c)
    f = {}
    rng = h - l
    with np.errstate(divide="ignore", invalid="ignore"):
        f["body_to_range_ratio"] = np.where(rng > 0, np.abs(c - o) / rng, 0.0)
        f["upper_shadow_ratio"] = np.where(rng > 0, (h - np.maximum(o, c)) / rng, 0.0)
        f["lower_shadow_ratio"] = np.where(rng > 0, (np.minimum(o, c) - l) / rng, 0.0)
        vs = pd.Series(v)
        m20 = vs.shift(1).rolling(20).mean().to_numpy()
        sd20 = vs.shift(1).rolling(20).std(ddof=0).to_numpy()
        f["volume_surge"] = np.where(m20 != 0, v / m20, np.nan)
        f["unusual_volume"] = np.where(np.isnan(sd20), np.nan, np.where(sd20 > 0, (v - m20) / sd20, 0.0))
        d = np.diff(c, prepend=np.nan)
        gain, loss = np.where(d > 0, d, 0.0), np.where(d < 0, -d, 0.0)
        ag, al = _wilder(gain, 14), _wilder(loss, 14)
        rsi = np.where(al == 0, np.where(ag == 0, 50.0, 100.0), 100 - 100 / (1 + ag / al))
        f["rsi_14"] = np.where(np.isnan(ag), np.nan, rsi)
        cs = pd.Series(c)
        mean20 = cs.rolling(20).mean().to_numpy()
        std20 = cs.rolling(20).std(ddof=0).to_numpy()
        f["bb_position"] = np.where(np.isnan(std20), np.nan,
                                    np.where(std20 > 0, (c - (mean20 - 2 * std20)) / (4 * std20), 0.5))
        macd = cs.ewm(span=12, adjust=False).mean() - cs.ewm(span=26, adjust=False).mean()
        hist = (macd - macd.ewm(span=9, adjust=False).mean()).to_numpy() / c
        hist[:33] = np.nan
        f["macd_histogram"] = hist
        cp = np.concatenate([[np.nan], c[:-1]])
        tr = np.fmax(h - l, np.fmax(np.abs(h - cp), np.abs(l - cp)))
        up = np.concatenate([[np.nan], h[1:] - h[:-1]])
        down = np.concatenate([[np.nan], l[:-1] - l[1:]])
        pdm = np.where((up > down) & (up > 0), up, 0.0)
        mdm = np.where((down > up) & (down > 0), down, 0.0)
        atr, ap, am = _wilder(tr, 14), _wilder(pdm, 14), _wilder(mdm, 14)
        dip = np.where(atr > 0, 100 * ap / atr, 0.0)
        dim = np.where(atr > 0, 100 * am / atr, 0.0)
        dx = np.where(dip + dim > 0, 100 * np.abs(dip - dim) / (dip + dim), 0.0)
        dx[:14] = np.nan
        adx = np.full(n, np.nan)
        if n > 27:
            seeded = dx[27:].copy()
            seeded[0] = dx[14:28].mean()
            adx[27:] = pd.Series(seeded).ewm(alpha=1 / 14, adjust=False).mean().to_numpy()
        f["adx_strength"] = adx
        f["vix_level"] = vix_close
        if idx_close is None:
            f["spy_correlation"] = np.full(n, np.nan)
        else:
            r = cs.pct_change()
            rm = pd.Series(idx_close).pct_change()
            cov = r.rolling(20).cov(rm, ddof=0)
            vr, vm = r.rolling(20).var(ddof=0), rm.rolling(20).var(ddof=0)
            corr = (cov / np.sqrt(vr * vm)).to_numpy()
            ok = (vr.to_numpy() > 0) & (vm.to_numpy() > 0)
            corr = np.where(ok, corr, np.nan)
            corr[:20] = np.nan
            f["spy_correlation"] = corr
        if g["news"].isna().all():
            f["news_present"] = np.full(n, np.nan)
        else:
            news = pd.Series(g["news"].fillna(0).to_numpy(float),
                             index=pd.to_datetime(ts, unit="s"))
            f["news_present"] = (news.rolling("86400s", closed="right").sum().to_numpy() > 0.5).astype(float)
        day = ts // 86400
        first = np.concatenate([[False], day[1:] != day[:-1]])
        gap = np.where(first, o / cp - 1, np.nan)
        f["premarket_gap"] = pd.Series(gap).ffill().to_numpy()
        if g["options"].isna().all():
            f["options_activity"] = np.full(n, np.nan)
        else:
            p = g["options"].to_numpy(float)
            pm = pd.Series(p).shift(1).rolling(20).mean().to_numpy()
            f["options_activity"] = np.where(pm != 0, p / pm, np.nan)
    # Detector.
    pat = np.zeros(n, np.uint32)
    if n > 5:
        t = np.arange(5, n)
        body, r_ = np.abs(c[t] - o[t]), rng[t]
        upper = h[t] - np.maximum(o[t], c[t])
        lower = np.minimum(o[t], c[t]) - l[t]
        dn, upt = c[t - 1] < c[t - 5], c[t - 1] > c[t - 5]
        red1, green1 = c[t - 1] < o[t - 1], c[t - 1] > o[t - 1]
        bits = np.zeros(len(t), np.uint32)
        bits |= np.where((r_ > 0) & dn & (lower >= 2 * body) & (upper <= 0.1 * r_), 1, 0).astype(np.uint32)
        bits |= np.where(red1 & (c[t] > o[t]) & (o[t] <= c[t - 1]) & (c[t] >= o[t - 1]), 2, 0).astype(np.uint32)
        bits |= np.where((r_ > 0) & dn & (body <= 0.1 * r_), 4, 0).astype(np.uint32)
        bits |= np.where(red1 & (o[t - 1] - c[t - 1] >= 0.6 * (h[t - 1] - l[t - 1])) & (o[t] < c[t - 1])
                         & (c[t] > (o[t - 1] + c[t - 1]) / 2) & (c[t] < o[t - 1]), 8, 0).astype(np.uint32)
        bits |= np.where((r_ > 0) & upt & (upper >= 2 * body) & (lower <= 0.1 * r_), 16, 0).astype(np.uint32)
        bits |= np.where(green1 & (c[t] < o[t]) & (o[t] >= c[t - 1]) & (c[t] <= o[t - 1]), 32, 0).astype(np.uint32)
        pat[5:] = bits
    return f, pat


def compute(bars, horizon=5):
    """Returns a DataFrame of every stock bar t with WARMUP <= t < n - horizon: symbol, ts,
    patterns, the 16 features, rule_signal, forward_return, pattern_success."""
    bars = bars.sort_values(["symbol", "ts"], kind="stable")
    def context(kind):
        s = bars[bars.kind == kind]
        if s.empty:
            return None
        s = s[s.symbol == s.symbol.iloc[0]]
        return s[["ts", "close"]].sort_values("ts")
    idx, vix = context("index"), context("volatility")
    stocks = bars[bars.kind == "stock"].copy()
    cs = stocks.groupby("symbol", sort=False)["close"]
    stocks["ret20"] = stocks["close"] / cs.shift(20) - 1
    mean20 = cs.transform(lambda x: x.rolling(20).mean())
    stocks["above"] = np.where(mean20.isna(), np.nan, (stocks["close"] > mean20).astype(float))
    stocks["sector_momentum"] = stocks.groupby(["ts", "sector"])["ret20"].transform("mean")
    stocks["market_breadth"] = stocks.groupby("ts")["above"].transform("mean")
    out = []
    for sym, g in stocks.groupby("symbol", sort=False):
        g = g.reset_index(drop=True)
        asof = lambda s: (pd.merge_asof(g[["ts"]], s, on="ts")["close"].to_numpy(float)
                          if s is not None else None)
        ic, vc = asof(idx), asof(vix)
        f, pat = _symbol(g, ic, vc if vc is not None else np.full(len(g), np.nan))
        f["sector_momentum"] = g["sector_momentum"].to_numpy(float)
        f["market_breadth"] = g["market_breadth"].to_numpy(float)
        n = len(g)
        c = g["close"].to_numpy(float)
        fwd = np.full(n, np.nan)
        fwd[:n - horizon] = c[horizon:] / c[:n - horizon] - 1
        rsi, surge = f["rsi_14"], f["volume_surge"]
        with np.errstate(invalid="ignore"):
            signal = (((pat & 15) != 0) & (rsi < RULE_RSI_MAX) & (surge >= RULE_SURGE_MIN)).astype(int)
        df = pd.DataFrame({"symbol": sym, "ts": g["ts"].to_numpy(np.int64), "patterns": pat})
        for k in FEATURES:
            df[k] = f[k]
        df["rule_signal"] = signal
        df["forward_return"] = fwd
        df["pattern_success"] = (fwd > 0).astype(int)
        out.append(df.iloc[WARMUP:n - horizon] if n > WARMUP + horizon else df.iloc[0:0])
    return pd.concat(out, ignore_index=True)
