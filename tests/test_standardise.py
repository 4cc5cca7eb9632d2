import datetime as dt

from ingest.standardise import parse_date, standardise_email, standardise_name, standardise_phone


def test_names_are_simplified_spaced_and_dotted_one_way():
    assert standardise_name("張偉") == "张伟"
    assert standardise_name(" 张\u3000伟 ") == "张伟"
    assert standardise_name("买买提.艾力") == "买买提·艾力"
    assert standardise_name("买买提•艾力") == "买买提·艾力"
    assert standardise_name("Wei  Zhang") == "Wei Zhang"
    assert standardise_name("") is None


def test_dates_in_every_format_the_brief_lists():
    assert parse_date("1999-03-02") == (dt.date(1999, 3, 2), None)
    assert parse_date("19990302") == (dt.date(1999, 3, 2), None)
    assert parse_date("1999/3/2") == (dt.date(1999, 3, 2), None)
    assert parse_date("199903") == (dt.date(1999, 3, 1), "month_precision")
    value, flag = parse_date("not a date")
    assert value is None and "not a date" in flag


def test_phone_and_email():
    assert standardise_phone("138 0013 8000") == ("+8613800138000", None)
    assert standardise_phone("+86 13800138000") == ("+8613800138000", None)
    assert standardise_phone("12345")[0] is None
    assert standardise_email(" Wei@Example.EDU.cn ") == ("wei@example.edu.cn", None)
