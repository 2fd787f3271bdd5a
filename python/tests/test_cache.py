"""Unit tests of every method of shmcache.Cache."""
import errno
import os
import threading
import time

import pytest

import shmcache
from conftest import MiB, struct_fields


def test_create_open_close(shmdir):
    c = shmcache.Cache.create("a", 16 * MiB)
    assert repr(c) == "<shmcache.Cache 'a'>"
    assert c.name == "a" and not c.closed
    assert os.path.exists(os.path.join(shmdir, "shmcache.a"))
    c.set(b"k", b"v")
    d = shmcache.Cache.open("a")
    assert d.get(b"k") == b"v"
    d.close()
    c.close()
    assert c.closed and repr(c) == "<shmcache.Cache 'a' closed>"
    c.close()  # again: nothing
    with pytest.raises(ValueError, match="closed"):
        c.get("k")
    with pytest.raises(ValueError):
        c.stats()
    assert shmcache.Cache.open("a", any_owner=True).get("k") == b"v"


def test_no_constructor():
    with pytest.raises(TypeError):
        shmcache.Cache()


def test_context_manager():
    with shmcache.Cache.create("a", 16 * MiB) as c:
        c.set("x", "y")
    assert c.closed
    with shmcache.Cache.open("a") as c:
        assert c.get("x") == b"y"
        with pytest.raises(ValueError):
            raise ValueError("inside")  # exceptions are not swallowed
    assert c.closed
    with pytest.raises(ValueError):
        with c:
            pass


def test_create_options():
    with shmcache.Cache.create("o", 32 * MiB, max_memory=128 * MiB,
                               segment_size=256 << 10, default_ttl=77,
                               mode=0o640, max_readers=64) as c:
        i = c.info()
        assert i["segment_size"] == 256 << 10
        assert i["default_ttl"] == 77
        assert i["max_readers"] == 64
        assert i["max_memory"] == 128 * MiB
        assert os.stat(i["path"]).st_mode & 0o777 == 0o640
        assert c.stats()["memory"] == 32 * MiB


def test_create_bad_arguments():
    with pytest.raises(OverflowError):
        shmcache.Cache.create("o", -1)
    with pytest.raises(OverflowError):
        shmcache.Cache.create("o", 16 * MiB, default_ttl=1 << 32)
    with pytest.raises(ValueError):
        shmcache.Cache.create("o\0x", 16 * MiB)
    with pytest.raises(TypeError):
        shmcache.Cache.create(b"o", 16 * MiB)
    with pytest.raises(shmcache.SysError) as e:
        shmcache.Cache.create("o", 16 * MiB, segment_size=1000)
    assert e.value.errno == errno.EINVAL


def test_huge_needs_huge_tmpfs(shmdir):
    try:
        c = shmcache.Cache.create("h", 256 * MiB, huge=True)
    except shmcache.SysError as e:
        assert e.errno == errno.ENOTSUP
    else:  # SHMCACHE_DIR is a huge tmpfs after all
        assert c.info()["flags"] & shmcache.CREATE_HUGE
        c.close()


def test_set_get_bytes_and_str(cache):
    cache.set(b"k1", b"v1")
    cache.set("k2", "v\u00e9")
    assert cache.get("k1") == b"v1"
    assert cache.get(b"k2") == "v\u00e9".encode()
    assert cache.get("k\u00e9") is None
    cache.set("k\u00e9", b"")
    assert cache.get("k\u00e9".encode()) == b""
    cache.set(bytearray(b"k3"), memoryview(b"v3"))
    assert cache.get(b"k3") == b"v3"
    cache.set("k1", "replaced")
    assert cache.get("k1") == b"replaced"
    with pytest.raises(TypeError):
        cache.set(1, b"v")
    with pytest.raises(TypeError):
        cache.set(b"k", 1.5)
    with pytest.raises(UnicodeEncodeError):
        cache.set("\udc80", b"v")


def test_large_value(cache):
    big = os.urandom(300000)  # larger than the first read buffer
    cache.set("big", big)
    assert cache.get("big") == big
    assert cache.get("big", with_flags=True) == (big, 0)
    m = cache.info()["max_value"]
    top = b"x" * m
    cache.set("m", top)  # max_value is for a 1-byte key
    assert cache.get("m") == top


def test_flags(cache):
    cache.set("f", "v", flags=0xDEADBEEF)
    assert cache.get("f", with_flags=True) == (b"v", 0xDEADBEEF)
    assert cache.get("nope", with_flags=True) is None
    with pytest.raises(OverflowError):
        cache.set("f", "v", flags=1 << 32)


def test_add(cache):
    assert cache.add("a", "first") is True
    assert cache.add("a", "second") is False
    assert cache.get("a") == b"first"
    s = cache.stats()
    assert s["adds"] >= 1 and s["add_exists"] == 1
    cache.delete("a")
    assert cache.add("a", "third", ttl=100, flags=3) is True
    assert cache.get("a", with_flags=True) == (b"third", 3)


def test_delete(cache):
    cache.set("d", "v")
    assert cache.delete("d") is True
    assert cache.delete("d") is False
    assert cache.get("d") is None
    assert cache.delete(b"never") is False


def test_ttl(cache):
    cache.set("forever", "v")
    assert cache.ttl("forever") == 0
    cache.set("t", "v", ttl=100)
    assert 98 <= cache.ttl("t") <= 100
    assert cache.ttl("missing") is None
    cache.set("t", "v", ttl=0)
    assert cache.ttl("t") == 0
    cache.set("t", "v", ttl=shmcache.TTL_MAX)
    with pytest.raises(ValueError):
        cache.set("t", "v", ttl=shmcache.TTL_MAX + 1)
    with pytest.raises(OverflowError):
        cache.set("t", "v", ttl=-1)


def test_default_ttl():
    with shmcache.Cache.create("dt", 16 * MiB, default_ttl=50) as c:
        c.set("a", "v")  # ttl=None: the cache's default
        assert 48 <= c.ttl("a") <= 50
        c.set("b", "v", ttl=0)
        assert c.ttl("b") == 0
        c.set("c", "v", ttl=None)
        assert 48 <= c.ttl("c") <= 50


def test_expiry(cache):
    cache.set("e", "v", ttl=1)
    deadline = time.time() + 5
    while cache.get("e") is not None:
        assert time.time() < deadline, "never expired"
        time.sleep(0.1)
    assert cache.ttl("e") is None


def test_stats(cache):
    s = cache.stats()
    assert set(s) == struct_fields("shmc_stats")
    assert all(isinstance(v, int) for v in s.values())
    cache.set("a", "1")
    cache.get("a")
    cache.get("b")
    t = cache.stats()
    assert t["sets"] == s["sets"] + 1
    assert t["gets"] == s["gets"] + 2
    assert t["hits"] == s["hits"] + 1
    assert t["misses"] == s["misses"] + 1
    assert t["memory"] == 16 * MiB and t["max_memory"] == 64 * MiB
    assert t["readers"] >= 1 and t["processes"] >= 1


def test_info(cache, shmdir):
    i = cache.info()
    assert set(i) == struct_fields("shmc_info")
    assert i["name"] == "t"
    assert i["path"] == os.path.join(shmdir, "shmcache.t")
    assert i["max_memory"] == 64 * MiB
    assert 0 < i["min_memory"] <= 16 * MiB
    assert i["max_value"] < i["segment_size"]
    assert abs(i["created"] - time.time()) < 60


def test_resize(cache):
    cache.set("keep", "v")
    cache.resize(32 * MiB)
    assert cache.stats()["memory"] == 32 * MiB
    cache.resize(48 * MiB, wait=False)
    cache.resize(16 * MiB)
    s = cache.stats()
    assert s["memory"] == 16 * MiB and s["resizes"] == 3
    with pytest.raises(shmcache.BudgetError) as e:
        cache.resize(128 * MiB)
    assert e.value.code == -20014 and e.value.name == "SHMC_EBUDGET"
    assert isinstance(e.value, ValueError)
    with pytest.raises(shmcache.BudgetError):
        cache.resize(1 * MiB)
    assert cache.check() == []


def test_check(cache):
    for i in range(1000):
        cache.set("k%d" % i, os.urandom(100))
    assert cache.check() == []


def test_keys(cache):
    want = {b"a", "b".encode(), "\u00e9".encode()}
    for k in ("a", b"b", "\u00e9"):
        cache.set(k, "v")
    assert set(cache.keys()) == want
    cache.delete("a")
    assert set(cache.keys()) == want - {b"a"}


def test_destroy(shmdir):
    c = shmcache.Cache.create("gone", 16 * MiB)
    c.set("k", "v")
    shmcache.destroy("gone")
    assert not os.path.exists(os.path.join(shmdir, "shmcache.gone"))
    assert c.get("k") == b"v"  # the mapping stays until closed
    c.close()
    with pytest.raises(shmcache.NoSuchCache):
        shmcache.destroy("gone")
    with pytest.raises(shmcache.BadName):
        shmcache.destroy("a/b")
    with pytest.raises(TypeError):
        shmcache.destroy(b"gone")


def test_threads_get_their_own_slots(cache):
    errors = []
    inside = threading.Barrier(5)

    def work(n):
        try:
            for i in range(2000):
                k = "t%d:%d" % (n, i % 50)
                cache.set(k, k * 3)
                v = cache.get(k)
                assert v is None or v == (k * 3).encode()
            inside.wait()  # every thread holds its slot here
            inside.wait()
        except BaseException as e:  # noqa: B036
            errors.append(e)

    ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    inside.wait()
    readers = cache.stats()["readers"]
    inside.wait()
    for t in ts:
        t.join()
    assert not errors
    assert readers >= 4  # one slot per thread that used the cache
    assert cache.check() == []


def test_module_functions():
    assert shmcache.err_name(-20001) == "SHMC_ENOTFOUND"
    assert shmcache.err_name(-errno.ENOENT) == "ENOENT"
    assert "key" in shmcache.strerror(-20001)
    assert shmcache.KEY_MAX == 250 and shmcache.NAME_MAX == 64
    assert shmcache.TTL_MAX == 10 * 365 * 86400
    assert shmcache.__version__.count(".") == 2
