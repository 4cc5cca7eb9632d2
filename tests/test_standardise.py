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


def test_pinyin_keys_read_the_name_as_written():
    from ingest.standardise import pinyin_key

    assert pinyin_key("张伟") == pinyin_key("章玮") == "zhang|wei"  # homophones share a key
    assert pinyin_key("張偉") == "zhang|wei"  # traditional form
    assert pinyin_key("单雄信") == "shan|xiongxin"  # surname reading, not dan
    assert pinyin_key("曾国藩") == "zeng|guofan"  # not ceng
    assert pinyin_key("欧阳修") == "ouyang|xiu"  # compound surname
    assert pinyin_key("乾隆") == "qian|long"  # 乾 keeps qian; its simplified look-alike 干 reads gan
    assert pinyin_key("干隆") == "gan|long"
    assert pinyin_key("Zhang Wei") is None


def test_romanised_names_in_either_order():
    from ingest.standardise import name_keys, romanised_keys

    assert romanised_keys("ZHANG, Wei") == ["zhang|wei"]  # comma: surname first
    assert romanised_keys("ZHANG Wei") == ["zhang|wei"]  # capitals mark the surname
    assert romanised_keys("Wei ZHANG") == ["zhang|wei"]
    assert set(romanised_keys("Zhang Wei")) == set(romanised_keys("Wei Zhang")) == {"zhang|wei", "wei|zhang"}
    assert romanised_keys("Wei-Ming Zhang")[0] == "zhang|weiming"
    assert romanised_keys("Lyu Bu") == romanised_keys("Lv Bu")  # passport spelling of 吕
    assert "lv|bu" in romanised_keys("Lyu Bu") and name_keys("吕布") == ["lv|bu"]
    assert romanised_keys("Madonna") == []


def test_organisation_names_drop_the_university_and_follow_aliases():
    from ingest.standardise import normalise_alias_table, standardise_org_name

    aliases = normalise_alias_table({"计 科 院": "計算機學院"}, "南岭大学")
    assert standardise_org_name("南岭大学 计科院", aliases, "南岭大学") == "计算机学院"
    assert standardise_org_name("計算機學院", aliases, "南岭大学") == "计算机学院"
    assert standardise_org_name("南岭大学", aliases, "南岭大学") == "南岭大学"  # the university itself


def test_formula_injection_is_recognised():
    from ingest.standardise import looks_like_formula

    assert looks_like_formula("=cmd|' /C calc'!A0")
    assert looks_like_formula("@SUM(A1)") and looks_like_formula("+HYPERLINK(\"x\")")
    assert not looks_like_formula("+8613800138000") and not looks_like_formula("-12.5")


def test_author_lists_split_on_the_right_commas():
    from ingest.standardise import split_author_list

    assert split_author_list("张伟、李娜;王芳") == ["张伟", "李娜", "王芳"]
    assert split_author_list("张伟,李娜，王和平") == ["张伟", "李娜", "王和平"]
    assert split_author_list("Zhang Wei, Li Na") == ["Zhang Wei", "Li Na"]
    assert split_author_list("ZHANG, Wei; LI, Na") == ["ZHANG, Wei", "LI, Na"]
    assert split_author_list("Wei Zhang, Na Li and Fang Wang") == ["Wei Zhang", "Na Li", "Fang Wang"]
    assert split_author_list("") == []
