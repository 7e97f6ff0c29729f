/* SPDX-License-Identifier: GPL-2.0-or-later */
/* options.c - option sets and their validation against a backend spec. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/options.h"

static struct vfs_opt_kv *opts_find(const struct vfs_opts *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->kv[i].key, key) == 0)
			return &o->kv[i];
	return NULL;
}

int vfs_opts_set(struct vfs_opts *o, const char *key, const char *value,
		 int origin)
{
	struct vfs_opt_kv *kv = opts_find(o, key), *grown;
	char *v = strdup(value);

	if (!v)
		return -ENOMEM;
	if (kv) {
		free(kv->value);
		kv->value = v;
		kv->origin = origin;
		return 0;
	}
	grown = realloc(o->kv, (o->n + 1) * sizeof(*o->kv));
	if (!grown) {
		free(v);
		return -ENOMEM;
	}
	o->kv = grown;
	kv = &o->kv[o->n];
	kv->key = strdup(key);
	if (!kv->key) {
		free(v);
		return -ENOMEM;
	}
	kv->value = v;
	kv->origin = origin;
	o->n++;
	return 0;
}

int vfs_opts_copy(struct vfs_opts *dst, const struct vfs_opts *src)
{
	for (size_t i = 0; i < src->n; i++) {
		int ret = vfs_opts_set(dst, src->kv[i].key, src->kv[i].value,
				       src->kv[i].origin);
		if (ret < 0) {
			vfs_opts_clear(dst);
			return ret;
		}
	}
	dst->spec = src->spec;
	return 0;
}

void vfs_opts_clear(struct vfs_opts *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->kv[i].key);
		if (o->kv[i].value) {
			/* values may be passwords: do not leave them in freed
			 * heap for a core dump to show */
			explicit_bzero(o->kv[i].value, strlen(o->kv[i].value));
			free(o->kv[i].value);
		}
	}
	free(o->kv);
	o->kv = NULL;
	o->n = 0;
	o->spec = NULL;
}

int vfs_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int vfs_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	/* strtol would also take leading blanks and a '+': a number is
	 * digits, with an optional '-' */
	if (!isdigit((unsigned char)s[s[0] == '-']))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static const struct vfs_opt_spec *spec_find(const struct vfs_opt_spec *spec,
					    const char *key)
{
	for (; spec && spec->name; spec++)
		if (strcmp(spec->name, key) == 0)
			return spec;
	return NULL;
}

static int opt_check(const struct vfs_opt_spec *s, const struct vfs_opt_kv *kv,
		     const char *what, struct vfs_error *err)
{
	long l;
	bool b;

	if (s->secret && kv->origin == VFS_ORIGIN_OPEN_CONFIG)
		return vfs_error_set(
			err, EACCES,
			"%s: option '%s' is a secret, but the config file is "
			"readable by group or others (chmod 600 it)",
			what, s->name);
	if (s->secret && kv->origin != VFS_ORIGIN_CONFIG)
		return vfs_error_set(
			err, EINVAL,
			"%s: option '%s' is a secret and may only be given in "
			"a config file, never in a URL or on the command line",
			what, s->name);
	switch (s->type) {
	case VFS_OPT_STRING:
		return 0;
	case VFS_OPT_INT:
		if (vfs_parse_long(kv->value, s->min, s->max, &l) < 0)
			return vfs_error_set(err, EINVAL,
					     "%s: option '%s' must be a whole "
					     "number from %ld to %ld, not '%s'",
					     what, s->name, s->min, s->max,
					     kv->value);
		return 0;
	case VFS_OPT_BOOL:
		if (vfs_parse_bool(kv->value, &b) < 0)
			return vfs_error_set(
				err, EINVAL,
				"%s: option '%s' must be yes or no, not '%s'",
				what, s->name, kv->value);
		return 0;
	case VFS_OPT_ENUM:
		for (const char *const *c = s->choices; c && *c; c++)
			if (strcmp(*c, kv->value) == 0)
				return 0;
		return vfs_error_set(err, EINVAL,
				     "%s: option '%s' has no value '%s'", what,
				     s->name, kv->value);
	case VFS_OPT_PATH:
		if (kv->value[0] == '/' || strncmp(kv->value, "~/", 2) == 0)
			return 0;
		return vfs_error_set(
			err, EINVAL,
			"%s: option '%s' needs an absolute path, not '%s'",
			what, s->name, kv->value);
	}
	return vfs_error_set(err, EINVAL, "%s: option '%s' has a bad type",
			     what, s->name);
}

int vfs_opts_validate(struct vfs_opts *o, const struct vfs_opt_spec *spec,
		      const char *what, struct vfs_error *err)
{
	for (size_t i = 0; i < o->n; i++) {
		const struct vfs_opt_spec *s = spec_find(spec, o->kv[i].key);
		int ret;

		if (!s)
			return vfs_error_set(err, EINVAL,
					     "%s: unknown option '%s'", what,
					     o->kv[i].key);
		ret = opt_check(s, &o->kv[i], what, err);
		if (ret < 0)
			return ret;
	}
	o->spec = spec;
	return 0;
}

const char *vfs_opts_get(const struct vfs_opts *o, const char *key)
{
	const struct vfs_opt_kv *kv = opts_find(o, key);
	const struct vfs_opt_spec *s;

	if (kv)
		return kv->value;
	s = spec_find(o->spec, key);
	return s ? s->def : NULL;
}

long vfs_opts_get_int(const struct vfs_opts *o, const char *key)
{
	const char *v = vfs_opts_get(o, key);
	long l = 0;

	if (v)
		vfs_parse_long(v, LONG_MIN, LONG_MAX, &l);
	return l;
}

bool vfs_opts_get_bool(const struct vfs_opts *o, const char *key)
{
	const char *v = vfs_opts_get(o, key);
	bool b = false;

	if (v)
		vfs_parse_bool(v, &b);
	return b;
}
