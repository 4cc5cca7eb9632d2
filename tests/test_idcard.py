import datetime as dt

from ingest.idcard import check_character, parse_id_number, projection_15, upgrade_15_to_18


def test_check_character_matches_the_published_example():
    # GB 11643-1999 annex example: 11010519491231002X
    assert check_character("11010519491231002") == "X"


def test_valid_number_gives_birth_date_and_sex():
    parsed = parse_id_number("11010519491231002X")
    assert parsed.valid and parsed.birth_date == dt.date(1949, 12, 31) and parsed.sex == "2"


def test_lower_case_x_and_full_width_digits_are_accepted():
    assert parse_id_number("11010519491231002x").value == "11010519491231002X"
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ").valid


def test_legacy_15_digits_are_upgraded():
    assert upgrade_15_to_18("110105491231002") == "11010519491231002X"
    parsed = parse_id_number("110105491231002")
    assert parsed.valid and parsed.upgraded_from_15


def test_wrong_check_character_is_invalid_but_reported():
    parsed = parse_id_number("110105194912310021")
    assert not parsed.valid and "check character" in parsed.problem


def test_impossible_birth_date_is_invalid():
    assert not parse_id_number("110105194902300023").valid


def test_the_15_digit_projection_drops_century_and_check_character():
    assert projection_15("11010519491231002X") == "110105491231002" == projection_15("110105491231002")
    # an upgrade guessed 19xx for someone born in 2001: the projection is the same either way
    born_2001 = "11010520010315123"
    assert projection_15(born_2001 + check_character(born_2001)) == projection_15(upgrade_15_to_18("110105010315123"))
    assert projection_15(None) is None and projection_15("12345") is None


def test_the_sql_projection_used_by_resolution_agrees():
    import duckdb

    from resolution.exact import id_projection_sql

    values = ["11010519491231002X", upgrade_15_to_18("110105010315123")]
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {id_projection_sql('v')} FROM unnest(?) t(v)", [values]).fetchall()]
    assert sorted(got) == sorted(projection_15(v) for v in values)
