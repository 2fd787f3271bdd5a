"""Multi-process tests with real processes (multiprocessing)."""
import hashlib
import multiprocessing as mp
import os
import random
import time

import pytest

import shmcache
from conftest import MiB

WORKERS = 4
KEYS = 200


def _value(key, rnd):
    payload = rnd.randbytes(rnd.randrange(0, 3000))
    return hashlib.blake2b(key + payload, digest_size=16).digest() + payload


def _verify(key, v):
    return hashlib.blake2b(key + v[16:], digest_size=16).digest() == v[:16]


def _checksum_worker(n, seconds, inherited, done):
    """Sets and gets shared keys; every value read must carry the checksum
    of its key and payload.  Exit code 0, or 1 and a message.  The count
    of operations goes to done[n], not into the cache: a key written once
    while the other workers keep overwriting is a one-hit item that the
    small queue may rightly evict."""
    c = inherited or shmcache.Cache.open("mp")
    rnd = random.Random(n)
    end = time.monotonic() + seconds
    ops = bad = 0
    while time.monotonic() < end:
        key = b"k%d" % rnd.randrange(KEYS)
        if rnd.random() < 0.3:
            c.set(key, _value(key, rnd))
        else:
            v = c.get(key)
            if v is not None and not _verify(key, v):
                bad += 1
        ops += 1
    done[n] = ops
    if not inherited:
        c.close()
    os._exit(1 if bad else 0)


@pytest.mark.parametrize("how", ["fork-open", "fork-inherit", "spawn"])
def test_checksummed_values(how):
    c = shmcache.Cache.create("mp", 32 * MiB)
    ctx = mp.get_context("spawn" if how == "spawn" else "fork")
    inherited = c if how == "fork-inherit" else None
    done = ctx.Array("q", WORKERS)
    ps = [ctx.Process(target=_checksum_worker,
                      args=(n, 1.5, inherited, done))
          for n in range(WORKERS)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
    assert [p.exitcode for p in ps] == [0] * WORKERS
    assert all(ops > 0 for ops in done)
    for i in range(KEYS):
        key = b"k%d" % i
        v = c.get(key)
        assert v is None or _verify(key, v)
    s = c.stats()
    assert s["sets"] > WORKERS and s["gets"] > WORKERS
    assert c.check() == []
    c.close()


def _stampede_worker(barrier, count_path, key, q, fail):
    c = shmcache.Cache.open("st")

    def loader(k):
        with open(count_path, "a") as f:  # one line per loader call
            f.write("%d\n" % os.getpid())
        time.sleep(0.8)  # the others arrive and wait
        if fail:
            raise RuntimeError("backend down")
        return b"loaded by %d" % os.getpid()

    barrier.wait()
    try:
        q.put(("ok", c.get_or_load(key, loader)))
    except shmcache.LoadFailed as e:
        q.put(("LoadFailed", e.errno))
    except RuntimeError as e:
        q.put(("RuntimeError", str(e)))
    c.close()


def _stampede(tmp_path, fail, n=6):
    c = shmcache.Cache.create("st", 16 * MiB)
    count = tmp_path / "loads"
    count.write_text("")
    ctx = mp.get_context("fork")
    barrier, q = ctx.Barrier(n), ctx.Queue()
    ps = [ctx.Process(target=_stampede_worker,
                      args=(barrier, str(count), b"hot", q, fail))
          for _ in range(n)]
    for p in ps:
        p.start()
    results = [q.get(timeout=60) for _ in ps]
    for p in ps:
        p.join(60)
    assert [p.exitcode for p in ps] == [0] * n
    calls = count.read_text().split()
    return c, results, calls


def test_stampede_loader_runs_once(tmp_path):
    c, results, calls = _stampede(tmp_path, fail=False)
    assert len(calls) == 1, calls
    assert results == [("ok", b"loaded by " + calls[0].encode())] * 6
    s = c.stats()
    assert s["loads"] == 1 and s["load_waits"] >= 1
    assert c.get(b"hot") == results[0][1]
    c.close()


def test_stampede_loader_raises(tmp_path):
    """The loading process gets its exception; the processes that waited
    for it get LoadFailed (a late one may load, and raise, itself)."""
    c, results, calls = _stampede(tmp_path, fail=True)
    kinds = [r[0] for r in results]
    assert kinds.count("RuntimeError") == len(calls) >= 1
    assert kinds.count("LoadFailed") >= 1
    assert all(r == ("LoadFailed", 5) for r in results
               if r[0] == "LoadFailed")  # errno EIO
    assert c.get(b"hot") is None
    c.close()
