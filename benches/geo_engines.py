#!/usr/bin/env python3
"""The varied searches on the geographic indexes made for them, beside the server's copy.

Usage: benches/geo_engines.py PG_DATABASE_URL [SERVER_URL]

Reads the fleet of a seeded database (`carrental seed --cars 100000`), copies it into a
scratch PostgreSQL database with PostGIS (`geography` points, a GiST index) and into an
SQLite file with an R*Tree, then runs the same searches of `varied.py search` (seed 1) one
at a time on each: the page of 20 and the exact total, by distance or by price, with the
fuel, price and seats filters. With SERVER_URL (a server on that same database, freshly
started so that no answer comes from its read cache) the same searches go to it over HTTP.
Prints p50, p99 and mean milliseconds per search. Needs PostGIS (Debian's
`postgresql-15-postgis-3`), `pip install 'psycopg[binary]'` and SQLite 3.35+ (math functions).
Env: SEARCHES=2000.
"""
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import psycopg

EARTH_KM = 6371.0088
SCRATCH = "geo_engines"


def searches(count):
    varied = os.path.join(os.path.dirname(__file__), "../../shared/bench/varied.py")
    if not os.path.exists(varied):
        sys.exit(f"varied.py not found at {varied}")
    out = subprocess.run([sys.executable, varied, "search", str(count), "1"], check=True,
                         capture_output=True, text=True).stdout.split()
    parsed = []
    for path in out:
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        parsed.append((path, q))
    return parsed


def figures(label, times):
    times = sorted(t * 1000 for t in times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{label:<44} p50 {statistics.median(times):7.2f} ms  p99 {p99:7.2f} ms  "
          f"mean {statistics.fmean(times):7.2f} ms")


def filters(q, ph):
    """SQL conditions and parameters for the query's filters (ph: the placeholder)."""
    cond, args = [], []
    if "fuelType" in q:
        cond.append(f"fuel_type = {ph}")
        args.append(q["fuelType"])
    if "maxPrice" in q:
        cond.append(f"price_per_day <= {ph}")
        args.append(int(q["maxPrice"]) * 100)
    if "seats" in q:
        cond.append(f"seats >= {ph}")
        args.append(int(q["seats"]))
    return cond, args


def page(q):
    return 20, (int(q.get("page", 1)) - 1) * 20


def postgis(pg_url, fleet, work):
    admin = urllib.parse.urlsplit(pg_url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        conn.execute(f"CREATE DATABASE {SCRATCH}")
    url = urllib.parse.urlsplit(pg_url)._replace(path=f"/{SCRATCH}").geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
        conn.execute("CREATE TABLE cars (id text PRIMARY KEY, g geography(Point, 4326) NOT NULL, "
                     "fuel_type text NOT NULL, seats int NOT NULL, price_per_day bigint NOT NULL)")
        with conn.cursor().copy("COPY cars (id, g, fuel_type, seats, price_per_day) FROM STDIN") as copy:
            for (id_, lat, lng, fuel, seats, price) in fleet:
                copy.write_row((id_, f"SRID=4326;POINT({lng} {lat})", fuel, seats, price))
        conn.execute("CREATE INDEX ON cars USING gist (g)")
        conn.execute("VACUUM ANALYZE cars")
        timed("PostGIS: ST_DWithin, count(*) OVER ()", work, lambda q: postgis_one_statement(conn, q))
        timed("PostGIS: KNN <-> page + ST_DWithin count", work, lambda q: postgis_knn(conn, q))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {SCRATCH}")


def centre(q):
    return float(q["lat"]), float(q["lng"]), float(q["radius"]) * 1000


def postgis_circle(q):
    """The FROM and WHERE of a search's circle and filters, with their parameters."""
    lat, lng, metres = centre(q)
    cond, args = filters(q, "%s")
    where = " AND ".join(["ST_DWithin(g, p, %s, false)"] + cond)
    return (f"FROM cars, (SELECT ST_MakePoint(%s, %s)::geography AS p) c WHERE {where}",
            [lng, lat, metres, *args])


def postgis_one_statement(conn, q):
    circle, args = postgis_circle(q)
    order = "price_per_day, id" if q.get("sort") == "price" else "km, id"
    limit, offset = page(q)
    conn.execute(f"SELECT id, ST_Distance(g, p, false) / 1000 AS km, count(*) OVER () {circle} "
                 f"ORDER BY {order} LIMIT {limit} OFFSET {offset}", args).fetchall()


def postgis_knn(conn, q):
    circle, args = postgis_circle(q)
    order = "price_per_day, id" if q.get("sort") == "price" else "g <-> p"
    limit, offset = page(q)
    conn.execute(f"SELECT id {circle} ORDER BY {order} LIMIT {limit} OFFSET {offset}", args).fetchall()
    conn.execute(f"SELECT count(*) {circle}", args).fetchall()


def rtree(fleet, work):
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "rtree.db"))
        db.executescript(
            "CREATE TABLE cars (rid INTEGER PRIMARY KEY, id TEXT, lat REAL, lng REAL, "
            "fuel_type TEXT, seats INT, price_per_day INT);"
            "CREATE VIRTUAL TABLE car_box USING rtree(rid, min_lat, max_lat, min_lng, max_lng);")
        db.executemany("INSERT INTO cars VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(n, *row) for n, row in enumerate(fleet)])
        db.execute("INSERT INTO car_box SELECT rid, lat, lat, lng, lng FROM cars")
        db.commit()
        timed("SQLite R*Tree: box, haversine, window count", work, lambda q: rtree_one(db, q))


def rtree_one(db, q):
    lat, lng, metres = centre(q)
    km = metres / 1000
    dlat = math.degrees(km / EARTH_KM)
    dlng = math.degrees(km / (EARTH_KM * max(math.cos(math.radians(abs(lat) + dlat)), 1e-9)))
    cond, args = filters(q, "?")
    distance = ("2 * 6371.0088 * asin(sqrt(pow(sin(radians(c.lat - ?) / 2), 2) + cos(radians(?)) * "
                "cos(radians(c.lat)) * pow(sin(radians(c.lng - ?) / 2), 2)))")
    order = "c.price_per_day, c.id" if q.get("sort") == "price" else "km, c.id"
    limit, offset = page(q)
    where = " AND ".join(["b.min_lat >= ? AND b.max_lat <= ? AND b.min_lng >= ? AND b.max_lng <= ?"]
                         + [f"c.{c}" for c in cond])
    db.execute(
        f"SELECT id, km, count(*) OVER () FROM (SELECT c.id, c.price_per_day, {distance} AS km "
        f"FROM car_box b JOIN cars c ON c.rid = b.rid WHERE {where}) c WHERE km <= ? "
        f"ORDER BY {order} LIMIT {limit} OFFSET {offset}",
        [lat, lat, lng, lat - dlat, lat + dlat, lng - dlng, lng + dlng, *args, km]).fetchall()


def server(url, work):
    def get(path):
        with urllib.request.urlopen(url + path) as answer:
            answer.read()
    timed("carrental over HTTP (the copy; JSON included)", work, get, by_path=True)


def timed(label, work, one, by_path=False):
    """Runs `one` on each search (its path or its parameters) and prints the figures of
    those after the first WARM."""
    times = []
    for n, (path, q) in enumerate(work):
        start = time.perf_counter()
        one(path if by_path else q)
        if n >= WARM:
            times.append(time.perf_counter() - start)
    figures(label, times)


WARM = 200

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    work = searches(int(os.environ.get("SEARCHES", "2000")) + WARM)
    with psycopg.connect(sys.argv[1]) as conn:
        fleet = conn.execute("SELECT id, latitude, longitude, fuel_type, seats, price_per_day FROM cars "
                             "WHERE is_active AND deleted_at IS NULL").fetchall()
    print(f"# {len(fleet)} searchable cars, {len(work) - WARM} searches of varied.py (seed 1), "
          f"one at a time, after {WARM} unmeasured")
    if len(sys.argv) > 2:
        server(sys.argv[2].rstrip("/"), work)
    postgis(sys.argv[1], fleet, work)
    rtree(fleet, work)
