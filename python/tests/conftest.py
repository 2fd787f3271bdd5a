"""Fixtures of the shmcache binding's tests: a private SHMCACHE_DIR per
test (removed afterwards, with every cache in it) and a fresh cache."""
import os
import re
import shutil
import tempfile

import pytest

import shmcache

MiB = 1 << 20

HEADER = os.environ.get("SHMCACHE_HEADER") or os.path.join(
    os.path.dirname(__file__), "..", "..", "include", "shmcache.h")


def struct_fields(struct):
    """The field names of `struct NAME` in shmcache.h, without padding
    and reserved words: what stats() and info() must return."""
    with open(HEADER) as f:
        text = f.read()
    body = re.search(r"struct %s \{(.*?)\n\};" % struct, text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = set()
    for decl in body.split(";"):
        decl = decl.strip()
        if not decl:
            continue
        # "uint64_t a, b, c" or "char name[N]"
        decl = re.sub(r"\[[^]]*\]", "", decl)
        first, _, rest = decl.partition(",")
        names.add(first.split()[-1])
        names.update(n.strip() for n in rest.split(",") if n.strip())
    return {n for n in names if n not in ("pad_", "reserved")}


@pytest.fixture(autouse=True)
def shmdir(monkeypatch):
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="shmcache-py.", dir=base)
    monkeypatch.setenv("SHMCACHE_DIR", d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cache():
    c = shmcache.Cache.create("t", 16 * MiB, max_memory=64 * MiB)
    yield c
    c.close()
