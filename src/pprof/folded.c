/*
 * folded.c - folded ("collapsed") stack text, the input of flame graph tools.
 *
 * Each stack of the profile becomes one line, root first: the model keeps
 * stacks leaf first, so the frame array is walked backwards.  Kernel frames
 * sit at the leaf end of the array (the kernel was running when the sample
 * fired), so after the reversal they come last, each with the customary
 * "_[k]" suffix.
 *
 * Names are made safe for the format: ';' separates frames and a newline
 * ends a record, so a ';' inside a name (rare, but C++ operator names and
 * Go closures can be odd) becomes ':' and line breaks are dropped.
 *
 * Several stacks of the model can print the same line: other processes
 * when the process name is not shown, two addresses in one function, two
 * time buckets.  All lines are built first, sorted, and equal neighbours are
 * merged with their counts summed, which also makes the output deterministic.
 */
#include "pprof/folded.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One rendered stack: text[off, off+len) of the line buffer, and its samples. */
struct folded_line {
	size_t off, len;
	uint64_t count;
};

/* Append s with ';' turned into ':' and line breaks removed; returns bytes written. */
static size_t put_sanitized(struct strbuf *sb, const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		if (*s == '\n' || *s == '\r')
			continue;
		sb_putc(sb, *s == ';' ? ':' : *s);
		n++;
	}
	return n;
}

static void put_frame(struct strbuf *sb, const struct ember_frame *f)
{
	char buf[512];
	const char *name;

	/* Function names can be long C++ templates: never truncate them. */
	if (f->function && f->function[0])
		name = f->function;
	else
		name = ember_frame_name(f, buf, sizeof(buf));
	if (put_sanitized(sb, name) == 0)
		sb_puts(sb, "[unknown]");
	if (f->flags & EMBER_FRAME_KERNEL)
		sb_puts(sb, "_[k]");
}

void ember_folded_process(struct strbuf *sb, const struct ember_target *t, bool with_pid)
{
	const char *name = t->comm;

	if (!name || !name[0])
		name = t->exe ? ember_basename(t->exe) : NULL;
	if (!name || !name[0] || put_sanitized(sb, name) == 0)
		sb_printf(sb, "pid %" PRIu32, t->pid);
	else if (with_pid)
		sb_printf(sb, "-%" PRIu32, t->pid);
}

/* Render stack s (root first) at the end of text. */
static void render_stack(struct strbuf *text, const struct ember_profile *p,
			 const struct ember_stack *s, bool with_process, bool with_pid)
{
	bool first = true;

	if (with_process && s->target < p->n_targets) {
		ember_folded_process(text, &p->targets[s->target], with_pid);
		first = false;
	}
	for (uint32_t i = s->depth; i-- > 0;) {
		if (s->frames[i] >= p->n_frames)
			continue; /* not a frame of this profile: skip rather than crash */
		if (!first)
			sb_putc(text, ';');
		put_frame(text, &p->frames[s->frames[i]]);
		first = false;
	}
	if (first)
		sb_puts(text, "[unknown]"); /* an empty stack still holds samples */
}

static int compare_lines(const void *a, const void *b, void *arg)
{
	const struct folded_line *x = a, *y = b;
	const char *text = arg;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(text + x->off, text + y->off, n);

	if (c)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

static bool same_line(const char *text, const struct folded_line *x,
		      const struct folded_line *y)
{
	return x->len == y->len && memcmp(text + x->off, text + y->off, x->len) == 0;
}

int ember_folded_format(struct strbuf *sb, const struct ember_profile *p,
			const struct ember_folded_options *opt)
{
	bool with_process = opt && opt->with_process;
	struct strbuf text;
	struct folded_line *lines;
	size_t n = 0;
	int err = 0;

	if (p->n_stacks == 0)
		return sb->oom ? -ENOMEM : 0;
	lines = calloc(p->n_stacks, sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	sb_init(&text);
	for (size_t i = 0; i < p->n_stacks; i++) {
		const struct ember_stack *s = &p->stacks[i];

		if (s->count == 0)
			continue;
		lines[n].off = text.len;
		render_stack(&text, p, s, with_process, opt && opt->with_pid);
		lines[n].len = text.len - lines[n].off;
		lines[n].count = s->count;
		n++;
	}
	if (text.oom) {
		err = -ENOMEM;
		goto out;
	}
	if (n == 0)
		goto out;

	qsort_r(lines, n, sizeof(*lines), compare_lines, text.buf);
	for (size_t i = 0; i < n;) {
		uint64_t count = 0;
		size_t j = i;

		for (; j < n && same_line(text.buf, &lines[i], &lines[j]); j++)
			count += lines[j].count;
		sb_append(sb, text.buf + lines[i].off, lines[i].len);
		sb_printf(sb, " %" PRIu64 "\n", count);
		i = j;
	}
	if (sb->oom)
		err = -ENOMEM;
out:
	sb_free(&text);
	free(lines);
	return err;
}

int ember_folded_write(FILE *f, const struct ember_profile *p,
		       const struct ember_folded_options *opt)
{
	struct strbuf sb;
	int err;

	sb_init(&sb);
	err = ember_folded_format(&sb, p, opt);
	if (!err && sb.len && fwrite(sb.buf, 1, sb.len, f) != sb.len)
		err = -EIO;
	if (!err && fflush(f) != 0)
		err = -EIO;
	sb_free(&sb);
	return err;
}
