/*
 * json.c - a minimal streaming JSON writer for --json output.
 *
 * The writer keeps one "a value was already written at this depth" bit per
 * nesting level, so callers never place commas themselves; a key sets
 * after_key so the value that follows is not preceded by a comma.  Strings
 * are escaped per RFC 8259 (quote, backslash, control characters as
 * \u00XX); bytes >= 0x80 are copied, so callers pass valid UTF-8 (binary
 * data is written by the callers as hex instead, see cmd_get.c).
 * Non-finite numbers, which JSON cannot hold, become null.
 */
#include <math.h>
#include <string.h>

#include "tool.h"

void jw_init(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->need_comma[0] = false;
	w->after_key = false;
}

static void pre(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->need_comma[w->depth])
		fputc(',', w->f);
	w->need_comma[w->depth] = true;
}

static void open_(struct jw *w, char ch)
{
	pre(w);
	fputc(ch, w->f);
	if (w->depth < 31)
		w->depth++;
	w->need_comma[w->depth] = false;
}

static void close_(struct jw *w, char ch)
{
	fputc(ch, w->f);
	if (w->depth > 0)
		w->depth--;
}

void jw_obj(struct jw *w) { open_(w, '{'); }
void jw_obj_end(struct jw *w) { close_(w, '}'); }
void jw_arr(struct jw *w) { open_(w, '['); }
void jw_arr_end(struct jw *w) { close_(w, ']'); }

static void raw_str(struct jw *w, const void *p, size_t n)
{
	const unsigned char *s = p;
	fputc('"', w->f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			fprintf(w->f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", w->f);
		else if (c == '\t')
			fputs("\\t", w->f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(w->f, "\\u%04x", c);
		else
			fputc(c, w->f);
	}
	fputc('"', w->f);
}

void jw_key(struct jw *w, const char *k)
{
	pre(w);
	raw_str(w, k, strlen(k));
	fputc(':', w->f);
	w->after_key = true;
}

void jw_strn(struct jw *w, const void *s, size_t n)
{
	pre(w);
	raw_str(w, s, n);
}

void jw_str(struct jw *w, const char *s)
{
	jw_strn(w, s, strlen(s));
}

void jw_u64(struct jw *w, uint64_t v)
{
	pre(w);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

void jw_i64(struct jw *w, int64_t v)
{
	pre(w);
	fprintf(w->f, "%lld", (long long)v);
}

void jw_dbl(struct jw *w, double v)
{
	pre(w);
	if (isfinite(v))
		fprintf(w->f, "%.6g", v);
	else
		fputs("null", w->f);
}

void jw_bool(struct jw *w, bool v)
{
	pre(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct jw *w)
{
	pre(w);
	fputs("null", w->f);
}

void jw_end(struct jw *w)
{
	fputc('\n', w->f);
	fflush(w->f);
	w->depth = 0;
	w->need_comma[0] = false;
	w->after_key = false;
}
