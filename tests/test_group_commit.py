"""The access log's group commit: every row committed before its request returns, in batches."""

import threading

import pytest

from campus_kg.group_commit import GroupCommitter


def test_every_row_is_written_before_submit_returns_and_rows_share_transactions():
    written, batches, lock = [], [], threading.Lock()
    gate = threading.Event()

    def write(rows):
        gate.wait(5)  # hold the first transaction so the others queue up behind it
        with lock:
            batches.append(len(rows))
            written.extend(r["n"] for r in rows)

    committer = GroupCommitter(write)
    seen_before_return = []

    def request(n):
        committer.submit({"n": n})
        with lock:
            seen_before_return.append(n in written)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert sorted(written) == list(range(50)) and all(seen_before_return)
    assert len(batches) < 50  # queued rows went in together


def test_a_failed_commit_fails_every_request_in_it():
    def write(rows):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        GroupCommitter(write).submit({"n": 1})


def test_no_transaction_holds_more_than_max_batch_rows_and_none_is_lost():
    written, batches, lock = [], [], threading.Lock()
    gate = threading.Event()

    def write(rows):
        gate.wait(5)
        with lock:
            batches.append(len(rows))
            written.extend(r["n"] for r in rows)

    committer = GroupCommitter(write, max_batch=10)
    threads = [threading.Thread(target=committer.submit, args=({"n": n},)) for n in range(35)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert sorted(written) == list(range(35))
    assert max(batches) <= 10 and len(batches) >= 4
