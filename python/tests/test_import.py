"""The module imports in a plain python, with no GLIBC_TUNABLES.

libshmcache is flagged STATIC_TLS (an initial-exec variable in
lib/cache.c), so dlopen() must find the library's whole thread-local block
in the small surplus glibc keeps for libraries loaded later (about 2 KB).
It once held 27 KB of per-thread buffers and `import shmcache` failed with
"cannot allocate memory in static TLS block"; the library keeps 64 bytes
there now, and this test keeps it so."""
import os
import subprocess
import sys


def test_import_without_tunable():
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    r = subprocess.run([sys.executable, "-c", "import shmcache"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
