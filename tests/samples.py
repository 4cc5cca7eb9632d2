"""Picks from a resolved lakehouse, and small exports, that several tests need."""

from __future__ import annotations


def persons_without_id_number(lake, n: int = 2) -> list[tuple[str, str]]:
    """(a record, its master) for `n` persons none of whose records has a valid ID number: nothing
    but a steward's word can join two of them."""
    return lake.con.execute("""SELECT min(l.member_id), l.master_id FROM res_link l
        JOIN dwd_person_record p ON p.record_id = l.member_id WHERE l.entity_type = 'Person'
        GROUP BY l.master_id HAVING count(p.id_number) = 0 ORDER BY l.master_id LIMIT ?""", [n]).fetchall()


def write_csv(folder, name: str, header: list[str], rows: list[list[str]]) -> None:
    """An export as a UTF-8 CSV file `folder/name.csv`."""
    import csv

    with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
