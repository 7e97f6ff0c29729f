/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c - the `fault` control command of the fault wrapper (see
 * internal.h): rule words parsed into a struct fault_rule and printed
 * back, and the subcommands add, list, clear and resume (fault_command).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/fault/internal.h"
#include "lib/json.h"
#include "lib/options.h"

/* Longest delay a rule may ask for: an hour is beyond any test. */
#define FAULT_DELAY_MAX_MS (3600L * 1000)

#define FAULT_RULE_WORDS                                                       \
	"op=OP[,OP...] [path=GLOB] delay=MS|error=ERRNO|pause [when=after] "   \
	"[skip=N] [count=N]"
#define FAULT_USAGE                                                            \
	"usage: fault PREFIX add " FAULT_RULE_WORDS                            \
	" | fault PREFIX list | fault PREFIX clear [ID] | fault PREFIX "       \
	"resume [ID]"

/* An errno by name (EIO, eio) or number; 0 if it is neither. */
static int fault_errno(const char *s)
{
	static const struct {
		const char *name;
		int code;
	} aliases[] = {
		/* names strerrorname_np() does not give: it knows one per
		 * number */
		{"EWOULDBLOCK", EWOULDBLOCK},
		{"ENOTSUP", ENOTSUP},
		{"EDEADLOCK", EDEADLOCK},
	};
	long l;

	if (vfs_parse_long(s, 1, 4095, &l) == 0)
		return (int)l;
	for (int e = 1; e < 4096; e++) {
		const char *name = strerrorname_np(e);

		if (name && strcasecmp(name, s) == 0)
			return e;
	}
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(aliases[i].name, s) == 0)
			return aliases[i].code;
	return 0;
}

/* op=OP[,OP...] or op=*, into a mask of 1u << FOP_*; 0 if a name is bad
 * (*bad then points at it, for the message). */
static uint32_t fault_ops_parse(char *list, char **bad)
{
	uint32_t mask = 0;
	char *save = NULL;

	if (!*list) {
		*bad = list;
		return 0;
	}
	for (char *w = strtok_r(list, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		int op;

		if (strcmp(w, "*") == 0) {
			mask |= FOP_ALL;
			continue;
		}
		for (op = 0; op < FOP_COUNT; op++)
			if (strcmp(fault_op_names[op], w) == 0)
				break;
		if (op == FOP_COUNT) {
			*bad = w;
			return 0;
		}
		mask |= 1u << op;
	}
	if (!mask)
		*bad = list;
	return mask;
}

static int fault_count_parse(const char *s, unsigned long *out)
{
	long l;

	if (vfs_parse_long(s, 0, LONG_MAX, &l) < 0)
		return -EINVAL;
	*out = (unsigned long)l;
	return 0;
}

/*
 * Parse the words of a rule into *r (r->path owned by it on success and
 * on failure alike).  Messages name the offending word.
 */
static int fault_rule_parse(char **words, int n, struct fault_rule *r,
			    const char *prefix, struct vfs_error *err)
{
	enum {
		W_OP,
		W_PATH,
		W_DELAY,
		W_ERROR,
		W_PAUSE,
		W_WHEN,
		W_SKIP,
		W_COUNT
	};
	static const char *const keys[] = {"op",    "path", "delay", "error",
					   "pause", "when", "skip",  "count"};
	unsigned seen = 0;

	for (int i = 0; i < n; i++) {
		char word[512], *eq, *val, *bad = NULL;
		size_t k;
		long l;

		snprintf(word, sizeof(word), "%s", words[i]);
		eq = strchr(words[i], '=');
		if (eq)
			*eq = '\0';
		val = eq ? eq + 1 : NULL;
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strcmp(keys[k], words[i]) == 0)
				break;
		if (k == sizeof(keys) / sizeof(keys[0]) ||
		    (k == W_PAUSE) != !val)
			return vfs_error_set(
				err, EINVAL,
				"fault %s: '%s': not a rule word (%s)", prefix,
				word, FAULT_RULE_WORDS);
		if (seen & (1u << k))
			return vfs_error_set(err, EINVAL,
					     "fault %s: '%s': %s given twice",
					     prefix, word, keys[k]);
		seen |= 1u << k;
		switch (k) {
		case W_OP:
			r->ops = fault_ops_parse(val, &bad);
			if (!r->ops)
				return vfs_error_set(
					err, EINVAL,
					"fault %s: '%s': unknown operation "
					"'%s' (getattr, setattr, readlink, "
					"mknod, mkdir, symlink, link, unlink, "
					"rmdir, rename, opendir, readdir, "
					"getxattr, listxattr, setxattr, "
					"removexattr, create, open, read, "
					"write, fgetattr, flush, fsync, "
					"fallocate, lseek, copy_range, clone, "
					"release, statfs or *)",
					prefix, word, bad);
			break;
		case W_PATH:
			if (!*val)
				return vfs_error_set(
					err, EINVAL,
					"fault %s: '%s': empty path glob",
					prefix, word);
			free(r->path);
			r->path = strdup(val);
			if (!r->path)
				return vfs_error_set(err, ENOMEM,
						     "out of memory");
			break;
		case W_DELAY:
			if (vfs_parse_long(val, 0, FAULT_DELAY_MAX_MS, &l) < 0)
				return vfs_error_set(err, EINVAL,
						     "fault %s: '%s': delay is "
						     "milliseconds, 0 to %ld",
						     prefix, word,
						     FAULT_DELAY_MAX_MS);
			r->delay_ms = l;
			break;
		case W_ERROR:
			r->error = fault_errno(val);
			if (!r->error)
				return vfs_error_set(
					err, EINVAL,
					"fault %s: '%s': not an errno name or "
					"number (EIO, ENOSPC, ETIMEDOUT, "
					"ESTALE, EACCES, 5...)",
					prefix, word);
			break;
		case W_PAUSE:
			r->pause = true;
			break;
		case W_WHEN:
			if (strcmp(val, "before") != 0 &&
			    strcmp(val, "after") != 0)
				return vfs_error_set(err, EINVAL,
						     "fault %s: '%s': when is "
						     "before or after",
						     prefix, word);
			r->after = strcmp(val, "after") == 0;
			break;
		case W_SKIP:
		case W_COUNT:
			if (fault_count_parse(val, k == W_SKIP ? &r->skip
							       : &r->count) < 0)
				return vfs_error_set(err, EINVAL,
						     "fault %s: '%s': %s is a "
						     "number of calls",
						     prefix, word, keys[k]);
			break;
		}
	}
	if (!(seen & (1u << W_OP)))
		return vfs_error_set(err, EINVAL,
				     "fault %s: a rule needs op=OP (or op=* "
				     "for every operation)",
				     prefix);
	if (!r->delay_ms && !r->error && !r->pause)
		return vfs_error_set(err, EINVAL,
				     "fault %s: a rule needs delay=MS (not 0), "
				     "error=ERRNO or pause",
				     prefix);
	if (!r->path) {
		r->path = strdup("*");
		if (!r->path)
			return vfs_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

/* The rule in the words that make it, defaults left out. */
static void fault_rule_print(FILE *out, const struct fault_rule *r)
{
	const char *sep = "";

	fputs("op=", out);
	if (r->ops == FOP_ALL) {
		fputc('*', out);
	} else {
		for (int op = 0; op < FOP_COUNT; op++) {
			if (!(r->ops & (1u << op)))
				continue;
			fprintf(out, "%s%s", sep, fault_op_names[op]);
			sep = ",";
		}
	}
	if (strcmp(r->path, "*") != 0)
		fprintf(out, " path=%s", r->path);
	if (r->pause)
		fputs(" pause", out);
	if (r->delay_ms)
		fprintf(out, " delay=%ld", r->delay_ms);
	if (r->error) {
		const char *name = strerrorname_np(r->error);

		if (name)
			fprintf(out, " error=%s", name);
		else
			fprintf(out, " error=%d", r->error);
	}
	if (r->after)
		fputs(" when=after", out);
	if (r->skip)
		fprintf(out, " skip=%lu", r->skip);
	if (r->count)
		fprintf(out, " count=%lu", r->count);
}

static bool fault_rule_spent(const struct fault_rule *r)
{
	return r->count && r->hits >= r->count;
}

static int fault_cmd_add(struct fault_mount *fm, struct fault_cmd *c)
{
	/* owned by the rule list once added */
	struct fault_rule *r = calloc(1, sizeof(*r)), **tail;
	unsigned id;
	int ret;

	if (!r)
		return vfs_error_set(c->err, ENOMEM, "out of memory");
	ret = fault_rule_parse(c->argv + 1, c->argc - 1, r, c->prefix, c->err);
	if (ret < 0) {
		fault_rule_free(r);
		return ret;
	}
	pthread_mutex_lock(&fm->lock);
	id = r->id = fm->next_id++;
	for (tail = &fm->rules; *tail; tail = &(*tail)->next)
		;
	*tail = r;
	/* r is the list's now: a clear may free it once we unlock */
	pthread_mutex_unlock(&fm->lock);
	if (c->json)
		fprintf(c->out, "{\"id\":%u}\n", id);
	else
		fprintf(c->out, "%u\n", id);
	return 0;
}

static void fault_rule_json(FILE *out, const struct fault_rule *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	const char *sep = "";

	if (mem) {
		fault_rule_print(mem, r);
		fclose(mem);
	}
	fprintf(out, "{\"id\":%u,\"rule\":", r->id);
	vfs_json_str(out, text ? text : "");
	free(text);
	fputs(",\"op\":[", out);
	for (int op = 0; op < FOP_COUNT; op++) {
		if (!(r->ops & (1u << op)))
			continue;
		fprintf(out, "%s\"%s\"", sep, fault_op_names[op]);
		sep = ",";
	}
	fputs("],\"path\":", out);
	vfs_json_str(out, r->path);
	fprintf(out, ",\"delay_ms\":%ld,\"error\":", r->delay_ms);
	if (r->error)
		vfs_json_str(out, strerrorname_np(r->error));
	else
		fputs("null", out);
	fprintf(out,
		",\"errno\":%d,\"pause\":%s,\"when\":\"%s\",\"skip\":%lu,"
		"\"count\":%lu,\"seen\":%lu,\"hits\":%lu,\"paused\":%u,"
		"\"spent\":%s}",
		r->error, r->pause ? "true" : "false",
		r->after ? "after" : "before", r->skip, r->count, r->seen,
		r->hits, r->paused, fault_rule_spent(r) ? "true" : "false");
}

static int fault_cmd_list(struct fault_mount *fm, struct fault_cmd *c)
{
	const char *sep = "";

	pthread_mutex_lock(&fm->lock);
	if (c->json) {
		fputs("{\"prefix\":", c->out);
		vfs_json_str(c->out, c->prefix);
		fputs(",\"rules\":[", c->out);
	} else {
		fprintf(c->out, "%-4s %-8s %-6s %s\n", "ID", "HITS", "PAUSED",
			"RULE");
	}
	for (struct fault_rule *r = fm->rules; r; r = r->next) {
		if (c->json) {
			fputs(sep, c->out);
			fault_rule_json(c->out, r);
			sep = ",";
			continue;
		}
		fprintf(c->out, "%-4u %-8lu %-6u ", r->id, r->hits, r->paused);
		fault_rule_print(c->out, r);
		fputs(fault_rule_spent(r) ? " (spent)\n" : "\n", c->out);
	}
	if (c->json)
		fputs("]}\n", c->out);
	pthread_mutex_unlock(&fm->lock);
	return 0;
}

/* clear and resume: every rule, or the one named. */
static int fault_cmd_each(struct fault_mount *fm, struct fault_cmd *c,
			  bool clear)
{
	struct fault_rule **pp, *r;
	unsigned long n = 0;
	long id = 0;

	if (c->argc == 2 && vfs_parse_long(c->argv[1], 1, UINT_MAX, &id) < 0)
		return vfs_error_set(c->err, EINVAL,
				     "fault %s %s: '%s' is not a rule id",
				     c->prefix, c->argv[0], c->argv[1]);
	pthread_mutex_lock(&fm->lock);
	if (id && !fault_rule_find_locked(fm, (unsigned)id)) {
		pthread_mutex_unlock(&fm->lock);
		return vfs_error_set(c->err, ENOENT, "fault %s: no rule %ld",
				     c->prefix, id);
	}
	for (pp = &fm->rules; (r = *pp);) {
		if (id && r->id != (unsigned)id) {
			pp = &r->next;
			continue;
		}
		if (clear) {
			/* its paused callers see it gone and go on */
			*pp = r->next;
			fault_rule_free(r);
			n++;
			continue;
		}
		n += r->paused;
		r->resumes++;
		pp = &r->next;
	}
	pthread_cond_broadcast(&fm->wake);
	pthread_mutex_unlock(&fm->lock);
	if (c->json)
		fprintf(c->out, "{\"%s\":%lu}\n", clear ? "cleared" : "resumed",
			n);
	else if (clear)
		fprintf(c->out, "cleared %lu rule%s\n", n, n == 1 ? "" : "s");
	else
		fprintf(c->out, "resumed %lu caller%s\n", n, n == 1 ? "" : "s");
	return 0;
}

int fault_command(struct vfs_mount *vm, void *p)
{
	struct fault_cmd *c = p;
	const char *sub = c->argc ? c->argv[0] : "";
	struct fault_mount *fm = fault_mount_of(vm);

	if (!fm)
		return vfs_error_set(c->err, EOPNOTSUPP,
				     "fault %s: not a fault+ mount (backend "
				     "%s); mount it with a fault+ URL "
				     "(fault+file:///dir) to inject faults",
				     c->prefix, vm->ops->name);
	if (strcmp(sub, "add") == 0 && c->argc >= 2)
		return fault_cmd_add(fm, c);
	if (strcmp(sub, "list") == 0 && c->argc == 1)
		return fault_cmd_list(fm, c);
	if (strcmp(sub, "clear") == 0 && c->argc <= 2)
		return fault_cmd_each(fm, c, true);
	if (strcmp(sub, "resume") == 0 && c->argc <= 2)
		return fault_cmd_each(fm, c, false);
	return vfs_error_set(c->err, EINVAL, "%s", FAULT_USAGE);
}
