"""Seeded government-style program records: who was served where, by which program, at what cost.

:func:`generate_records` returns one row per (state, county, year, program), the
shape of the county-level tables agencies publish: ``record_id``, ``state``,
``state_code``, ``county``, ``year``, ``program``, ``agency``, ``count`` (people
served) and ``funding`` (US dollars). Counts follow each state's population
(2020 census), the county's share of it and the program's reach, with yearly
changes (food and energy aid rose in 2020-2021, in-person programs fell in
2020) and noise. ``missing_share`` blanks some counties and suppresses some
counts, as published tables do for small cells.

This is not a plugin (nothing registers it): the ``tabular`` dataset uses it for
``generate = N``, and tests and example studies use it for data without files.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# state: (code, population in millions (2020 census), counties with their share of the population)
STATES: dict[str, tuple[str, float, dict[str, float]]] = {
    "California": ("CA", 39.5, {"Los Angeles": 0.25, "San Diego": 0.08, "Orange": 0.08, "Fresno": 0.03}),
    "Texas": ("TX", 29.1, {"Harris": 0.16, "Dallas": 0.09, "Travis": 0.04, "El Paso": 0.03}),
    "Florida": ("FL", 21.5, {"Miami-Dade": 0.13, "Broward": 0.09, "Hillsborough": 0.07, "Duval": 0.05}),
    "New York": ("NY", 20.2, {"Kings": 0.13, "Queens": 0.12, "Erie": 0.05, "Monroe": 0.04}),
    "Pennsylvania": ("PA", 13.0, {"Philadelphia": 0.12, "Allegheny": 0.10, "Montgomery": 0.06, "Lancaster": 0.04}),
    "Illinois": ("IL", 12.8, {"Cook": 0.40, "DuPage": 0.07, "Lake": 0.06, "Sangamon": 0.02}),
    "Ohio": ("OH", 11.8, {"Franklin": 0.11, "Cuyahoga": 0.11, "Hamilton": 0.07, "Summit": 0.05}),
    "Georgia": ("GA", 10.7, {"Fulton": 0.10, "Gwinnett": 0.09, "Cobb": 0.07, "Chatham": 0.03}),
    "North Carolina": ("NC", 10.4, {"Mecklenburg": 0.11, "Wake": 0.11, "Guilford": 0.05, "Buncombe": 0.03}),
    "Michigan": ("MI", 10.1, {"Wayne": 0.18, "Oakland": 0.13, "Kent": 0.07, "Washtenaw": 0.04}),
    "Washington": ("WA", 7.7, {"King": 0.29, "Pierce": 0.12, "Snohomish": 0.11, "Spokane": 0.07}),
    "Arizona": ("AZ", 7.2, {"Maricopa": 0.62, "Pima": 0.14, "Yavapai": 0.03, "Coconino": 0.02}),
    "Colorado": ("CO", 5.8, {"Denver": 0.12, "El Paso": 0.13, "Boulder": 0.06, "Larimer": 0.06}),
    "Oregon": ("OR", 4.2, {"Multnomah": 0.19, "Washington": 0.14, "Lane": 0.09, "Deschutes": 0.05}),
    "Iowa": ("IA", 3.2, {"Polk": 0.15, "Linn": 0.07, "Scott": 0.05, "Johnson": 0.05}),
    "Kansas": ("KS", 2.9, {"Johnson": 0.21, "Sedgwick": 0.18, "Shawnee": 0.06, "Douglas": 0.04}),
    "Nebraska": ("NE", 2.0, {"Douglas": 0.30, "Lancaster": 0.16, "Sarpy": 0.09, "Hall": 0.03}),
    "Idaho": ("ID", 1.8, {"Ada": 0.27, "Canyon": 0.13, "Kootenai": 0.10, "Bonneville": 0.07}),
    "Maine": ("ME", 1.4, {"Cumberland": 0.22, "York": 0.16, "Penobscot": 0.11, "Kennebec": 0.09}),
    "Montana": ("MT", 1.1, {"Yellowstone": 0.15, "Missoula": 0.11, "Gallatin": 0.11, "Flathead": 0.10}),
    "Delaware": ("DE", 1.0, {"New Castle": 0.58, "Sussex": 0.24, "Kent": 0.18}),
    "Vermont": ("VT", 0.64, {"Chittenden": 0.26, "Rutland": 0.09, "Washington": 0.09, "Windsor": 0.09}),
    "Wyoming": ("WY", 0.58, {"Laramie": 0.17, "Natrona": 0.14, "Campbell": 0.08, "Sweetwater": 0.07}),
}

# program: (agency, people served per resident, dollars per person served)
PROGRAMS: dict[str, tuple[str, float, float]] = {
    "SNAP outreach": ("USDA Food and Nutrition Service", 0.012, 310.0),
    "WIC": ("USDA Food and Nutrition Service", 0.006, 540.0),
    "LIHEAP energy assistance": ("HHS Administration for Children and Families", 0.004, 470.0),
    "Head Start": ("HHS Administration for Children and Families", 0.0025, 11200.0),
    "WIOA adult training": ("DOL Employment and Training Administration", 0.0015, 3900.0),
    "Housing Choice Vouchers": ("HUD Office of Public and Indian Housing", 0.0035, 9100.0),
    "Senior nutrition": ("HHS Administration for Community Living", 0.005, 820.0),
    "Vocational rehabilitation": ("ED Rehabilitation Services Administration", 0.001, 6400.0),
}

YEARS = tuple(range(2015, 2025))
# reach in 2020 and 2021 relative to other years: food and energy aid rose, in-person programs fell
PANDEMIC = {
    "SNAP outreach": 1.35,
    "WIC": 1.15,
    "LIHEAP energy assistance": 1.30,
    "Head Start": 0.70,
    "WIOA adult training": 0.75,
    "Senior nutrition": 1.20,
}
COLUMNS = ("record_id", "state", "state_code", "county", "year", "program", "agency", "count", "funding")
MAX_RECORDS = sum(len(c) for _, _, c in STATES.values()) * len(YEARS) * len(PROGRAMS)


def _cells() -> list[tuple[str, str, int, str]]:
    counties = [(state, county) for state, (_, _, shares) in STATES.items() for county in shares]
    return [(s, c, y, p) for (s, c), y, p in itertools.product(counties, YEARS, PROGRAMS)]


def generate_records(rows: int, seed: int = 0, missing_share: float = 0.0) -> pd.DataFrame:
    """``rows`` distinct county-year-program records, the same for the same seed.

    ``missing_share`` of the rows lose their county name, and as many their count (suppressed).
    """
    import pandas as pd

    if not 1 <= rows <= MAX_RECORDS:
        raise ValueError(f"rows must be between 1 and {MAX_RECORDS}, got {rows}")
    if not 0.0 <= missing_share < 1.0:
        raise ValueError(f"missing_share must be in [0, 1), got {missing_share}")
    rng = np.random.default_rng(seed)
    cells = _cells()
    picked = sorted(rng.choice(len(cells), size=rows, replace=False).tolist())
    records = []
    for i in picked:
        state, county, year, program = cells[i]
        code, population, shares = STATES[state]
        agency, reach, cost = PROGRAMS[program]
        trend = 1.0 + 0.02 * (year - YEARS[0])
        pandemic = PANDEMIC.get(program, 1.0) if year in (2020, 2021) else 1.0
        people = population * 1e6 * shares[county] * reach * trend * pandemic * rng.lognormal(0.0, 0.35)
        count = max(1, round(people))
        funding = round(count * cost * rng.lognormal(0.0, 0.15), -2)
        records.append((state, code, county, year, program, agency, count, funding))
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS[1:]))
    ids = frame.groupby(["year", "state_code"]).cumcount() + 1
    frame.insert(0, "record_id", [f"FY{y}-{c}-{n:04d}" for y, c, n in zip(frame["year"], frame["state_code"], ids)])
    frame["count"] = frame["count"].astype("Int64")
    frame["funding"] = frame["funding"].astype("Int64")
    if missing_share:
        n_missing = round(rows * missing_share)
        frame.loc[rng.choice(rows, n_missing, replace=False), "county"] = None
        frame.loc[rng.choice(rows, n_missing, replace=False), "count"] = pd.NA
    return frame
