"""Library error codes -> exceptions (python/shmcache.c, RAISING)."""
import errno
import os
import struct

import pytest

import shmcache
from conftest import MiB


def test_hierarchy():
    E = shmcache
    for cls in (E.KeyTooLong, E.ValueTooLarge, E.BadName, E.BudgetError):
        assert issubclass(cls, E.Error) and issubclass(cls, ValueError)
    for cls in (E.Busy, E.Stalled, E.Corrupt, E.NotACache,
                E.VersionMismatch, E.NoReaderSlot, E.SysError):
        assert issubclass(cls, E.Error)
    assert issubclass(E.SysError, OSError)
    assert issubclass(E.NoSuchCache, FileNotFoundError)
    assert issubclass(E.NoSuchCache, E.SysError)
    assert issubclass(E.CacheExists, FileExistsError)
    assert issubclass(E.LoadTimeout, TimeoutError)
    assert issubclass(E.LoadFailed, E.SysError)
    assert not issubclass(E.Error, OSError)


def test_key_too_long(cache):
    for key in ("", "k" * 251, b"k" * 251):
        with pytest.raises(shmcache.KeyTooLong) as e:
            cache.set(key, "v")
        assert e.value.code == -20003 and e.value.name == "SHMC_EKEYLEN"
        assert "SHMC_EKEYLEN" in str(e.value)
    cache.set("k" * 250, "v")  # KEY_MAX itself is fine
    for call in (cache.get, cache.delete, cache.ttl):
        with pytest.raises(shmcache.KeyTooLong):
            call("k" * 251)
    with pytest.raises(shmcache.KeyTooLong):
        cache.add("", "v")
    with pytest.raises(ValueError):  # also a ValueError
        cache.get_or_load("", lambda k: b"v")


def test_value_too_large(cache):
    m = cache.info()["max_value"]
    with pytest.raises(shmcache.ValueTooLarge) as e:
        cache.set("k", b"x" * (m + 1))
    assert e.value.code == -20004 and e.value.name == "SHMC_EVALLEN"
    with pytest.raises(ValueError):
        cache.add("k", b"x" * (m + 1))


def test_no_such_cache():
    with pytest.raises(shmcache.NoSuchCache) as e:
        shmcache.Cache.open("nope")
    x = e.value
    assert isinstance(x, FileNotFoundError) and isinstance(x, shmcache.Error)
    assert x.errno == errno.ENOENT and x.code == -errno.ENOENT
    assert x.name == "ENOENT" and x.filename == "nope"
    assert "no such cache" in str(x)


def test_cache_exists():
    shmcache.Cache.create("x", 16 * MiB).close()
    with pytest.raises(FileExistsError) as e:
        shmcache.Cache.create("x", 16 * MiB)
    assert isinstance(e.value, shmcache.CacheExists)
    assert e.value.code == -errno.EEXIST and e.value.name == "EEXIST"


def test_missing_dir(monkeypatch, shmdir):
    # -ENOENT from create is the directory, not "no such cache"
    monkeypatch.setenv("SHMCACHE_DIR", os.path.join(shmdir, "none"))
    with pytest.raises(shmcache.SysError) as e:
        shmcache.Cache.create("x", 16 * MiB)
    assert e.value.errno == errno.ENOENT
    assert not isinstance(e.value, shmcache.NoSuchCache)


def test_bad_name():
    for name in ("", "a/b", "x" * 65, "sp ace"):
        with pytest.raises(shmcache.BadName) as e:
            shmcache.Cache.create(name, 16 * MiB)
        assert e.value.code == -20006 and isinstance(e.value, ValueError)
        with pytest.raises(shmcache.BadName):
            shmcache.Cache.open(name)


def test_budget():
    with pytest.raises(shmcache.BudgetError) as e:
        shmcache.Cache.create("b", 1 << 16)
    assert e.value.name == "SHMC_EBUDGET"
    with pytest.raises(shmcache.BudgetError):
        shmcache.Cache.create("b", 32 * MiB, max_memory=16 * MiB)


def test_not_a_cache(shmdir):
    with open(os.path.join(shmdir, "shmcache.junk"), "wb") as f:
        f.write(b"\0" * (1 << 20))
    with pytest.raises(shmcache.NotACache) as e:
        shmcache.Cache.open("junk")
    assert e.value.code == -20007 and e.value.name == "SHMC_ENOTCACHE"


def test_version_mismatch(shmdir):
    shmcache.Cache.create("v", 16 * MiB).close()
    path = os.path.join(shmdir, "shmcache.v")
    with open(path, "r+b") as f:  # format version: bytes 8-11
        f.seek(8)
        f.write(struct.pack("<I", 0xFFFF))
    with pytest.raises(shmcache.VersionMismatch) as e:
        shmcache.Cache.open("v")
    assert e.value.code == -20008 and e.value.name == "SHMC_EVERSION"


def test_corrupt(shmdir):
    shmcache.Cache.create("c", 16 * MiB).close()
    path = os.path.join(shmdir, "shmcache.c")
    os.truncate(path, 8192)
    with pytest.raises(shmcache.Corrupt) as e:
        shmcache.Cache.open("c")
    assert e.value.code == -20009 and e.value.name == "SHMC_ECORRUPT"


def test_permission(shmdir):
    if os.geteuid() == 0:
        pytest.skip("root opens any file")
    shmcache.Cache.create("p", 16 * MiB, mode=0o000).close()
    with pytest.raises(PermissionError) as e:
        shmcache.Cache.open("p")
    assert isinstance(e.value, shmcache.SysError)


def test_busy_inside_loader(cache):
    seen = []

    def loader(key):
        with pytest.raises(shmcache.Busy) as e:
            cache.get_or_load("other", lambda k: b"x")
        seen.append(e.value.code)
        with pytest.raises(shmcache.Busy):
            cache.close()  # this thread is inside get_or_load
        return b"v"

    assert cache.get_or_load("k", loader) == b"v"
    assert seen == [-20013]

