/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.c - vfsd.conf(5) parsing with libinih, and -m mappings.
 *
 * inih calls our reader for every raw line, so the reader counts lines
 * (inih's handler gets no line number in Debian's build) and notices
 * section headers itself: a section with no keys still exists, and its
 * line is known for messages.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "lib/path.h"
#include "lib/url.h"
#include "vfsd/config.h"
#include "vfsd/qos.h"

#define CFG_MAX_SIZE (1u << 20)

struct cfg_parse {
	struct vfsd_config *cfg;
	const char *name; /* file name for messages */
	const char *text;
	size_t pos;
	int line;
	int origin;              /* VFS_ORIGIN_CONFIG or _OPEN_CONFIG */
	bool in_vfsd;            /* current section is [vfsd] */
	struct cfg_mount *cur;   /* current [mount] section, or NULL */
	struct cfg_qos *cur_qos; /* current [qos] section, or NULL */
	bool seen_url;           /* the current [mount] has its url... */
	bool seen_readonly;      /* ...and its readonly key */
	unsigned seen_vfsd;      /* [vfsd] keys given, by cfg_vfsd_keys index */
	struct vfs_error *err;
	int ret;
};

static int cfg_fail(struct cfg_parse *ps, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cfg_fail(struct cfg_parse *ps, int code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (ps->ret)
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ps->ret = vfs_error_set(ps->err, code, "%s:%d: %s", ps->name, ps->line,
				msg);
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static struct cfg_mount *cfg_new_mount(struct vfsd_config *cfg)
{
	struct cfg_mount *grown =
		realloc(cfg->mounts, (cfg->nmounts + 1) * sizeof(*grown));

	if (!grown)
		return NULL;
	cfg->mounts = grown;
	memset(&grown[cfg->nmounts], 0, sizeof(*grown));
	return &grown[cfg->nmounts++];
}

/* Start a [qos PATH] section. */
static void cfg_qos_section(struct cfg_parse *ps, char *arg)
{
	struct vfsd_config *cfg = ps->cfg;
	struct cfg_qos *grown, *q;
	struct vfs_error e;

	if (arg[0] == '"' && arg[1] && arg[strlen(arg) - 1] == '"') {
		arg[strlen(arg) - 1] = '\0';
		arg++;
	}
	grown = realloc(cfg->qos, (cfg->nqos + 1) * sizeof(*grown));
	if (!grown) {
		cfg_fail(ps, ENOMEM, "out of memory");
		return;
	}
	cfg->qos = grown;
	q = &grown[cfg->nqos++];
	memset(q, 0, sizeof(*q));
	ps->cur_qos = q;
	q->path = strdup(arg);
	if (asprintf(&q->where, "%s:%d", ps->name, ps->line) < 0)
		q->where = NULL;
	if (!q->path || !q->where) {
		cfg_fail(ps, ENOMEM, "out of memory");
		return;
	}
	vfs_error_init(&e);
	if (arg[0] != '/')
		cfg_fail(ps, EINVAL,
			 "[qos %s]: the path must be absolute (a "
			 "path inside the mount point, from its root)",
			 arg);
	else if (vfs_prefix_normalize(q->path, &e) < 0)
		cfg_fail(ps, e.code, "%s", e.msg);
	for (size_t i = 0; i + 1 < cfg->nqos; i++)
		if (strcmp(cfg->qos[i].path, q->path) == 0)
			cfg_fail(ps, EINVAL, "[qos %s] is already at %s",
				 q->path, cfg->qos[i].where);
}

/* One key of a [qos] section: a setting, checked at its line. */
static int cfg_qos_key(struct cfg_parse *ps, const char *name,
		       const char *value)
{
	struct cfg_qos *q = ps->cur_qos;
	struct throttle_cfg tc = {0};
	uint64_t *f = throttle_field(&tc, name);
	char key[64];

	if (!f)
		return cfg_fail(
			ps, EINVAL,
			"unknown key '%s' in [qos %s] (known: bps, "
			"bps_rd, bps_wr, iops, iops_rd, iops_wr, each "
			"also with _max and _max_length, and iops_size)",
			name, q->path);
	if (throttle_parse_value(value, f) < 0)
		return cfg_fail(ps, EINVAL,
				"%s = '%s': expected a plain decimal integer "
				"(bytes or operations per second, seconds, "
				"bytes)",
				name, value);
	snprintf(key, sizeof(key), "%s%s", QOS_OPT_PREFIX, name);
	if (vfs_opts_get(&q->opts, key))
		return cfg_fail(ps, EINVAL, "duplicate key '%s'", name);
	if (vfs_opts_set(&q->opts, key, value, ps->origin) < 0)
		return cfg_fail(ps, ENOMEM, "out of memory");
	return 1;
}

/* Start a section; `hdr` is the text between the brackets. */
static void cfg_section(struct cfg_parse *ps, char *hdr)
{
	char *arg;

	hdr = trim(hdr);
	ps->cur = NULL;
	ps->cur_qos = NULL;
	ps->in_vfsd = false;
	ps->seen_url = ps->seen_readonly = false;
	if (strcmp(hdr, "vfsd") == 0) {
		ps->in_vfsd = true;
		return;
	}
	if (strncmp(hdr, "qos", 3) == 0 && isspace((unsigned char)hdr[3])) {
		cfg_qos_section(ps, trim(hdr + 4));
		return;
	}
	if (strncmp(hdr, "mount", 5) != 0 || !isspace((unsigned char)hdr[5])) {
		cfg_fail(ps, EINVAL,
			 "unknown section [%s] (expected [vfsd], [mount "
			 "/PREFIX] or [qos /PATH])",
			 hdr);
		return;
	}
	arg = trim(hdr + 6);
	if (arg[0] == '"' && arg[1] && arg[strlen(arg) - 1] == '"') {
		arg[strlen(arg) - 1] = '\0';
		arg++;
	}
	ps->cur = cfg_new_mount(ps->cfg);
	if (!ps->cur) {
		cfg_fail(ps, ENOMEM, "out of memory");
		return;
	}
	ps->cur->prefix = strdup(arg);
	if (asprintf(&ps->cur->where, "%s:%d", ps->name, ps->line) < 0)
		ps->cur->where = NULL;
	if (!ps->cur->prefix || !ps->cur->where) {
		cfg_fail(ps, ENOMEM, "out of memory");
		return;
	}
	{
		struct vfs_error e;

		vfs_error_init(&e);
		if (vfs_prefix_normalize(ps->cur->prefix, &e) < 0)
			cfg_fail(ps, e.code, "%s", e.msg);
	}
}

/* inih's line source: counts lines and handles section headers. */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *ps = stream;
	const char *start = ps->text + ps->pos, *nl;
	size_t len;
	char *t;

	if (!*start)
		return NULL;
	nl = strchrnul(start, '\n');
	len = nl - start + (*nl ? 1 : 0);
	ps->pos += len;
	ps->line++;
	if (len >= (size_t)num) {
		cfg_fail(ps, EINVAL, "line longer than %d characters", num - 2);
		/* hand inih an empty line: the error is recorded */
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	memcpy(str, start, len);
	str[len] = '\0';
	t = trim(str);
	if (t[0] == '[') {
		char *rb = strchr(t, ']');

		if (!rb || *trim(rb + 1)) {
			cfg_fail(ps, EINVAL, "malformed section header");
		} else {
			*rb = '\0';
			cfg_section(ps, t + 1);
			*rb = ']';
		}
		/* inih tracks the section too; keep its view in step */
		memcpy(str, start, len);
		str[len] = '\0';
	}
	return str;
}

/* The keys of [vfsd]; each may be given once. */
static const char *const cfg_vfsd_keys[] = {
	"writeback_cache",
	"host_id",
	"mountpoint",
	"lock_lease",
	"show_control_dir",
	"allow_other_unchecked",
	NULL,
};

static int cfg_vfsd_key(struct cfg_parse *ps, const char *name,
			const char *value)
{
	struct vfsd_config *cfg = ps->cfg;
	unsigned i;

	for (i = 0; cfg_vfsd_keys[i]; i++)
		if (strcmp(name, cfg_vfsd_keys[i]) == 0)
			break;
	if (!cfg_vfsd_keys[i])
		return cfg_fail(ps, EINVAL, "unknown key '%s' in [vfsd]", name);
	if (ps->seen_vfsd & (1u << i))
		return cfg_fail(ps, EINVAL, "duplicate key '%s'", name);
	ps->seen_vfsd |= 1u << i;

	if (strcmp(name, "writeback_cache") == 0) {
		bool b;

		if (vfs_parse_bool(value, &b) == 0)
			cfg->writeback = b ? FO_WRITEBACK_ON : FO_WRITEBACK_OFF;
		else
			return cfg_fail(
				ps, EINVAL,
				"writeback_cache must be yes or no, not '%s'",
				value);
		return 1;
	}
	if (strcmp(name, "host_id") == 0) {
		struct vfs_error e;

		vfs_error_init(&e);
		if (cfg_check_host_id("host_id", value, &e) < 0)
			return cfg_fail(ps, e.code, "%s", e.msg);
		free(cfg->host_id);
		cfg->host_id = strdup(value);
		return cfg->host_id ? 1 : cfg_fail(ps, ENOMEM, "out of memory");
	}
	if (strcmp(name, "mountpoint") == 0) {
		if (value[0] != '/')
			return cfg_fail(
				ps, EINVAL,
				"mountpoint must be an absolute path, not '%s'",
				value);
		free(cfg->mountpoint);
		cfg->mountpoint = strdup(value);
		return cfg->mountpoint ? 1
				       : cfg_fail(ps, ENOMEM, "out of memory");
	}
	if (strcmp(name, "lock_lease") == 0) {
		long l;

		if (vfs_parse_long(value, 3, 3600, &l) < 0)
			return cfg_fail(ps, EINVAL,
					"lock_lease must be 3 to 3600 seconds, "
					"not '%s'",
					value);
		cfg->lock_lease = (int)l;
		return 1;
	}
	if (strcmp(name, "allow_other_unchecked") == 0) {
		if (vfs_parse_bool(value, &cfg->allow_other_unchecked) < 0)
			return cfg_fail(ps, EINVAL,
					"allow_other_unchecked must be yes or "
					"no, not '%s'",
					value);
		return 1;
	}
	if (strcmp(name, "show_control_dir") == 0) {
		if (vfs_parse_bool(value, &cfg->show_control_dir) < 0)
			return cfg_fail(
				ps, EINVAL,
				"show_control_dir must be yes or no, not '%s'",
				value);
		return 1;
	}
	return cfg_fail(ps, EINVAL, "unknown key '%s' in [vfsd]", name);
}

static int cfg_handler(void *user, const char *section, const char *name,
		       const char *value)
{
	struct cfg_parse *ps = user;
	struct cfg_mount *m = ps->cur;

	if (ps->ret)
		return 0;
	if (!name)
		return 1;
	if (ps->in_vfsd)
		return cfg_vfsd_key(ps, name, value);
	if (ps->cur_qos)
		return cfg_qos_key(ps, name, value);
	if (!m)
		return cfg_fail(
			ps, EINVAL,
			"key '%s' outside of a [vfsd] or [mount] section",
			name);
	/* every key of a section once: a second value is an error, not the
	 * silent winner (vfsd.conf(5)) */
	if (strcmp(name, "url") == 0) {
		if (ps->seen_url)
			return cfg_fail(ps, EINVAL, "duplicate key 'url'");
		ps->seen_url = true;
		m->url = strdup(value);
		return m->url ? 1 : cfg_fail(ps, ENOMEM, "out of memory");
	}
	if (strcmp(name, "readonly") == 0) {
		if (ps->seen_readonly)
			return cfg_fail(ps, EINVAL, "duplicate key 'readonly'");
		ps->seen_readonly = true;
		if (vfs_parse_bool(value, &m->readonly) < 0)
			return cfg_fail(ps, EINVAL,
					"readonly must be yes or no, not '%s'",
					value);
		return 1;
	}
	if (vfs_opts_get(&m->opts, name))
		return cfg_fail(ps, EINVAL, "duplicate key '%s'", name);
	if (vfs_opts_set(&m->opts, name, value, ps->origin) < 0)
		return cfg_fail(ps, ENOMEM, "out of memory");
	{
		int *grown = realloc(m->lines, m->opts.n * sizeof(*grown));

		if (!grown)
			return cfg_fail(ps, ENOMEM, "out of memory");
		m->lines = grown;
		m->lines[m->opts.n - 1] = ps->line;
	}
	return 1;
}

int cfg_load_string(struct vfsd_config *cfg, const char *text, const char *name,
		    bool private_file, struct vfs_error *err)
{
	struct cfg_parse ps = {
		.cfg = cfg,
		.name = name,
		.text = text,
		.origin = private_file ? VFS_ORIGIN_CONFIG
				       : VFS_ORIGIN_OPEN_CONFIG,
		.err = err,
	};
	size_t first = cfg->nmounts;
	int r;

	r = ini_parse_stream(cfg_reader, &ps, cfg_handler, &ps);
	if (ps.ret)
		return ps.ret;
	if (r > 0) {
		ps.line = r;
		cfg_fail(&ps, EINVAL, "syntax error (expected key = value)");
		return ps.ret;
	}
	if (r < 0)
		return vfs_error_set(err, ENOMEM, "%s: out of memory", name);
	for (size_t i = first; i < cfg->nmounts; i++)
		if (!cfg->mounts[i].url)
			return vfs_error_set(
				err, EINVAL, "%s: [mount %s] has no url",
				cfg->mounts[i].where, cfg->mounts[i].prefix);
	return 0;
}

int cfg_load_file(struct vfsd_config *cfg, const char *path,
		  struct vfs_error *err)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		return vfs_error_set(err, e, "config %s: %s", path,
				     strerror(e));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return vfs_error_set(err, EINVAL,
				     "config %s: not a regular file", path);
	}
	if (st.st_size > CFG_MAX_SIZE) {
		close(fd);
		return vfs_error_set(err, EFBIG,
				     "config %s: larger than %u bytes", path,
				     CFG_MAX_SIZE);
	}
	text = malloc(st.st_size + 1);
	if (!text) {
		close(fd);
		return vfs_error_set(err, ENOMEM, "out of memory");
	}
	n = read(fd, text, st.st_size);
	close(fd);
	if (n < 0) {
		int e = errno;

		free(text);
		return vfs_error_set(err, e, "config %s: %s", path,
				     strerror(e));
	}
	text[n] = '\0';
	if (memchr(text, '\0', n)) {
		free(text);
		return vfs_error_set(err, EINVAL,
				     "config %s: contains a NUL byte", path);
	}
	free(cfg->file);
	cfg->file = strdup(path);
	ret = cfg->file ? cfg_load_string(cfg, text, path,
					  (st.st_mode & 077) == 0, err)
			: vfs_error_set(err, ENOMEM, "out of memory");
	explicit_bzero(text, n);
	free(text);
	return ret;
}

int cfg_add_mapping(struct vfsd_config *cfg, const char *arg,
		    struct vfs_error *err)
{
	const char *eq = strchr(arg, '=');
	struct cfg_mount *m;

	if (!eq || eq == arg || !eq[1]) {
		char safe[300];

		return vfs_error_set(err, EINVAL,
				     "-m '%s': expected PREFIX=URL, e.g. "
				     "/data=file:///srv/data",
				     vfs_url_redact(arg, safe, sizeof(safe)));
	}
	m = cfg_new_mount(cfg);
	if (!m)
		return vfs_error_set(err, ENOMEM, "out of memory");
	m->prefix = strndup(arg, eq - arg);
	m->url = strdup(eq + 1);
	m->where = strdup("-m");
	if (!m->prefix || !m->url || !m->where)
		return vfs_error_set(err, ENOMEM, "out of memory");
	{
		struct vfs_error e;

		vfs_error_init(&e);
		if (vfs_prefix_normalize(m->prefix, &e) < 0)
			return vfs_error_set(err, e.code, "-m: %s", e.msg);
	}
	return 0;
}

/*
 * A [mount] section's limits (its qos.NAME keys, then its URL's, which
 * win) as one set on its prefix: checked, and applied unless dry_run.
 */
static int mount_qos(const struct cfg_mount *m, const struct vfs_url *url,
		     bool dry_run, struct vfs_error *err)
{
	struct vfs_opts all = {0}, rest = {0};
	char what[600];
	int ret = vfs_opts_copy(&all, &m->opts);

	for (size_t i = 0; ret == 0 && i < url->query.n; i++)
		ret = vfs_opts_set(&all, url->query.kv[i].key,
				   url->query.kv[i].value,
				   url->query.kv[i].origin);
	snprintf(what, sizeof(what), "%s: [mount %s]", m->where, m->prefix);
	if (ret < 0)
		ret = vfs_error_set(err, ENOMEM, "out of memory");
	else
		ret = qos_from_opts(m->prefix, &all, QOS_ORIGIN_CONFIG, what,
				    dry_run, &rest, err);
	vfs_opts_clear(&all);
	vfs_opts_clear(&rest);
	return ret;
}

int cfg_validate(const struct vfsd_config *cfg, struct vfs_error *err)
{
	if (cfg->nmounts == 0)
		return vfs_error_set(
			err, EINVAL,
			"%s: no [mount] sections: nothing to serve",
			cfg->file ? cfg->file : "configuration");
	for (size_t i = 0; i < cfg->nmounts; i++) {
		const struct cfg_mount *m = &cfg->mounts[i];
		const struct vfs_backend_ops *ops;
		struct vfs_opts opts = {0};
		struct vfs_url url;
		char what[512];
		int ret;

		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->mounts[j].prefix, m->prefix) == 0)
				return vfs_error_set(
					err, EINVAL,
					"%s: prefix %s is already mapped at %s",
					m->where, m->prefix,
					cfg->mounts[j].where);
		snprintf(what, sizeof(what), "%s: [mount %s]", m->where,
			 m->prefix);
		ret = vfs_url_parse(m->url, &url, err);
		if (ret < 0) {
			/* name the place; the URL message follows */
			struct vfs_error inner = *err;

			err->code = 0;
			return vfs_error_set(err, inner.code, "%s: %s", what,
					     inner.msg);
		}
		ops = backend_find(url.scheme);
		if (!ops) {
			ret = vfs_error_set(err, EPROTONOSUPPORT,
					    "%s: unknown URL scheme '%s' in "
					    "'%s' (known: file, sftp, nfs)",
					    what, url.scheme, url.raw);
			vfs_url_clear(&url);
			return ret;
		}
		/* config keys one by one, so the message names their line */
		for (size_t k = 0; k < m->opts.n; k++) {
			struct vfs_opts one = {0};
			char kwhat[600];

			/* m->where is "NAME:LINE" of the section */
			if (m->lines)
				snprintf(kwhat, sizeof(kwhat),
					 "%.*s:%d: [mount %s]",
					 (int)(strrchr(m->where, ':') -
					       m->where),
					 m->where, m->lines[k], m->prefix);
			else
				snprintf(kwhat, sizeof(kwhat), "%s", what);
			ret = vfs_opts_set(&one, m->opts.kv[k].key,
					   m->opts.kv[k].value,
					   m->opts.kv[k].origin);
			/* a limit's name and value here, the set below */
			if (ret == 0 && qos_is_opt(m->opts.kv[k].key))
				ret = qos_opt_check(m->opts.kv[k].key,
						    m->opts.kv[k].value, kwhat,
						    err);
			else if (ret == 0)
				ret = vfs_opts_validate(&one, ops->opts, kwhat,
							err);
			else
				ret = vfs_error_set(err, ENOMEM,
						    "out of memory");
			vfs_opts_clear(&one);
			if (ret < 0) {
				vfs_url_clear(&url);
				return ret;
			}
		}
		/* the URL's own (qos.NAME ones apart), then the mount's
		 * limits as one set */
		ret = qos_from_opts(m->prefix, &url.query, QOS_ORIGIN_CONFIG,
				    what, true, &opts, err);
		if (ret == 0)
			ret = vfs_opts_validate(&opts, ops->opts, what, err);
		vfs_opts_clear(&opts);
		if (ret == 0)
			ret = mount_qos(m, &url, true, err);
		vfs_url_clear(&url);
		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < cfg->nqos; i++) {
		struct vfs_opts rest = {0};
		char what[600];
		int ret;

		snprintf(what, sizeof(what), "%s: [qos %s]", cfg->qos[i].where,
			 cfg->qos[i].path);
		ret = qos_from_opts(cfg->qos[i].path, &cfg->qos[i].opts,
				    QOS_ORIGIN_CONFIG, what, true, &rest, err);
		vfs_opts_clear(&rest);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int cfg_apply_qos(const struct vfsd_config *cfg, struct vfs_error *err)
{
	int ret = 0;

	for (size_t i = 0; i < cfg->nmounts && ret == 0; i++) {
		struct vfs_url url;

		ret = vfs_url_parse(cfg->mounts[i].url, &url, err);
		if (ret == 0) {
			ret = mount_qos(&cfg->mounts[i], &url, false, err);
			vfs_url_clear(&url);
		}
	}
	for (size_t i = 0; i < cfg->nqos && ret == 0; i++) {
		struct vfs_opts rest = {0};
		char what[600];

		snprintf(what, sizeof(what), "%s: [qos %s]", cfg->qos[i].where,
			 cfg->qos[i].path);
		ret = qos_from_opts(cfg->qos[i].path, &cfg->qos[i].opts,
				    QOS_ORIGIN_CONFIG, what, false, &rest, err);
		vfs_opts_clear(&rest);
	}
	return ret;
}

void cfg_free(struct vfsd_config *cfg)
{
	for (size_t i = 0; i < cfg->nmounts; i++) {
		free(cfg->mounts[i].prefix);
		free(cfg->mounts[i].url);
		free(cfg->mounts[i].where);
		vfs_opts_clear(&cfg->mounts[i].opts);
		free(cfg->mounts[i].lines);
	}
	free(cfg->mounts);
	for (size_t i = 0; i < cfg->nqos; i++) {
		free(cfg->qos[i].path);
		free(cfg->qos[i].where);
		vfs_opts_clear(&cfg->qos[i].opts);
	}
	free(cfg->qos);
	free(cfg->host_id);
	free(cfg->mountpoint);
	free(cfg->file);
	memset(cfg, 0, sizeof(*cfg));
}

int cfg_check_host_id(const char *what, const char *id, struct vfs_error *err)
{
	size_t len = strlen(id);
	char q[80];

	for (const char *c = id; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '/' ||
		    *c == '\\')
			goto bad;
	if (len >= 1 && len <= CFG_HOST_ID_MAX)
		return 0;
bad:
	return vfs_error_set(err, EINVAL,
			     "%s '%s': a host id is a word of 1 to %d bytes "
			     "without spaces, control characters or slashes",
			     what, vfs_quote(id, q, sizeof(q)),
			     CFG_HOST_ID_MAX);
}

/*
 * Whether the -o item at p (up to its end, returned in *next) is `name`,
 * read as libfuse reads its option groups: an item ends at a comma, a
 * backslash takes the character after it as it is, and \NNN with a first
 * digit of 0 to 3 is one octal byte.  Compared as written, "allow\_other"
 * would pass here for another option while libfuse mounts allow_other.
 */
static bool cfg_fuse_item_is(const char *p, const char **next, const char *name)
{
	bool same = true;

	for (; *p && *p != ','; p++) {
		int c = (unsigned char)*p;

		if (c == '\\' && p[1]) {
			c = (unsigned char)*++p;
			if (c >= '0' && c <= '3' && p[1] >= '0' &&
			    p[1] <= '7' && p[2] >= '0' && p[2] <= '7') {
				c = (c - '0') * 64 + (p[1] - '0') * 8 +
				    (p[2] - '0');
				p += 2;
			}
		}
		if (same && *name && (unsigned char)*name == c)
			name++;
		else
			same = false;
	}
	*next = *p ? p + 1 : p;
	return same && !*name;
}

bool cfg_fuse_opt_present(const char *opts, const char *name)
{
	for (const char *p = opts; p && *p;)
		if (cfg_fuse_item_is(p, &p, name))
			return true;
	return false;
}

int cfg_check_fuse_opts(const char *fuse_opts, bool root, bool unchecked,
			const char **warning, struct vfs_error *err)
{
	*warning = NULL;
	if (!cfg_fuse_opt_present(fuse_opts, "allow_other") ||
	    cfg_fuse_opt_present(fuse_opts, "default_permissions"))
		return 0;
	if (root && !unchecked)
		return vfs_error_set(
			err, EPERM,
			"-o allow_other without default_permissions is refused "
			"when vfsd runs as root: the kernel would check no "
			"permissions, so any local user could read and write "
			"every file of the backends with the daemon's root "
			"rights. Add -o default_permissions (the kernel then "
			"checks file modes), or give --allow-other-unchecked "
			"(allow_other_unchecked = yes in [vfsd]) if that is "
			"truly meant");
	*warning =
		root ? "-o allow_other without default_permissions, as "
		       "allow_other_unchecked asks: any local user reads and "
		       "writes every file of the backends with root's rights"
		     : "-o allow_other without default_permissions: every user "
		       "who can reach the mount acts on the backends with this "
		       "daemon's rights, not their own (add -o "
		       "default_permissions)";
	return 0;
}
