/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * layer_qos.c - the store's own extended attributes where the backend
 * keeps none: a VM's I/O limits (user.vfsd.qos.*, vfsd/qos.h) must follow
 * its image to every host that serves it, and NFS (v3, and v4 through
 * libnfs) and SFTP have no extended attributes.  On shared mounts without
 * them the layer keeps those attributes of a file `DIR/NAME` in a small
 * text file `DIR/.vfsd-qos/NAME` on the storage, one "name=value" line
 * each, which it hides from listings and refuses to every call as it does
 * the lock records (layer_internal.h, reserved()).
 *
 * A sidecar is replaced whole (written under a temporary name, then
 * renamed over), so another host reads the old set or the new one.  The
 * temporary one is `DIR/.vfsd-qos/.vfsd-qos/ID.TOKEN.PID.N.tmp`: no file
 * can be named .vfsd-qos, so it is no other file's sidecar, and its name
 * is this writer's alone (host id, instance token, pid, a number), so two
 * hosts changing one file's limits at the same moment each rename a text
 * of their own: the last rename wins, as with two setfattr on one file,
 * and the set stored is always one writer's whole.  A temporary that a
 * writer cut off (killed, or its server lost) leaves there is never read;
 * it goes at a change in that directory once ten minutes old
 * (sweep_stale), or with the directory's rmdir (clear_dir).  An unlink
 * or rename of the file through the layer takes its sidecar along;
 * changes made beside vfsd leave it behind, where it describes a name
 * that may come back, and so may another host's new sidecar in a
 * directory seen without any less than a second ago (none_there).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "guestfs/layer.h"
#include "guestfs/layer_internal.h"
#include "guestfs/lock.h"
#include "lib/clock.h"
#include "lib/path.h"
#include "guestfs/lower.h"

#define SIDECAR_MAX         4096
#define SIDECAR_STALE_TRIES 4 /* reads of a sidecar renamed over meanwhile */

bool layer_qos_sidecar(const struct layer_mount *lm)
{
	return lm->lower.shared && !lm->lops->setxattr;
}

bool layer_qos_name(const char *name)
{
	return strncmp(name, IMAGE_QOS_XATTR_PREFIX,
		       strlen(IMAGE_QOS_XATTR_PREFIX)) == 0;
}

bool layer_qos_reserved(const char *path)
{
	return vfs_path_has_component(path, LAYER_QOS_DIR);
}

/* "DIR/.vfsd-qos" and "DIR/.vfsd-qos/NAME" of `path` (new strings), or
 * -EOPNOTSUPP for the root, -ENOMEM. */
static int sidecar_paths(const char *path, char **dir, char **file)
{
	const char *slash = strrchr(path, '/');
	int dlen;

	if (!slash || !slash[1])
		return -EOPNOTSUPP;
	dlen = (int)(slash - path);
	*dir = NULL;
	*file = NULL;
	if (asprintf(dir, "%.*s/%s", dlen, path, LAYER_QOS_DIR) < 0)
		*dir = NULL;
	if (*dir && asprintf(file, "%s/%s", *dir, slash + 1) < 0)
		*file = NULL;
	if (!*dir || !*file) {
		free(*dir);
		free(*file);
		return -ENOMEM;
	}
	return 0;
}

#define NONE_SLOTS                                                             \
	(sizeof(((struct layer_mount *)0)->qos_none) /                         \
	 sizeof(struct layer_qos_none))

/* Whether `dir` (a sidecar directory) was seen missing lately; qos_lock
 * held when `locked`. */
static bool none_known(struct layer_mount *lm, const char *dir, bool locked)
{
	int64_t now = vfs_mono_ns();
	bool known = false;

	if (!locked)
		pthread_mutex_lock(&lm->qos_lock);
	for (size_t i = 0; i < NONE_SLOTS && !known; i++)
		known = lm->qos_none[i].dir && lm->qos_none[i].until > now &&
			strcmp(lm->qos_none[i].dir, dir) == 0;
	if (!locked)
		pthread_mutex_unlock(&lm->qos_lock);
	return known;
}

/* Note `dir` missing (true) or forget it (false); qos_lock held. */
static void none_note(struct layer_mount *lm, const char *dir, bool missing)
{
	/* another host's first sidecar there shows within this, or the
	 * attribute cache's time when longer */
	double ttl = lm->base.attr_timeout > 1.0 ? lm->base.attr_timeout : 1.0;
	struct layer_qos_none *e;

	for (size_t i = 0; i < NONE_SLOTS; i++)
		if (lm->qos_none[i].dir &&
		    strcmp(lm->qos_none[i].dir, dir) == 0) {
			free(lm->qos_none[i].dir);
			lm->qos_none[i].dir = NULL;
		}
	if (!missing) {
		lm->qos_writes++;
		return;
	}
	e = &lm->qos_none[lm->qos_none_next++ % NONE_SLOTS];
	free(e->dir);
	e->dir = strdup(dir);
	e->until = vfs_mono_ns() + (int64_t)(ttl * 1e9);
}

static uint64_t qos_writes(struct layer_mount *lm, bool locked)
{
	uint64_t n;

	if (!locked)
		pthread_mutex_lock(&lm->qos_lock);
	n = lm->qos_writes;
	if (!locked)
		pthread_mutex_unlock(&lm->qos_lock);
	return n;
}

/* Note `dir` missing, as the server answered when `writes` was
 * qos_writes(): unless this layer wrote a sidecar since, which may have
 * made it.  qos_lock held when `locked`. */
static void none_found(struct layer_mount *lm, const char *dir, uint64_t writes,
		       bool locked)
{
	if (!locked)
		pthread_mutex_lock(&lm->qos_lock);
	if (lm->qos_writes == writes)
		none_note(lm, dir, true);
	if (!locked)
		pthread_mutex_unlock(&lm->qos_lock);
}

/*
 * Whether the sidecar directory `dir` is missing: seen so lately, or
 * found so now (and noted).  An unlink, rename or link through the layer
 * then has no sidecar to take along or clear, which spares it two round
 * trips per name (an unlink and the backend's look at why it failed) in
 * the common directory without any.  A sidecar another host made there
 * after the note, within the attribute cache's time, stays behind as one
 * made beside vfsd does.  qos_lock held when `locked`.
 */
static bool none_there(struct layer_mount *lm, const char *dir, bool locked)
{
	uint64_t writes;

	if (none_known(lm, dir, locked))
		return true;
	writes = qos_writes(lm, locked);
	if (lower_getattr(&lm->lower, dir, &(struct stat){0}) != -ENOENT)
		return false;
	none_found(lm, dir, writes, locked);
	return true;
}

/* The sidecar's text into buf (NUL-terminated); 0 when there is none.
 * qos_lock held when `locked`. */
static ssize_t sidecar_read(struct layer_mount *lm, const char *dir,
			    const char *file, char *buf, size_t size,
			    bool locked)
{
	struct vfs_file *f;
	struct stat st;
	uint64_t writes;
	ssize_t n;
	int ret;

	if (none_known(lm, dir, locked))
		return 0;
	writes = qos_writes(lm, locked);
	ret = lower_getattr(&lm->lower, dir, &st);
	if (ret == -ENOENT) {
		none_found(lm, dir, writes, locked);
		return 0;
	}
	if (ret < 0)
		return ret;
	/* another host's change renames its new text over the sidecar: the
	 * file opened here may be gone at the server before it is read
	 * (ESTALE over NFS), and the name then holds the new one */
	for (int tries = 0;; tries++) {
		ret = lower_open(&lm->lower, file, O_RDONLY, &f);
		if (ret == -ENOENT)
			return 0;
		if (ret == -ESTALE && tries < SIDECAR_STALE_TRIES)
			continue;
		if (ret < 0)
			return ret;
		n = lower_read(&lm->lower, f, buf, size - 1, 0);
		lower_release(&lm->lower, f);
		if (n == -ESTALE && tries < SIDECAR_STALE_TRIES)
			continue;
		if (n < 0)
			return n;
		buf[n] = '\0';
		return n;
	}
}

struct qos_names {
	char **v;
	size_t n;
	bool other; /* a name that is no hidden one */
	bool oom;
};

static int qos_collect(void *ctx, const char *name, const struct stat *st,
		       unsigned flags, off_t next)
{
	struct qos_names *d = ctx;
	char **grown;

	(void)st;
	(void)flags;
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	grown = realloc(d->v, (d->n + 1) * sizeof(*grown));
	if (!grown || !(grown[d->n] = strdup(name))) {
		if (grown)
			d->v = grown;
		d->oom = true;
		return 0;
	}
	d->v = grown;
	d->n++;
	return 0;
}

static void names_free(struct qos_names *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i]);
	free(d->v);
	*d = (struct qos_names){0};
}

/* A temporary this much older than the server's time now is a writer's
 * that was cut off (killed, or its server lost): a live one renames its
 * own within a few of its mount's timeouts (create, write, flush, rename).
 * One frozen longer finds it gone, and its change fails, rather than
 * land late. */
#define TMP_STALE_S 600

/* Remove what writers cut off left in tdir, the directory of temporary
 * sidecars, whose time our own rename has just set: the server's now.
 * Costs one listing, and a stat of each temporary found there. */
static void sweep_stale(struct layer_mount *lm, const char *tdir)
{
	struct qos_names names = {0};
	struct stat now, st;

	if (lower_list(&lm->lower, tdir, qos_collect, &names) == 0 && names.n &&
	    lower_getattr(&lm->lower, tdir, &now) == 0) {
		for (size_t i = 0; i < names.n; i++) {
			char *t;

			if (asprintf(&t, "%s/%s", tdir, names.v[i]) < 0)
				break;
			if (lower_getattr(&lm->lower, t, &st) == 0 &&
			    S_ISREG(st.st_mode) &&
			    st.st_mtime + TMP_STALE_S < now.st_mtime)
				lower_unlink(&lm->lower, t);
			free(t);
		}
	}
	names_free(&names);
}

/* the temporary names' numbers, for all instances of the layer */
static _Atomic uint64_t tmp_seq;

static int sidecar_write(struct layer_mount *lm, const char *dir,
			 const char *file, const char *text)
{
	struct vfs_file *f;
	char *tdir, *tmp = NULL, self[160];
	size_t len = strlen(text);
	ssize_t n;
	int ret;

	if (!len) {
		ret = lower_unlink(&lm->lower, file);
		return ret == -ENOENT ? 0 : ret;
	}
	if (asprintf(&tdir, "%s/%s", dir, LAYER_QOS_DIR) < 0)
		return -ENOMEM;
	glock_instance_name(self, sizeof(self));
	if (asprintf(&tmp, "%s/%s.%d.%" PRIu64 ".tmp", tdir, self, getpid(),
		     atomic_fetch_add(&tmp_seq, 1)) < 0) {
		free(tdir);
		return -ENOMEM;
	}
	ret = lower_create(&lm->lower, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644,
			   &f);
	if (ret == -ENOENT) {
		ret = lower_mkdir(&lm->lower, dir, 0755);
		if (ret == 0 || ret == -EEXIST)
			ret = lower_mkdir(&lm->lower, tdir, 0755);
		if (ret == 0 || ret == -EEXIST)
			ret = lower_create(&lm->lower, tmp,
					   O_WRONLY | O_CREAT | O_TRUNC, 0644,
					   &f);
	}
	if (ret < 0) {
		free(tdir);
		free(tmp);
		return ret;
	}
	atomic_store(&f->write_through, true);
	n = lower_write(&lm->lower, f, text, len, 0);
	ret = n < 0 ? (int)n : (size_t)n != len ? -EIO : 0;
	if (ret == 0)
		ret = lower_flush(&lm->lower, f);
	lower_release(&lm->lower, f);
	if (ret == 0)
		ret = lower_rename(&lm->lower, tmp, file);
	if (ret < 0)
		lower_unlink(&lm->lower, tmp);
	else
		sweep_stale(lm, tdir);
	free(tdir);
	free(tmp);
	return ret;
}

/* The value of line `name` in text, or NULL; *len its length. */
static const char *find_line(const char *text, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (const char *p = text; *p;) {
		const char *end = strchr(p, '\n');

		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 &&
		    p[nlen] == '=') {
			*len = (size_t)(end - p) - nlen - 1;
			return p + nlen + 1;
		}
		p = *end ? end + 1 : end;
	}
	return NULL;
}

static int file_exists(struct layer_mount *lm, const char *path)
{
	struct stat st;

	return lower_getattr(&lm->lower, path, &st);
}

/* The stored settings of the file at `path` into text (SIDECAR_MAX
 * bytes, NUL-terminated): their length, or -errno (-EOPNOTSUPP for the
 * root, which has no place for them). */
static ssize_t sidecar_load(struct layer_mount *lm, const char *path,
			    char *text)
{
	char *dir, *file;
	ssize_t n;
	int ret = sidecar_paths(path, &dir, &file);

	if (ret < 0)
		return ret;
	ret = file_exists(lm, path);
	n = ret < 0 ? ret
		    : sidecar_read(lm, dir, file, text, SIDECAR_MAX, false);
	free(dir);
	free(file);
	if (n >= 0)
		text[n] = '\0';
	return n;
}

ssize_t layer_qos_get(struct layer_mount *lm, const char *path,
		      const char *name, void *buf, size_t size)
{
	char text[SIDECAR_MAX];
	const char *v;
	size_t len;
	ssize_t n = sidecar_load(lm, path, text);

	if (n == -EOPNOTSUPP)
		return -ENODATA;
	if (n < 0)
		return n;
	v = find_line(text, name, &len);
	if (!v)
		return -ENODATA;
	if (size && len > size)
		return -ERANGE;
	if (size)
		memcpy(buf, v, len);
	return (ssize_t)len;
}

ssize_t layer_qos_list(struct layer_mount *lm, const char *path, char *buf,
		       size_t size)
{
	char text[SIDECAR_MAX];
	size_t out = 0;
	ssize_t n = sidecar_load(lm, path, text);

	if (n == -EOPNOTSUPP)
		return 0;
	if (n < 0)
		return n;
	for (char *p = text; *p;) {
		char *end = strchr(p, '\n'), *eq;
		size_t len;

		if (end)
			*end = '\0';
		eq = strchr(p, '=');
		if (eq && layer_qos_name(p)) {
			len = (size_t)(eq - p);
			if (size && out + len + 1 > size)
				return -ERANGE;
			if (size) {
				memcpy(buf + out, p, len);
				buf[out + len] = '\0';
			}
			out += len + 1;
		}
		p = end ? end + 1 : p + strlen(p);
	}
	return (ssize_t)out;
}

int layer_qos_set(struct layer_mount *lm, const char *path, const char *name,
		  const void *value, size_t size, int flags)
{
	char *dir, *file, text[SIDECAR_MAX], out[SIDECAR_MAX];
	size_t used = 0, len;
	bool found = false;
	ssize_t n;
	int ret;

	if (value && (size == 0 || size > 64 || memchr(value, '\n', size) ||
		      memchr(value, '\0', size)))
		return -EINVAL;
	if (strlen(name) > 64)
		return -ERANGE;
	/* a line of its own, or a value, in the name would set another
	 * attribute than the one named: a limit, past the root-only check
	 * vfsd makes on the names of its settings */
	if (strpbrk(name, "\n="))
		return value ? -EINVAL : -ENODATA;
	ret = sidecar_paths(path, &dir, &file);
	if (ret < 0)
		return ret;
	/* read and written under the lock: two changes here (a setxattr and
	 * `vfsctl qos set`, which the kernel's lock of the file does not
	 * order) must not both start from the old set, or one is lost.  A
	 * change between read and write is another host's race, as with
	 * xattrs */
	pthread_mutex_lock(&lm->qos_lock);
	ret = file_exists(lm, path);
	n = ret < 0 ? ret
		    : sidecar_read(lm, dir, file, text, sizeof(text), true);
	if (n < 0) {
		ret = (int)n;
		goto out;
	}
	text[n] = '\0';
	for (char *p = text; *p;) {
		char *end = strchr(p, '\n');

		if (end)
			*end = '\0';
		len = strlen(p);
		if (find_line(p, name, &(size_t){0})) {
			found = true;
			if (value) {
				used += (size_t)snprintf(
					out + used, sizeof(out) - used,
					"%s=%.*s\n", name, (int)size,
					(const char *)value);
			}
		} else if (len && used + len + 2 < sizeof(out)) {
			used += (size_t)snprintf(out + used, sizeof(out) - used,
						 "%s\n", p);
		}
		p = end ? end + 1 : p + len;
	}
	if ((flags & XATTR_CREATE) && found) {
		ret = -EEXIST;
		goto out;
	}
	if (((flags & XATTR_REPLACE) || !value) && !found) {
		ret = -ENODATA;
		goto out;
	}
	if (value && !found)
		used += (size_t)snprintf(out + used, sizeof(out) - used,
					 "%s=%.*s\n", name, (int)size,
					 (const char *)value);
	if (used >= sizeof(out) - 1) {
		ret = -ENOSPC;
		goto out;
	}
	out[used] = '\0';
	ret = sidecar_write(lm, dir, file, out);
	none_note(lm, dir, false);
out:
	pthread_mutex_unlock(&lm->qos_lock);
	free(dir);
	free(file);
	return ret;
}

/* Whether `dir` is `top` or lies below it. */
static bool path_under(const char *dir, const char *top)
{
	size_t n = strlen(top);

	return strncmp(dir, top, n) == 0 && (dir[n] == '/' || !dir[n]);
}

void layer_qos_renamed(struct layer_mount *lm, const char *from, const char *to)
{
	pthread_mutex_lock(&lm->qos_lock);
	/* a directory renamed: what was seen of its old and new paths (and
	 * of a lookup under way there) says nothing of what is there now */
	lm->qos_writes++;
	for (size_t i = 0; i < NONE_SLOTS; i++) {
		char *d = lm->qos_none[i].dir;

		if (d && (path_under(d, from) || path_under(d, to))) {
			free(d);
			lm->qos_none[i].dir = NULL;
		}
	}
	pthread_mutex_unlock(&lm->qos_lock);
}

void layer_qos_moved(struct layer_mount *lm, const char *from, const char *to)
{
	char *fdir, *ffile, *tdir = NULL, *tfile = NULL;
	int ret;

	if (sidecar_paths(from, &fdir, &ffile) < 0)
		return;
	if (!to) {
		if (!none_there(lm, fdir, false))
			lower_unlink(&lm->lower, ffile);
	} else if (sidecar_paths(to, &tdir, &tfile) == 0) {
		bool none = none_there(lm, fdir, false);

		ret = none ? -ENOENT : lower_rename(&lm->lower, ffile, tfile);
		if (ret == -ENOENT && !none &&
		    lower_getattr(&lm->lower, ffile, &(struct stat){0}) == 0) {
			/* the target directory has no sidecars yet */
			lower_mkdir(&lm->lower, tdir, 0755);
			ret = lower_rename(&lm->lower, ffile, tfile);
		} else if (ret == -ENOENT && !none_there(lm, tdir, false)) {
			/* none to move: none may stay at the new name */
			lower_unlink(&lm->lower, tfile);
		}
		if (ret == 0) {
			/* it has one now, whatever was noted of it: an open
			 * at the new name must find the limits */
			pthread_mutex_lock(&lm->qos_lock);
			none_note(lm, tdir, false);
			pthread_mutex_unlock(&lm->qos_lock);
		}
		free(tdir);
		free(tfile);
	}
	free(fdir);
	free(ffile);
}

void layer_qos_linked(struct layer_mount *lm, const char *from, const char *to)
{
	char *fdir, *ffile, *tdir, *tfile, text[SIDECAR_MAX];
	ssize_t n;

	if (sidecar_paths(from, &fdir, &ffile) < 0)
		return;
	if (sidecar_paths(to, &tdir, &tfile) < 0) {
		free(fdir);
		free(ffile);
		return;
	}
	pthread_mutex_lock(&lm->qos_lock);
	n = sidecar_read(lm, fdir, ffile, text, sizeof(text), true);
	if (n > 0 && sidecar_write(lm, tdir, tfile, text) == 0)
		none_note(lm, tdir, false);
	else if (n == 0 && !none_there(lm, tdir, true))
		/* one left at the new name beside vfsd describes another
		 * file */
		lower_unlink(&lm->lower, tfile);
	pthread_mutex_unlock(&lm->qos_lock);
	free(fdir);
	free(ffile);
	free(tdir);
	free(tfile);
}

/* Remove the sidecar directory d and what it holds: sidecars, and (when
 * `outer`) the directory of temporary ones with what a crash left there. */
static void clear_dir(struct layer_mount *lm, const char *d, bool outer)
{
	struct qos_names files = {0};

	lower_list(&lm->lower, d, qos_collect, &files);
	for (size_t i = 0; i < files.n; i++) {
		char *f;

		if (asprintf(&f, "%s/%s", d, files.v[i]) < 0)
			continue;
		if (outer && strcmp(files.v[i], LAYER_QOS_DIR) == 0)
			clear_dir(lm, f, false);
		else
			lower_unlink(&lm->lower, f);
		free(f);
	}
	names_free(&files);
	lower_rmdir(&lm->lower, d);
}

void layer_qos_rmdir_cleanup(struct layer_mount *lm, const char *dir)
{
	struct qos_names top = {0};
	bool has = false, other = false;
	char *sc;

	if (!layer_qos_sidecar(lm))
		return;
	lower_list(&lm->lower, dir, qos_collect, &top);
	for (size_t i = 0; i < top.n; i++) {
		if (strcmp(top.v[i], LAYER_QOS_DIR) == 0)
			has = true;
		else if (strcmp(top.v[i], GLOCK_DIR) != 0)
			other = true;
	}
	names_free(&top);
	/* the sidecars of files still there stay with them */
	if (!has || other)
		return;
	if (!(sc = vfs_path_child(dir, LAYER_QOS_DIR)))
		return;
	clear_dir(lm, sc, true);
	free(sc);
}
