import datetime as dt

from ingest.idcard import check_character, parse_id_number, upgrade_15_to_18


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
