"""get_or_load with a Python loader, in one process."""
import os
import threading
import time

import pytest

import shmcache


class Loader:
    def __init__(self, value=b"loaded", exc=None):
        self.value, self.exc, self.calls = value, exc, []

    def __call__(self, key):
        self.calls.append(key)
        if self.exc:
            raise self.exc
        return self.value


def test_miss_loads_then_hits(cache):
    ld = Loader()
    assert cache.get_or_load("k", ld) == b"loaded"
    assert ld.calls == ["k"]  # the key as given
    assert cache.get_or_load("k", ld) == b"loaded"
    assert cache.get("k") == b"loaded"
    assert len(ld.calls) == 1
    s = cache.stats()
    assert s["loads"] == 1


def test_present_key_is_not_loaded(cache):
    cache.set(b"p", b"there")
    ld = Loader()
    assert cache.get_or_load(b"p", ld) == b"there"
    assert ld.calls == []


def test_str_and_bytes_like(cache):
    assert cache.get_or_load("s", lambda k: "\u00e9t\u00e9") == "\u00e9t\u00e9".encode()
    assert cache.get_or_load("b", lambda k: bytearray(b"ba")) == b"ba"
    assert cache.get_or_load("e", lambda k: b"") == b""
    assert cache.get("e") == b""


def test_large_value_loaded_once(cache):
    big = os.urandom(200000)
    ld = Loader(big)
    assert cache.get_or_load("big", ld) == big
    assert len(ld.calls) == 1
    assert cache.get_or_load("big", ld) == big  # a hit, larger than the
    assert len(ld.calls) == 1                   # first read buffer


def test_none_is_not_found(cache):
    ld = Loader(None)
    assert cache.get_or_load("n", ld) is None
    assert cache.get_or_load("n", ld) is None
    assert len(ld.calls) == 2  # without negative_ttl, asked each time
    assert cache.get("n") is None


def test_negative_ttl(cache):
    ld = Loader(None)
    assert cache.get_or_load("n", ld, negative_ttl=60) is None
    assert cache.get_or_load("n", ld, negative_ttl=60) is None
    assert len(ld.calls) == 1  # "not found" remembered
    cache.delete("n")
    ld.value = b"now"
    assert cache.get_or_load("n", ld) == b"now"


def test_exception_propagates_nothing_stored(cache):
    boom = KeyError("database down")
    ld = Loader(exc=boom)
    with pytest.raises(KeyError) as e:
        cache.get_or_load("x", ld)
    assert e.value is boom
    assert cache.get("x") is None
    ld.exc = None
    assert cache.get_or_load("x", ld) == b"loaded"  # the lease was freed
    assert len(ld.calls) == 2


def test_bad_return_type(cache):
    with pytest.raises(TypeError, match="loader must return"):
        cache.get_or_load("x", lambda k: 42)
    with pytest.raises(TypeError):
        cache.get_or_load("x", "not callable")
    assert cache.get("x") is None


def test_ttl_options(cache):
    cache.get_or_load("t", lambda k: b"v", ttl=100)
    assert 98 <= cache.ttl("t") <= 100
    cache.get_or_load("u", lambda k: b"v")  # the cache's default: none
    assert cache.ttl("u") == 0
    with pytest.raises(ValueError):
        cache.get_or_load("w", lambda k: b"v", ttl=shmcache.TTL_MAX + 1)


def test_soft_ttl_refresh(cache):
    n = [0]

    def loader(key):
        n[0] += 1
        return b"v%d" % n[0]

    assert cache.get_or_load("s", loader, ttl=100, soft_ttl=1) == b"v1"
    time.sleep(1.2)
    # past the soft TTL: this caller refreshes and gets the fresh value
    assert cache.get_or_load("s", loader, ttl=100, soft_ttl=1) == b"v2"
    assert cache.get("s") == b"v2"


def test_loader_may_use_the_cache(cache):
    def loader(key):
        cache.set("side", "effect")
        return cache.get("side") + b"!"

    assert cache.get_or_load("k", loader) == b"effect!"
    assert cache.get("side") == b"effect"


def test_value_too_large_to_store(cache):
    """The loaded value is returned although it cannot be stored."""
    m = cache.info()["max_value"]
    big = b"x" * (m + 10)
    assert cache.get_or_load("k", lambda k: big) == big
    assert cache.get("k") is None
    assert cache.get_or_load("k", lambda k: b"small") == b"small"


def test_threads_stampede_one_load(cache):
    """N threads miss the same key: the loader runs once, the others wait
    (which needs the GIL released while they wait)."""
    calls = []
    results = []
    go = threading.Barrier(6)

    def loader(key):
        calls.append(threading.get_ident())
        time.sleep(0.5)  # the others arrive and wait meanwhile
        return b"value"

    def worker():
        go.wait()
        results.append(cache.get_or_load("hot", loader))

    ts = [threading.Thread(target=worker) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [b"value"] * 6
    assert len(calls) == 1
    assert cache.stats()["load_waits"] >= 1


def test_close_refused_while_another_thread_loads(cache):
    started, release = threading.Event(), threading.Event()

    def loader(key):
        started.set()
        release.wait(10)
        return b"v"

    t = threading.Thread(target=cache.get_or_load, args=("k", loader))
    t.start()
    started.wait(10)
    with pytest.raises(shmcache.Busy):
        cache.close()
    release.set()
    t.join()
    cache.close()
    assert cache.closed


def test_wait_timeout(cache):
    """A caller that waits longer than wait_ms for another thread's loader
    gets LoadTimeout."""
    started, release = threading.Event(), threading.Event()

    def slow(key):
        started.set()
        release.wait(10)
        return b"v"

    t = threading.Thread(target=cache.get_or_load, args=("k", slow))
    t.start()
    started.wait(10)
    try:
        with pytest.raises(shmcache.LoadTimeout) as e:
            cache.get_or_load("k", lambda k: b"other", wait_ms=200)
        assert isinstance(e.value, TimeoutError)
        assert e.value.name == "ETIMEDOUT"
    finally:
        release.set()
        t.join()
    assert cache.get("k") == b"v"
