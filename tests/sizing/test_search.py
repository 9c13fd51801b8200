"""largest_where agrees with a linear scan on every monotonic predicate."""

from hypothesis import given
from hypothesis import strategies as st

from sizing.search import largest_where


@given(st.integers(0, 500), st.integers(-5, 600))
def test_the_largest_fitting_value_is_the_threshold_below_which_all_fit(high, threshold):
    def fits(n):
        return n <= threshold

    expected = max([n for n in range(high + 1) if fits(n)], default=0)
    assert largest_where(fits, high) == expected
