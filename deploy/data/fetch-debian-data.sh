#!/usr/bin/env bash
# deploy/data/fetch-debian-data.sh [--dest DIR] [PACKAGE...] - real data sets that Debian
# packages ship, unpacked (not installed) under DIR/PACKAGE/ (default var/debian), the
# layout the fetch worker reads for debian:PACKAGE:/ABS/PATH sources.
#   default packages: r-cran-timeseries (msft.csv), python3-vega-datasets (seattle-weather.csv,
#   stocks.csv, ...)
# Each package is fetched with `apt-get download` and unpacked with `dpkg -x`; one already
# unpacked is left alone. Prints the paths of the well-known files. Exit 1 when a download
# fails (no network, unknown package): callers that can live without it skip.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
dest=$ROOT/var/debian
if [ "${1:-}" = --dest ]; then dest=$2; shift 2; fi
[ $# -gt 0 ] || set -- r-cran-timeseries python3-vega-datasets
mkdir -p "$dest"
for pkg in "$@"; do
    [[ "$pkg" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || { echo "fetch-debian-data: bad package name '$pkg'" >&2; exit 2; }
    [ -f "$dest/$pkg/.unpacked" ] && continue
    work=$(mktemp -d "$dest/.download.XXXXXX")
    chmod 755 "$work"
    if ! (cd "$work" && apt-get download "$pkg" >/dev/null 2>"$work/err"); then
        echo "fetch-debian-data: apt-get download $pkg failed: $(grep -v '^W:' "$work/err" | tail -n 1)" >&2
        rm -rf "$work"; exit 1
    fi
    rm -rf "$dest/$pkg.tmp"
    dpkg -x "$work"/*.deb "$dest/$pkg.tmp"
    rm -rf "$work" "$dest/$pkg"
    mv "$dest/$pkg.tmp" "$dest/$pkg"
    ls "$dest/$pkg" >/dev/null
    date -u +%FT%TZ > "$dest/$pkg/.unpacked"
done
for f in "$dest"/r-cran-timeseries/usr/lib/R/site-library/timeSeries/extdata/msft.csv \
         "$dest"/python3-vega-datasets/usr/lib/python3/dist-packages/vega_datasets/_data/{seattle-weather,stocks}.csv; do
    [ -f "$f" ] && echo "$f"
done
exit 0
