"""Hypothesis strategies for reading payloads: any JSON, reading-shaped objects with odd
fields, and batches of both, for the parser's and the validator's properties."""

from __future__ import annotations

from hypothesis import strategies as st

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_docs = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["ts", "value", "unit", "seq", "x"]) | st.text(max_size=5),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)
ts_values = (
    st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
    | st.booleans()
    | st.none()
)
units = st.sampled_from(["m3", "L", "kWh", "MW", "kg", "t", "m3/h", "", "bananas"]) | st.text(
    max_size=10
)
readings = st.fixed_dictionaries(
    {"ts": ts_values, "value": json_scalars},
    optional={"unit": units | json_scalars, "seq": json_scalars},
)
payload_docs = json_docs | readings | st.lists(readings | json_docs, max_size=8)
