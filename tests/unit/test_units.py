import pytest

from rightsizer.core.units import format_bytes, format_cpu, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250m", 0.25),
        ("2", 2.0),
        (2, 2.0),
        ("1.5", 1.5),
        ("512Mi", 512 * 2**20),
        ("1Gi", 2**30),
        ("1G", 1e9),
        ("100k", 1e5),
        ("1e3", 1000.0),
        ("0", 0.0),
        ("500u", 5e-4),
    ],
)
def test_parses_kubernetes_quantities(text: str | int, expected: float) -> None:
    assert parse_quantity(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "-1", "5Xi", "1e999", "1" * 80, True])
def test_refuses_what_is_not_a_quantity(text: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_quantity(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cores", "expected"),
    [(0.25, "250m"), (1.0, "1"), (2.0004, "2001m"), (0.00001, "1m"), (3.0, "3")],
)
def test_formats_cpu_in_whole_millicores_rounding_up(cores: float, expected: str) -> None:
    assert format_cpu(cores) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [(2**30, "1Gi"), (1.5 * 2**30, "1536Mi"), (100, "1Mi"), (300 * 2**20 + 1, "301Mi")],
)
def test_formats_bytes_in_whole_mebibytes_rounding_up(size: float, expected: str) -> None:
    assert format_bytes(size) == expected


def test_a_repeated_quantity_gets_the_same_answer() -> None:
    """Parsed texts are cached: a repeat is no different, refusals included."""
    for _ in range(2):
        assert parse_quantity(" 250m ") == parse_quantity("250m") == 0.25
        with pytest.raises(ValueError, match="negative"):
            parse_quantity("-1")
        with pytest.raises(ValueError, match="not a quantity"):
            parse_quantity("5Xi")
        with pytest.raises(ValueError, match="a quantity must be a number"):
            parse_quantity(True)  # type: ignore[arg-type]
