/*
 * shmcache.c - the Python binding: module `shmcache`, class `Cache`.
 *
 * WHAT
 * A CPython extension over the public API of libshmcache (include/
 * shmcache.h), nothing else: a Cache object owns one shmc_t handle;
 * keys and values are bytes (str is encoded as UTF-8, any other
 * bytes-like object is read through the buffer protocol); error codes
 * become exceptions (see RAISING below).
 *
 * THE GIL
 * Calls that can wait are made with the GIL released: create and open
 * (they fallocate and map), destroy, set and add (a full cache evicts
 * under the log lock), get_or_load (it waits on a futex for another
 * process's loader), resize, check.  No Python object is touched while
 * the GIL is released: key and value bytes are pinned first (the argument
 * tuple holds the objects; a Py_buffer pins a bytearray's storage), the
 * value read back goes to a C buffer, and check's report lines are
 * copied into malloc'd strings.  The get_or_load loader takes the GIL
 * back (PyEval_RestoreThread) to call the Python callable and gives it up
 * again before returning to the library.  Short calls that never wait
 * (get, delete, ttl, stats, info, keys) keep the GIL.
 *
 * THREADS AND PROCESSES
 * The library gives each thread its own reader slot on that thread's
 * first call, so every Python thread that uses a Cache gets one without
 * anything done here.  While a call runs with the GIL released, the Cache
 * counts it (busy, changed only under the GIL); close() refuses with
 * shmcache.Busy while that count is not zero, so no thread can unmap the
 * cache under another.  A forked child (multiprocessing) inherits the
 * handle and may use it; its busy count is ignored (the threads that were
 * inside calls do not exist in the child).
 *
 * RAISING
 *   SHMC_EKEYLEN -> KeyTooLong, SHMC_EVALLEN -> ValueTooLarge, SHMC_ENAME ->
 *   BadName, SHMC_EBUDGET -> BudgetError (all four also ValueError);
 *   SHMC_EBUSY -> Busy, SHMC_ESTALLED -> Stalled, SHMC_ECORRUPT -> Corrupt,
 *   SHMC_ENOTCACHE -> NotACache, SHMC_EVERSION -> VersionMismatch,
 *   SHMC_ENOSLOT -> NoReaderSlot; other SHMC_E* codes -> Error;
 *   -errno -> SysError (also OSError, .errno set), and of those: -ENOENT
 *   from open/destroy -> NoSuchCache (FileNotFoundError), -EEXIST from
 *   create -> CacheExists (FileExistsError), from get_or_load -ETIMEDOUT
 *   -> LoadTimeout (TimeoutError) and -EIO -> LoadFailed.
 * Every one is a shmcache.Error with .code (the library's negative code)
 * and .name (shmc_err_name()).  A miss is never an exception: get returns
 * None, delete and add return False, ttl returns None.
 *
 * GET-OR-LOAD
 * The loader is called with the key as it was given (str or bytes) and
 * returns bytes (or str, or any bytes-like object) or None for "does not
 * exist".  If it raises, the library is told -EIO (every caller waiting
 * for this load in other processes gets LoadFailed) and the exception
 * propagates to the caller unchanged.  Its value is kept until the call
 * returns, so a value larger than the first buffer is never loaded twice,
 * and it is what the call returns even when storing it failed (the
 * library hands the value back with the store's error; a cache may always
 * forget, and a read should not fail for it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmcache.h>

/* A first buffer for reads; larger values are read again into a bytes
 * object of the size the library reports. */
#define READ_STACK 4096

/* PyCFunction casts of functions taking keywords: through void (*)(void)
 * so -Wcast-function-type accepts them. */
#define METH(fn) ((PyCFunction)(void (*)(void))(fn))

static PyObject *Error, *KeyTooLong, *ValueTooLarge, *BadName, *BudgetError,
	*Busy, *Stalled, *Corrupt, *NotACache, *VersionMismatch, *NoReaderSlot,
	*SysError, *NoSuchCache, *CacheExists, *LoadTimeout, *LoadFailed;

/* Where an error came from: picks the finer exception of some -errno. */
enum {
	CTX_NAMED = 1,  /* open, destroy: -ENOENT is "no such cache" */
	CTX_CREATE = 2, /* create: -EEXIST is "cache exists" */
	CTX_LOAD = 4,   /* get_or_load: -ETIMEDOUT, -EIO */
};

/* Sets the exception for library code rc (< 0); returns NULL. */
static PyObject *raise_rc(int rc, int ctx, PyObject *filename)
{
	PyObject *type, *exc;
	const char *text = shmc_strerror(rc);
	if (rc < 0 && rc >= -4095) {
		int e = -rc;
		type = SysError;
		if (e == ENOENT && (ctx & CTX_NAMED)) {
			type = NoSuchCache;
			text = "no such cache";
		} else if (e == EEXIST && (ctx & CTX_CREATE)) {
			type = CacheExists;
			text = "cache exists";
		} else if (e == ETIMEDOUT && (ctx & CTX_LOAD)) {
			type = LoadTimeout;
			text = "waited too long for another process's loader";
		} else if (e == EIO && (ctx & CTX_LOAD)) {
			type = LoadFailed;
			text = "the loader failed (here or in another process)";
		}
		if (filename)
			exc = PyObject_CallFunction(type, "isO", e, text,
			                            filename);
		else
			exc = PyObject_CallFunction(type, "is", e, text);
	} else {
		switch (rc) {
		case SHMC_EKEYLEN: type = KeyTooLong; break;
		case SHMC_EVALLEN: type = ValueTooLarge; break;
		case SHMC_ENAME: type = BadName; break;
		case SHMC_EBUDGET: type = BudgetError; break;
		case SHMC_EBUSY: type = Busy; break;
		case SHMC_ESTALLED: type = Stalled; break;
		case SHMC_ECORRUPT: type = Corrupt; break;
		case SHMC_ENOTCACHE: type = NotACache; break;
		case SHMC_EVERSION: type = VersionMismatch; break;
		case SHMC_ENOSLOT: type = NoReaderSlot; break;
		default: type = Error; break;
		}
		if (filename)
			exc = PyObject_CallFunction(type, "N",
				PyUnicode_FromFormat("%s: %s: %R",
				                     shmc_err_name(rc), text,
				                     filename));
		else
			exc = PyObject_CallFunction(type, "N",
				PyUnicode_FromFormat("%s: %s",
				                     shmc_err_name(rc), text));
	}
	if (!exc)
		return NULL;
	PyObject *code = PyLong_FromLong(rc);
	PyObject *name = PyUnicode_FromString(shmc_err_name(rc));
	if (code && name && PyObject_SetAttrString(exc, "code", code) == 0 &&
	    PyObject_SetAttrString(exc, "name", name) == 0)
		PyErr_SetObject(type, exc);
	Py_XDECREF(code);
	Py_XDECREF(name);
	Py_DECREF(exc);
	return NULL;
}

/* ---- arguments ---- */

/* Bytes of a key or value: str (UTF-8), bytes, or any contiguous buffer. */
struct bytes_arg {
	Py_buffer view;
	const char *p;
	Py_ssize_t n;
	bool held;
};

static int bytes_get(PyObject *o, struct bytes_arg *b, const char *what)
{
	b->held = false;
	if (PyUnicode_Check(o)) {
		b->p = PyUnicode_AsUTF8AndSize(o, &b->n);
		return b->p ? 0 : -1;
	}
	if (PyBytes_Check(o)) {
		b->p = PyBytes_AS_STRING(o);
		b->n = PyBytes_GET_SIZE(o);
		return 0;
	}
	if (PyObject_CheckBuffer(o)) {
		if (PyObject_GetBuffer(o, &b->view, PyBUF_SIMPLE) < 0)
			return -1;
		b->held = true;
		b->p = b->view.buf;
		b->n = b->view.len;
		return 0;
	}
	PyErr_Format(PyExc_TypeError,
	             "%s must be bytes, str or bytes-like, not %.100s", what,
	             Py_TYPE(o)->tp_name);
	return -1;
}

static void bytes_release(struct bytes_arg *b)
{
	if (b->held)
		PyBuffer_Release(&b->view);
	b->held = false;
}

/* "O&" converters for unsigned integers: negative or too large raise. */
static int conv_u64(PyObject *o, void *out)
{
	unsigned long long v = PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred())
		return 0;
	*(uint64_t *)out = v;
	return 1;
}

static int conv_u32(PyObject *o, void *out)
{
	uint64_t v;
	if (!conv_u64(o, &v))
		return 0;
	if (v > UINT32_MAX) {
		PyErr_SetString(PyExc_OverflowError, "value above 2**32 - 1");
		return 0;
	}
	*(uint32_t *)out = (uint32_t)v;
	return 1;
}

/* A ttl: None is SHMC_TTL_DEFAULT (the cache's default_ttl); at most
 * SHMC_TTL_MAX. */
static int conv_ttl(PyObject *o, void *out)
{
	if (o == Py_None) {
		*(uint32_t *)out = SHMC_TTL_DEFAULT;
		return 1;
	}
	uint64_t v;
	if (!conv_u64(o, &v))
		return 0;
	if (v > SHMC_TTL_MAX) {
		PyErr_SetString(PyExc_ValueError,
		                "ttl above TTL_MAX (10 years)");
		return 0;
	}
	*(uint32_t *)out = (uint32_t)v;
	return 1;
}

/* The UTF-8 of a cache name (a str), refusing an embedded NUL. */
static const char *name_utf8(PyObject *name)
{
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(name, &n);
	if (s && strlen(s) != (size_t)n) {
		PyErr_SetString(PyExc_ValueError, "embedded NUL in cache name");
		return NULL;
	}
	return s;
}

/* ---- the Cache object ---- */

typedef struct {
	PyObject_HEAD
	shmc_t *c;
	PyObject *name; /* str */
	long busy;      /* calls running with the GIL released (GIL held) */
	pid_t pid;      /* process that made the handle */
} CacheObject;

static PyTypeObject CacheType;

static int cache_ok(CacheObject *self)
{
	if (!self->c) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed cache");
		return -1;
	}
	return 0;
}

static PyObject *cache_new(shmc_t *c, PyObject *name)
{
	CacheObject *self = PyObject_New(CacheObject, &CacheType);
	if (!self) {
		shmc_close(c);
		return NULL;
	}
	self->c = c;
	Py_INCREF(name);
	self->name = name;
	self->busy = 0;
	self->pid = getpid();
	return (PyObject *)self;
}

static void cache_dealloc(CacheObject *self)
{
	if (self->c)
		shmc_close(self->c);
	Py_XDECREF(self->name);
	PyObject_Free(self);
}

static PyObject *cache_repr(CacheObject *self)
{
	return PyUnicode_FromFormat("<shmcache.Cache %R%s>", self->name,
	                            self->c ? "" : " closed");
}

PyDoc_STRVAR(create_doc,
"Cache.create(name, memory, max_memory=0, segment_size=0, default_ttl=0,\n"
"             mode=0o600, max_readers=0, huge=False) -> Cache\n\n"
"Creates the cache NAME (a file in $SHMCACHE_DIR, default /dev/shm) with a\n"
"budget of `memory` bytes.  max_memory: the most it may be resized to (0 =\n"
"memory); segment_size: bytes per log segment, a power of two (0 = 1 MiB);\n"
"default_ttl: seconds for set() without ttl (0 = no expiry); max_readers:\n"
"threads attached at once (0 = 1024); huge: 2 MiB pages (needs a tmpfs\n"
"mounted huge=within_size).  Raises CacheExists, BadName, BudgetError,\n"
"SysError.");

static PyObject *cache_create(PyObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "memory", "max_memory", "segment_size",
	                         "default_ttl", "mode", "max_readers", "huge",
	                         NULL};
	(void)type;
	PyObject *name;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	uint64_t max_memory = 0;
	uint32_t segment_size = 0, default_ttl = 0, mode = 0600,
		 max_readers = 0;
	int huge = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "UO&|O&O&O&O&O&p", kwlist,
	                                 &name, conv_u64, &o.memory, conv_u64,
	                                 &max_memory, conv_u32, &segment_size,
	                                 conv_u32, &default_ttl, conv_u32,
	                                 &mode, conv_u32, &max_readers, &huge))
		return NULL;
	const char *n = name_utf8(name);
	if (!n)
		return NULL;
	o.max_memory = max_memory;
	if (segment_size)
		o.segment_size = segment_size;
	o.default_ttl = default_ttl;
	o.mode = mode;
	if (max_readers)
		o.max_readers = max_readers;
	if (huge)
		o.flags |= SHMC_CREATE_HUGE;
	shmc_t *c = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmc_create(n, &o, &c);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc, CTX_CREATE, name);
	return cache_new(c, name);
}

PyDoc_STRVAR(open_doc,
"Cache.open(name, any_owner=False) -> Cache\n\n"
"Opens the existing cache NAME.  any_owner: accept a cache file owned by\n"
"another user (refused by default).  Raises NoSuchCache, BadName,\n"
"NotACache, VersionMismatch, Corrupt, SysError (PermissionError's errno).");

static PyObject *cache_open(PyObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "any_owner", NULL};
	(void)type;
	PyObject *name;
	int any = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "U|p", kwlist, &name, &any))
		return NULL;
	const char *n = name_utf8(name);
	if (!n)
		return NULL;
	shmc_t *c = NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmc_open(n, any ? SHMC_OPEN_ANY_OWNER : 0, &c);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc, CTX_NAMED, name);
	return cache_new(c, name);
}

PyDoc_STRVAR(close_doc,
"close()\n\n"
"Releases the handle (the cache stays).  Again is a no-op.  Raises Busy\n"
"while another thread is inside a call on this cache.");

static PyObject *cache_close(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->c)
		Py_RETURN_NONE;
	if (self->busy && self->pid == getpid())
		return raise_rc(SHMC_EBUSY, 0, NULL);
	shmc_t *c = self->c;
	self->c = NULL;
	shmc_close(c);
	Py_RETURN_NONE;
}

static PyObject *cache_enter(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (cache_ok(self))
		return NULL;
	Py_INCREF(self);
	return (PyObject *)self;
}

static PyObject *cache_exit(CacheObject *self, PyObject *args)
{
	(void)args;
	PyObject *r = cache_close(self, NULL);
	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

PyDoc_STRVAR(get_doc,
"get(key, with_flags=False) -> bytes | None\n\n"
"The value of key, or None on a miss (absent or expired).  With\n"
"with_flags, a tuple (value, flags) or None.  Raises KeyTooLong.");

static PyObject *cache_get(CacheObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"key", "with_flags", NULL};
	PyObject *key;
	int with_flags = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p", kwlist, &key,
	                                 &with_flags))
		return NULL;
	if (cache_ok(self))
		return NULL;
	struct bytes_arg k;
	if (bytes_get(key, &k, "key"))
		return NULL;
	char stack[READ_STACK];
	size_t n = sizeof(stack);
	uint32_t fl = 0;
	PyObject *val = NULL;
	int rc = shmc_get(self->c, k.p, (size_t)k.n, stack, &n, &fl);
	if (rc == 0)
		val = PyBytes_FromStringAndSize(stack, (Py_ssize_t)n);
	/* Too large for the stack: read into a bytes object of the size
	 * reported; the value may change meanwhile, so go round again. */
	while (rc == SHMC_EBUFSIZE) {
		size_t cap = n;
		val = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
		if (!val)
			break;
		rc = shmc_get(self->c, k.p, (size_t)k.n, PyBytes_AS_STRING(val),
		              &n, &fl);
		if (rc == 0 && n < cap)
			_PyBytes_Resize(&val, (Py_ssize_t)n);
		else if (rc)
			Py_CLEAR(val);
	}
	bytes_release(&k);
	if (!val && PyErr_Occurred())
		return NULL;
	if (rc == SHMC_ENOTFOUND)
		Py_RETURN_NONE;
	if (rc)
		return raise_rc(rc, 0, NULL);
	if (with_flags)
		return Py_BuildValue("(NI)", val, (unsigned)fl);
	return val;
}

/* set and add: the same but for the call and what EEXISTS means. */
static PyObject *put(CacheObject *self, PyObject *args, PyObject *kw,
                     bool add)
{
	static char *kwlist[] = {"key", "value", "ttl", "flags", NULL};
	PyObject *key, *value, *ttlo = Py_None;
	uint32_t ttl = SHMC_TTL_DEFAULT, flags = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OO&", kwlist, &key,
	                                 &value, &ttlo, conv_u32, &flags))
		return NULL;
	if (!conv_ttl(ttlo, &ttl))
		return NULL;
	if (cache_ok(self))
		return NULL;
	struct bytes_arg k, v;
	if (bytes_get(key, &k, "key"))
		return NULL;
	if (bytes_get(value, &v, "value")) {
		bytes_release(&k);
		return NULL;
	}
	int rc;
	self->busy++;
	Py_BEGIN_ALLOW_THREADS
	if (add)
		rc = shmc_add(self->c, k.p, (size_t)k.n, v.p, (size_t)v.n, ttl,
		              flags);
	else
		rc = shmc_set(self->c, k.p, (size_t)k.n, v.p, (size_t)v.n, ttl,
		              flags);
	Py_END_ALLOW_THREADS
	self->busy--;
	bytes_release(&k);
	bytes_release(&v);
	if (add && rc == SHMC_EEXISTS)
		Py_RETURN_FALSE;
	if (rc)
		return raise_rc(rc, 0, NULL);
	if (add)
		Py_RETURN_TRUE;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(set_doc,
"set(key, value, ttl=None, flags=0)\n\n"
"Stores key -> value, replacing any value.  ttl: seconds to live, 0 = never\n"
"expires, None = the cache's default_ttl; flags: 32 bits returned by\n"
"get(key, with_flags=True).  Raises KeyTooLong, ValueTooLarge, Stalled,\n"
"SysError (ENOSPC; EINVAL for a ttl above TTL_MAX).");

static PyObject *cache_set(CacheObject *self, PyObject *args, PyObject *kw)
{
	return put(self, args, kw, false);
}

PyDoc_STRVAR(add_doc,
"add(key, value, ttl=None, flags=0) -> bool\n\n"
"As set(), but only if key is absent (or expired): True if stored, False\n"
"if key was present (the cache is unchanged).  Raises as set().");

static PyObject *cache_add(CacheObject *self, PyObject *args, PyObject *kw)
{
	return put(self, args, kw, true);
}

/* Calls fn(c, key, klen) for the one-key calls that keep the GIL. */
static int key_call(CacheObject *self, PyObject *key,
                    int (*fn)(shmc_t *, const void *, size_t, void *),
                    void *arg)
{
	if (cache_ok(self))
		return INT_MIN;
	struct bytes_arg k;
	if (bytes_get(key, &k, "key"))
		return INT_MIN;
	int rc = fn(self->c, k.p, (size_t)k.n, arg);
	bytes_release(&k);
	return rc;
}

static int do_del(shmc_t *c, const void *key, size_t klen, void *arg)
{
	(void)arg;
	return shmc_del(c, key, klen);
}

static int do_ttl(shmc_t *c, const void *key, size_t klen, void *arg)
{
	return shmc_ttl(c, key, klen, arg);
}

PyDoc_STRVAR(delete_doc,
"delete(key) -> bool\n\n"
"Removes key: True if it was there, False if not.  Raises KeyTooLong.");

static PyObject *cache_delete(CacheObject *self, PyObject *key)
{
	int rc = key_call(self, key, do_del, NULL);
	if (rc == INT_MIN)
		return NULL;
	if (rc == SHMC_ENOTFOUND)
		Py_RETURN_FALSE;
	if (rc)
		return raise_rc(rc, 0, NULL);
	Py_RETURN_TRUE;
}

PyDoc_STRVAR(ttl_doc,
"ttl(key) -> int | None\n\n"
"Seconds key has left to live, 0 if it never expires, None on a miss.");

static PyObject *cache_ttl(CacheObject *self, PyObject *key)
{
	uint32_t ttl = 0;
	int rc = key_call(self, key, do_ttl, &ttl);
	if (rc == INT_MIN)
		return NULL;
	if (rc == SHMC_ENOTFOUND)
		Py_RETURN_NONE;
	if (rc)
		return raise_rc(rc, 0, NULL);
	return PyLong_FromUnsignedLong(ttl);
}

/* ---- get-or-load ---- */

struct load_ctx {
	PyThreadState *ts; /* saved while the GIL is released */
	PyObject *loader, *key;
	PyObject *value;   /* the loader's value (bytes), once it returned */
	PyObject *exc_type, *exc, *exc_tb; /* what it raised */
	bool called;
};

/* The shmc_loader_fn: runs the Python loader under the GIL. */
static int py_loader(const void *key, size_t klen, void *buf, size_t *vlen,
                     uint32_t *flags, void *arg)
{
	struct load_ctx *x = arg;
	(void)key;
	(void)klen;
	(void)flags;
	int rc = 0;
	PyEval_RestoreThread(x->ts);
	/* Called a second time only after we said SHMC_EBUFSIZE: the value
	 * is the one we already have. */
	if (!x->called) {
		x->called = true;
		PyObject *r = PyObject_CallOneArg(x->loader, x->key);
		if (r == Py_None) {
			Py_DECREF(r);
			rc = SHMC_ENOTFOUND;
			goto out;
		}
		if (r && PyUnicode_Check(r)) {
			Py_SETREF(r, PyUnicode_AsUTF8String(r));
		} else if (r && !PyBytes_Check(r)) {
			if (PyObject_CheckBuffer(r))
				Py_SETREF(r, PyBytes_FromObject(r));
			else {
				PyErr_Format(PyExc_TypeError,
				             "the loader must return bytes, str "
				             "or None, not %.100s",
				             Py_TYPE(r)->tp_name);
				Py_CLEAR(r);
			}
		}
		if (!r) {
			PyErr_Fetch(&x->exc_type, &x->exc, &x->exc_tb);
			rc = -EIO;
			goto out;
		}
		x->value = r;
	}
	if (!x->value) {
		rc = -EIO;
		goto out;
	}
	size_t n = (size_t)PyBytes_GET_SIZE(x->value);
	if (n > *vlen) {
		rc = SHMC_EBUFSIZE;
	} else if (n) {
		memcpy(buf, PyBytes_AS_STRING(x->value), n);
	}
	*vlen = n;
out:
	x->ts = PyEval_SaveThread();
	return rc;
}

PyDoc_STRVAR(get_or_load_doc,
"get_or_load(key, loader, ttl=None, soft_ttl=0, negative_ttl=0,\n"
"            lease_ms=0, wait_ms=0) -> bytes | None\n\n"
"The value of key; on a miss exactly one caller, in any process, calls\n"
"loader(key) while the others wait, and the value it returns (bytes or\n"
"str) is stored and returned to all.  loader returns None when the thing\n"
"does not exist: get_or_load then returns None (and remembers it for\n"
"negative_ttl seconds if not 0).  If loader raises, the exception\n"
"propagates here and callers waiting in other processes get LoadFailed;\n"
"nothing is stored.  ttl: seconds for the loaded value, None or 0 = the\n"
"cache's default_ttl; soft_ttl: after that many seconds one caller\n"
"refreshes while the others get the stale value (0 = off); lease_ms and\n"
"wait_ms: how long a loader may take before another caller takes over,\n"
"and how long a caller waits for another's loader (0 = 10 s each).\n"
"The value the loader returned is returned even when it cannot be stored\n"
"(too large, cache stalled): the cache may always forget.  Raises\n"
"LoadTimeout, LoadFailed, Busy (from inside a loader), KeyTooLong,\n"
"NoReaderSlot.");

static PyObject *cache_get_or_load(CacheObject *self, PyObject *args,
                                   PyObject *kw)
{
	static char *kwlist[] = {"key", "loader", "ttl", "soft_ttl",
	                         "negative_ttl", "lease_ms", "wait_ms", NULL};
	PyObject *key, *loader, *ttlo = Py_None;
	struct shmc_load_opts o = {0};
	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OO&O&O&O&", kwlist,
	                                 &key, &loader, &ttlo, conv_u32,
	                                 &o.soft_ttl, conv_u32,
	                                 &o.negative_ttl, conv_u32,
	                                 &o.lease_ms, conv_u32, &o.wait_ms))
		return NULL;
	if (!conv_ttl(ttlo, &o.ttl))
		return NULL;
	if (o.ttl == SHMC_TTL_DEFAULT)
		o.ttl = 0; /* the load options' "cache default" */
	if (!PyCallable_Check(loader)) {
		PyErr_SetString(PyExc_TypeError, "loader must be callable");
		return NULL;
	}
	if (cache_ok(self))
		return NULL;
	struct bytes_arg k;
	if (bytes_get(key, &k, "key"))
		return NULL;
	struct load_ctx x = {.loader = loader, .key = key};
	char stack[READ_STACK];
	void *buf = stack;
	size_t cap = sizeof(stack), n;
	PyObject *val = NULL; /* the buffer when not the stack */
	int rc;
	self->busy++;
	for (;;) {
		n = cap;
		x.ts = PyEval_SaveThread();
		rc = shmc_get_or_load(self->c, k.p, (size_t)k.n, buf, &n,
		                      NULL, py_loader, &x, &o);
		PyEval_RestoreThread(x.ts);
		if (rc != SHMC_EBUFSIZE || x.value || x.exc_type)
			break;
		/* The value in the cache is larger than buf: again with a
		 * buffer of its size (it may change meanwhile). */
		Py_XDECREF(val);
		val = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
		if (!val)
			break;
		buf = PyBytes_AS_STRING(val);
		cap = n;
	}
	self->busy--;
	bytes_release(&k);
	if (x.exc_type) { /* the loader raised: hand it on as it is */
		Py_XDECREF(val);
		Py_XDECREF(x.value);
		PyErr_Restore(x.exc_type, x.exc, x.exc_tb);
		return NULL;
	}
	if (PyErr_Occurred()) { /* a failed allocation above */
		Py_XDECREF(val);
		Py_XDECREF(x.value);
		return NULL;
	}
	/* Our loader ran and returned a value: that value, stored or not
	 * (the library reports a failed store, or a value larger than buf,
	 * with the value in hand; the cache may always forget). */
	if (x.value) {
		Py_XDECREF(val);
		return x.value;
	}
	if (rc == 0) {
		if (buf == stack)
			return PyBytes_FromStringAndSize(stack, (Py_ssize_t)n);
		if (n < cap)
			_PyBytes_Resize(&val, (Py_ssize_t)n);
		return val;
	}
	Py_XDECREF(val);
	Py_XDECREF(x.value);
	if (rc == SHMC_ENOTFOUND)
		Py_RETURN_NONE;
	return raise_rc(rc, CTX_LOAD, NULL);
}

/* ---- stats, info ---- */

/* Every field of struct shmc_stats but pad_ and reserved. */
#define STATS_FIELDS(X)                                                        \
	X(gets) X(hits) X(misses) X(sets) X(adds) X(add_exists) X(deletes)     \
	X(evictions) X(expirations) X(copy_forwards) X(index_drops)            \
	X(ghost_hits) X(set_bytes) X(segments_evicted) X(grace_periods)        \
	X(stalls) X(loads) X(load_waits) X(load_wait_ns) X(lease_takeovers)    \
	X(stale_served) X(resizes) X(items) X(used_bytes) X(committed_bytes)   \
	X(memory) X(max_memory) X(index_buckets) X(index_entries_used)         \
	X(segments_total) X(segments_free) X(segments_small) X(segments_main)  \
	X(readers) X(processes) X(segments_open) X(segments_parked)            \
	X(segments_retired)

/* The integer fields of struct shmc_info (name and path are strings). */
#define INFO_FIELDS(X)                                                         \
	X(format_version) X(segment_size) X(max_readers) X(default_ttl)        \
	X(max_value) X(created) X(min_memory) X(max_memory) X(flags)           \
	X(huge_bytes)

static int dict_u64(PyObject *d, const char *k, uint64_t v)
{
	PyObject *o = PyLong_FromUnsignedLongLong(v);
	if (!o)
		return -1;
	int rc = PyDict_SetItemString(d, k, o);
	Py_DECREF(o);
	return rc;
}

PyDoc_STRVAR(stats_doc,
"stats() -> dict\n\n"
"Every counter and gauge of struct shmc_stats (see shmcache.h): gets,\n"
"hits, misses, sets, ..., items, used_bytes, memory, readers, processes.");

static PyObject *cache_stats(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (cache_ok(self))
		return NULL;
	struct shmc_stats st;
	int rc = shmc_stats(self->c, &st);
	if (rc)
		return raise_rc(rc, 0, NULL);
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
#define STAT_ITEM(f)                                                           \
	if (dict_u64(d, #f, st.f))                                             \
		goto fail;
	STATS_FIELDS(STAT_ITEM)
#undef STAT_ITEM
	return d;
fail:
	Py_DECREF(d);
	return NULL;
}

PyDoc_STRVAR(info_doc,
"info() -> dict\n\n"
"The fixed properties of struct shmc_info: name, path, format_version,\n"
"segment_size, max_readers, default_ttl, max_value (largest value with a\n"
"1-byte key), created, min_memory, max_memory, flags, huge_bytes.");

static PyObject *cache_info(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (cache_ok(self))
		return NULL;
	struct shmc_info in;
	int rc = shmc_info(self->c, &in);
	if (rc)
		return raise_rc(rc, 0, NULL);
	PyObject *d = PyDict_New(), *s = NULL;
	if (!d)
		return NULL;
	s = PyUnicode_FromString(in.name);
	if (!s || PyDict_SetItemString(d, "name", s))
		goto fail;
	Py_SETREF(s, PyUnicode_DecodeFSDefault(in.path));
	if (!s || PyDict_SetItemString(d, "path", s))
		goto fail;
	Py_CLEAR(s);
#define INFO_ITEM(f)                                                           \
	if (dict_u64(d, #f, in.f))                                             \
		goto fail;
	INFO_FIELDS(INFO_ITEM)
#undef INFO_ITEM
	return d;
fail:
	Py_XDECREF(s);
	Py_DECREF(d);
	return NULL;
}

/* ---- resize, check, keys ---- */

PyDoc_STRVAR(resize_doc,
"resize(memory, wait=True)\n\n"
"Sets the budget to `memory` bytes while every process goes on working.\n"
"wait=False: raise Busy instead of waiting for another resize.  Raises\n"
"BudgetError (above info()['max_memory'] or below info()['min_memory']),\n"
"Busy, Stalled (the shrink stays pending), SysError (ENOSPC).");

static PyObject *cache_resize(CacheObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"memory", "wait", NULL};
	uint64_t memory;
	int wait = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|p", kwlist, conv_u64,
	                                 &memory, &wait))
		return NULL;
	if (cache_ok(self))
		return NULL;
	int rc;
	self->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = shmc_resize(self->c, memory, wait ? 0 : SHMC_RESIZE_TRY, NULL,
	                 NULL);
	Py_END_ALLOW_THREADS
	self->busy--;
	if (rc)
		return raise_rc(rc, 0, NULL);
	Py_RETURN_NONE;
}

/* check's report lines, gathered without the GIL. */
struct lines {
	char **v;
	size_t n, cap;
	bool oom;
};

static void report_line(const char *problem, void *arg)
{
	struct lines *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	char *s = strdup(problem);
	if (!s) {
		l->oom = true;
		return;
	}
	l->v[l->n++] = s;
}

PyDoc_STRVAR(check_doc,
"check() -> list of str\n\n"
"Walks every invariant of the segment: one line per problem, [] if clean.\n"
"A report against a busy cache may name a transient state: check twice.");

static PyObject *cache_check(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (cache_ok(self))
		return NULL;
	struct lines l = {0};
	int rc;
	self->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = shmc_check(self->c, report_line, &l);
	Py_END_ALLOW_THREADS
	self->busy--;
	PyObject *list = NULL;
	if (rc < 0)
		raise_rc(rc, 0, NULL);
	else if (l.oom)
		PyErr_NoMemory();
	else
		list = PyList_New(0);
	for (size_t i = 0; i < l.n; i++) {
		if (list) {
			PyObject *s = PyUnicode_DecodeUTF8(l.v[i],
			                                   (Py_ssize_t)strlen(l.v[i]),
			                                   "replace");
			if (!s || PyList_Append(list, s))
				Py_CLEAR(list);
			Py_XDECREF(s);
		}
		free(l.v[i]);
	}
	free(l.v);
	return list;
}

static int key_item(const void *key, size_t klen, size_t vlen, void *arg)
{
	(void)vlen;
	PyObject *k = PyBytes_FromStringAndSize(key, (Py_ssize_t)klen);
	if (!k || PyList_Append(arg, k)) {
		Py_XDECREF(k);
		return 1;
	}
	Py_DECREF(k);
	return 0;
}

PyDoc_STRVAR(keys_doc,
"keys() -> list of bytes\n\n"
"Every live key, in no order (a key changed meanwhile may be missed).");

static PyObject *cache_keys(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (cache_ok(self))
		return NULL;
	PyObject *list = PyList_New(0);
	if (!list)
		return NULL;
	int rc = shmc_keys(self->c, key_item, list);
	if (PyErr_Occurred()) {
		Py_DECREF(list);
		return NULL;
	}
	if (rc) {
		Py_DECREF(list);
		return raise_rc(rc, 0, NULL);
	}
	return list;
}

static PyObject *cache_get_closed(CacheObject *self, void *unused)
{
	(void)unused;
	return PyBool_FromLong(self->c == NULL);
}

static PyObject *cache_get_name(CacheObject *self, void *unused)
{
	(void)unused;
	Py_INCREF(self->name);
	return self->name;
}

static PyMethodDef cache_methods[] = {
	{"create", METH(cache_create), METH_CLASS | METH_VARARGS | METH_KEYWORDS,
	 create_doc},
	{"open", METH(cache_open), METH_CLASS | METH_VARARGS | METH_KEYWORDS,
	 open_doc},
	{"close", (PyCFunction)cache_close, METH_NOARGS, close_doc},
	{"__enter__", (PyCFunction)cache_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)cache_exit, METH_VARARGS, NULL},
	{"get", METH(cache_get), METH_VARARGS | METH_KEYWORDS, get_doc},
	{"set", METH(cache_set), METH_VARARGS | METH_KEYWORDS, set_doc},
	{"add", METH(cache_add), METH_VARARGS | METH_KEYWORDS, add_doc},
	{"delete", (PyCFunction)cache_delete, METH_O, delete_doc},
	{"ttl", (PyCFunction)cache_ttl, METH_O, ttl_doc},
	{"get_or_load", METH(cache_get_or_load), METH_VARARGS | METH_KEYWORDS,
	 get_or_load_doc},
	{"stats", (PyCFunction)cache_stats, METH_NOARGS, stats_doc},
	{"info", (PyCFunction)cache_info, METH_NOARGS, info_doc},
	{"resize", METH(cache_resize), METH_VARARGS | METH_KEYWORDS, resize_doc},
	{"check", (PyCFunction)cache_check, METH_NOARGS, check_doc},
	{"keys", (PyCFunction)cache_keys, METH_NOARGS, keys_doc},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef cache_getset[] = {
	{"closed", (getter)cache_get_closed, NULL, "True after close()", NULL},
	{"name", (getter)cache_get_name, NULL, "the cache's name", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(cache_doc,
"A handle to a shared-memory cache: Cache.create(...) or Cache.open(name).\n"
"Usable from any thread and, inherited, from forked children; a context\n"
"manager that closes it.");

static PyTypeObject CacheType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmcache.Cache",
	.tp_basicsize = sizeof(CacheObject),
	.tp_dealloc = (destructor)cache_dealloc,
	.tp_repr = (reprfunc)cache_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = cache_doc,
	.tp_methods = cache_methods,
	.tp_getset = cache_getset,
	/* no tp_new: made only by Cache.create and Cache.open */
};

/* ---- module ---- */

PyDoc_STRVAR(destroy_doc,
"destroy(name)\n\n"
"Removes the cache NAME.  Processes that have it open keep working on\n"
"their mapping.  Raises NoSuchCache, BadName, SysError.");

static PyObject *mod_destroy(PyObject *mod, PyObject *arg)
{
	(void)mod;
	if (!PyUnicode_Check(arg)) {
		PyErr_SetString(PyExc_TypeError, "name must be str");
		return NULL;
	}
	const char *n = name_utf8(arg);
	if (!n)
		return NULL;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = shmc_destroy(n);
	Py_END_ALLOW_THREADS
	if (rc)
		return raise_rc(rc, CTX_NAMED, arg);
	Py_RETURN_NONE;
}

static int int_arg(PyObject *arg, int *out)
{
	long v = PyLong_AsLong(arg);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (v < INT_MIN || v > INT_MAX) {
		PyErr_SetString(PyExc_OverflowError, "not an error code");
		return -1;
	}
	*out = (int)v;
	return 0;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	int code;
	if (int_arg(arg, &code))
		return NULL;
	return PyUnicode_FromString(shmc_strerror(code));
}

static PyObject *mod_err_name(PyObject *mod, PyObject *arg)
{
	(void)mod;
	int code;
	if (int_arg(arg, &code))
		return NULL;
	return PyUnicode_FromString(shmc_err_name(code));
}

static PyMethodDef mod_methods[] = {
	{"destroy", mod_destroy, METH_O, destroy_doc},
	{"strerror", mod_strerror, METH_O,
	 "strerror(code) -> str: what a library error code means"},
	{"err_name", mod_err_name, METH_O,
	 "err_name(code) -> str: the name of a library error code"},
	{NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(mod_doc,
"shmcache: a key/value cache in one shared-memory segment, shared by the\n"
"processes of a host (binding of libshmcache).\n\n"
"    with shmcache.Cache.create('sessions', 64 << 20) as c:\n"
"        c.set('user:42', b'...', ttl=300)\n"
"        c.get('user:42')\n");

static struct PyModuleDef shmcache_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "shmcache",
	.m_doc = mod_doc,
	.m_size = -1,
	.m_methods = mod_methods,
};

/* Makes exception class NAME with bases (b1[, b2]) and adds it to m. */
static PyObject *new_exc(PyObject *m, const char *name, const char *doc,
                         PyObject *b1, PyObject *b2)
{
	char full[64];
	snprintf(full, sizeof(full), "shmcache.%s", name);
	PyObject *bases = b2 ? PyTuple_Pack(2, b1, b2) : PyTuple_Pack(1, b1);
	if (!bases)
		return NULL;
	PyObject *e = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
	Py_DECREF(bases);
	if (!e)
		return NULL;
	if (PyModule_AddObjectRef(m, name, e) < 0) {
		Py_DECREF(e);
		return NULL;
	}
	return e; /* the reference we keep in the static */
}

PyMODINIT_FUNC PyInit_shmcache(void);

PyMODINIT_FUNC PyInit_shmcache(void)
{
	if (PyType_Ready(&CacheType) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&shmcache_module);
	if (!m)
		return NULL;
	if (PyModule_AddObjectRef(m, "Cache", (PyObject *)&CacheType) < 0)
		goto fail;
	PyObject *exc = PyExc_Exception, *val = PyExc_ValueError;
	if (!(Error = new_exc(m, "Error",
	      "An error of libshmcache: .code (negative) and .name.", exc, NULL)) ||
	    !(KeyTooLong = new_exc(m, "KeyTooLong",
	      "SHMC_EKEYLEN: key empty or longer than KEY_MAX bytes.", Error, val)) ||
	    !(ValueTooLarge = new_exc(m, "ValueTooLarge",
	      "SHMC_EVALLEN: the item does not fit one segment.", Error, val)) ||
	    !(BadName = new_exc(m, "BadName",
	      "SHMC_ENAME: not a cache name ([A-Za-z0-9._-]{1,64}).", Error, val)) ||
	    !(BudgetError = new_exc(m, "BudgetError",
	      "SHMC_EBUDGET: memory budget too small or above the reservation.",
	      Error, val)) ||
	    !(Busy = new_exc(m, "Busy",
	      "SHMC_EBUSY: another operation of this kind is in progress.",
	      Error, NULL)) ||
	    !(Stalled = new_exc(m, "Stalled",
	      "SHMC_ESTALLED: no memory can be reused, a reader is stalled.",
	      Error, NULL)) ||
	    !(Corrupt = new_exc(m, "Corrupt",
	      "SHMC_ECORRUPT: segment corrupt or truncated.", Error, NULL)) ||
	    !(NotACache = new_exc(m, "NotACache",
	      "SHMC_ENOTCACHE: the file is not a shmcache segment.", Error,
	      NULL)) ||
	    !(VersionMismatch = new_exc(m, "VersionMismatch",
	      "SHMC_EVERSION: a segment of another format version or ABI.",
	      Error, NULL)) ||
	    !(NoReaderSlot = new_exc(m, "NoReaderSlot",
	      "SHMC_ENOSLOT: no free reader slot for this thread.", Error,
	      NULL)) ||
	    !(SysError = new_exc(m, "SysError",
	      "A system error (-errno): an OSError with .errno.", Error,
	      PyExc_OSError)) ||
	    !(NoSuchCache = new_exc(m, "NoSuchCache",
	      "-ENOENT from open or destroy: no cache of that name.", SysError,
	      PyExc_FileNotFoundError)) ||
	    !(CacheExists = new_exc(m, "CacheExists",
	      "-EEXIST from create: a cache of that name exists.", SysError,
	      PyExc_FileExistsError)) ||
	    !(LoadTimeout = new_exc(m, "LoadTimeout",
	      "-ETIMEDOUT from get_or_load: waited wait_ms for another loader.",
	      SysError, PyExc_TimeoutError)) ||
	    !(LoadFailed = new_exc(m, "LoadFailed",
	      "-EIO from get_or_load: a loader failed (raised, in another "
	      "process).", SysError, NULL)))
		goto fail;
	if (PyModule_AddStringConstant(m, "__version__", shmc_version()) ||
	    PyModule_AddIntConstant(m, "KEY_MAX", SHMC_KEY_MAX) ||
	    PyModule_AddIntConstant(m, "NAME_MAX", SHMC_NAME_MAX) ||
	    PyModule_AddIntConstant(m, "TTL_MAX", SHMC_TTL_MAX) ||
	    PyModule_AddIntConstant(m, "CREATE_HUGE", SHMC_CREATE_HUGE))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
