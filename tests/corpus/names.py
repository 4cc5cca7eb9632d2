"""Naming tables for the independent corpus, typed in for it (not taken from the project's generator).

Surnames are weighted roughly by how common they are in mainland China, so that namesakes happen as
often as they do in a real university; given-name characters are the ones parents actually choose.
Homophone spellings are derived with pypinyin (another character of the same toneless reading),
traditional spellings with OpenCC.
"""

from __future__ import annotations

# (surname, romanisation as printed in English papers) — the romanisation is given for surnames whose
# reading as a surname differs from pypinyin's default (单 Shan, 曾 Zeng, 解 Xie, 区 Ou, 仇 Qiu ...).
SURNAMES: list[tuple[str, int]] = [
    ("王", 90), ("李", 88), ("张", 85), ("刘", 70), ("陈", 66), ("杨", 45), ("黄", 42), ("赵", 38), ("吴", 35),
    ("周", 34), ("徐", 22), ("孙", 21), ("马", 20), ("朱", 19), ("胡", 18), ("郭", 17), ("何", 16), ("高", 15),
    ("林", 15), ("罗", 14), ("郑", 14), ("梁", 13), ("谢", 11), ("宋", 10), ("唐", 10), ("许", 9), ("韩", 9),
    ("冯", 9), ("邓", 9), ("曹", 9), ("彭", 8), ("曾", 8), ("肖", 8), ("田", 8), ("董", 7), ("袁", 7), ("潘", 7),
    ("于", 7), ("蒋", 7), ("蔡", 7), ("余", 7), ("杜", 6), ("叶", 6), ("程", 6), ("苏", 6), ("魏", 6), ("吕", 6),
    ("丁", 6), ("任", 6), ("沈", 5), ("姚", 5), ("卢", 5), ("姜", 5), ("崔", 5), ("钟", 5), ("谭", 5), ("陆", 5),
    ("汪", 5), ("范", 5), ("金", 5), ("石", 4), ("廖", 4), ("贾", 4), ("夏", 4), ("韦", 4), ("付", 4), ("方", 4),
    ("白", 4), ("邹", 4), ("孟", 4), ("熊", 4), ("秦", 4), ("邱", 4), ("江", 4), ("尹", 4), ("薛", 3), ("闫", 3),
    ("段", 3), ("雷", 3), ("侯", 3), ("龙", 3), ("史", 3), ("陶", 3), ("黎", 3), ("贺", 3), ("顾", 3), ("毛", 3),
    ("郝", 3), ("龚", 3), ("邵", 3), ("万", 3), ("钱", 3), ("严", 3), ("覃", 2), ("武", 2), ("戴", 2), ("莫", 2),
    ("孔", 2), ("向", 2), ("汤", 2), ("单", 2), ("解", 1), ("仇", 1), ("区", 1), ("查", 1), ("翟", 1), ("葛", 1),
    ("欧阳", 2), ("司马", 1), ("诸葛", 1), ("上官", 1), ("皇甫", 1), ("令狐", 1), ("尉迟", 1),
]

SURNAME_ROMAN = {"单": "Shan", "曾": "Zeng", "解": "Xie", "仇": "Qiu", "区": "Ou", "查": "Zha", "翟": "Zhai",
                 "尉迟": "Yuchi", "万": "Wan", "覃": "Qin", "朴": "Piao"}

# Given-name characters; the first group is also used as one-character given names (伟, 芳, 静 ...),
# which is where namesakes come from.
GIVEN_COMMON = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华")
GIVEN_CHARS = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文斌宇浩鹏飞志红玲燕辉波宁晨欣怡子涵梓萱雨欣一诺"
    "佳琪思远晓东海峰亮俊博文彬鑫嘉豪宏伦天翔凯瑞泽昊然婷雪梅兰春玉珍凤琳倩颖慧琦璐瑶晶莹佩薇晗睿哲轩"
    "铭诚航帆星宸逸安康乐源清正德仁义礼智信忠勤俭和顺永长福贵荣昌盛兴旺振家庭新立成达鸿展云龙虎彪"
    "丹青秋冬红阳光辉耀金银铁石山川江河湖泽林森松柏竹梅菊莲荷桃李杏兵武卫民学生")

# Uyghur, Kazakh and other names written in characters with a middle dot (given·family).
DOTTED_NAMES = ["买买提·艾力", "阿依古丽·吐尔逊", "艾尔肯·吐尔洪", "古丽米拉·阿不都热合曼", "努尔兰·别克",
                "迪丽努尔·买买提", "热依拉·艾买提", "阿不都拉·司马义", "帕提古丽·吾斯曼", "吐尔逊·卡德尔",
                "哈力木拉提·努尔", "加娜尔·哈再孜", "伊力哈木·阿不都", "扎西·次仁", "巴特尔·孟和"]
DOT_VARIANTS = ["·", "•", "．", "・", ""]  # how other systems type (or drop) the dot

WESTERN_GIVEN = ["John", "Emma", "Lucas", "Sophia", "Mohammed", "Olga", "Pierre", "Anna", "Carlos", "Maria",
                 "David", "Fatima", "Ivan", "Aisha", "Kenji", "Yuki", "Tom", "Laura", "Ahmed", "Nadia", "Paul",
                 "Elena", "Samuel", "Grace", "Hassan", "Irina", "Marco", "Sara", "Tuan", "Linh", "Arjun", "Priya",
                 "Kwame", "Amara", "Jonas", "Lena", "Dmitri", "Chloe", "Omar", "Zainab"]
WESTERN_FAMILY = ["Smith", "Johnson", "Mueller", "Dubois", "Garcia", "Rossi", "Ivanov", "Petrova", "Khan",
                  "Nguyen", "Tanaka", "Sato", "Kim", "Park", "Silva", "Santos", "Brown", "Wilson", "Kowalski",
                  "Novak", "Haddad", "Mensah", "Okafor", "Sharma", "Patel", "Larsen", "Jensen", "Martin",
                  "Bernard", "Fischer", "Schmidt", "Rahman", "Hossain", "Tran", "Pham", "Suzuki", "Lopez",
                  "Fernandez", "Costa", "Moreau"]
# People known by one name only (Indonesia, Myanmar, Mongolia).
ONE_WORD_NAMES = ["Sukarno", "Budiono", "Wiranto", "Suharti", "Batbayar", "Oyunchimeg", "Thein", "Sutrisno"]

EXTERNAL_INSTITUTIONS = ["清华大学", "北京大学", "浙江大学", "复旦大学", "武汉大学", "中山大学", "四川大学",
                         "中国科学院昆明植物研究所", "华为技术有限公司", "云南省农业科学院", "University of Tokyo",
                         "National University of Singapore"]

# ID number region codes (province-city-county) that appear on real cards; Xinjiang for dotted names.
REGIONS = ["530102", "530103", "530111", "530302", "530402", "532301", "110105", "110108", "310104", "310115",
           "320102", "330106", "340104", "350203", "360102", "370102", "410105", "420106", "430104", "440106",
           "450103", "500103", "510107", "520102", "610113", "620102", "640104"]
XINJIANG_REGIONS = ["650102", "650103", "652801", "653101"]
