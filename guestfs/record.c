/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * record.c - one lease record on the server (see lock.h for where records
 * live and how they are named): its directory, its text, the requests that
 * write, read and remove it, the server's clock, and the record directories
 * in the user's tree (hidden on shared mounts, cleared by rmdir).  What a
 * record means and when one is written is lease.c's business.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guestfs/lock.h"
#include "guestfs/lock_internal.h"
#include "lib/log.h"
#include "lib/path.h"
#include "lib/clock.h"

char *record_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *out;

	if (!slash || !slash[1])
		return NULL;
	if (asprintf(&out, "%.*s/%s/%s", (int)(slash - path), path, GLOCK_DIR,
		     slash + 1) < 0)
		return NULL;
	return out;
}

char *record_join(const char *dir, const char *name)
{
	char *out;

	return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

static int ensure_dirs(const struct gfs_lower *l, const char *rdir)
{
	char *parent = vfs_path_parent(rdir);
	int ret;

	if (!parent)
		return -ENOMEM;
	ret = lower_mkdir(l, parent, 0755);
	free(parent);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	ret = lower_mkdir(l, rdir, 0755);
	return ret == -EEXIST ? 0 : ret;
}

static bool same_range(const struct glock *a, const struct glock *b)
{
	return a->owner == b->owner && a->kind == b->kind &&
	       a->start == b->start && a->end == b->end;
}

/* The text of a record holding `v`; the one lock `pending` (or none) is
 * marked as still being acquired.  Caller frees. */
char *record_text(const struct glock *v, size_t n, const struct glock *pending)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "vfsd-lease 2\nhost %s\ntoken %s\n", glock_g.host,
		glock_g.token);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%c %c %lld %lld%s\n",
			v[i].kind == GLOCK_POSIX ? 'P' : 'F',
			v[i].type == F_WRLCK ? 'W' : 'R', (long long)v[i].start,
			(long long)v[i].end,
			pending && same_range(&v[i], pending) ? " pending"
							      : "");
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * Write a record under a new name, never used before: a temporary file
 * first, renamed into place once complete, so that a reader sees a whole
 * record or none (replacing a name in place is not atomic over SFTP).
 * *sent_ns gets the monotonic time before the first request (what the
 * lease is measured from), *mtime the server's time of the write,
 * *name_out the record's name (caller frees).
 */
int record_put(const struct gfs_lower *l, const char *rdir, uint64_t fid,
	       const char *text, char **name_out, struct timespec *mtime,
	       int64_t *sent_ns)
{
	char *tmp = NULL, *final = NULL, *name = NULL;
	struct vfs_file *f = NULL;
	size_t len = strlen(text);
	struct stat st;
	ssize_t n;
	int ret;

	if (asprintf(&name, "%s.%s.%" PRIu64 ".%" PRIu64 ".lease",
		     glock_g.host_esc, glock_g.token, fid,
		     __atomic_add_fetch(&glock_g.seq, 1, __ATOMIC_RELAXED)) < 0)
		return -ENOMEM;
	tmp = record_join(rdir, name);
	final = record_join(rdir, name);
	if (!tmp || !final) {
		ret = -ENOMEM;
		goto out;
	}
	/* same length: ".lease" -> ".tmp~~" */
	memcpy(tmp + strlen(tmp) - 5, "tmp~~", 5);
	*sent_ns = vfs_mono_ns();
	ret = lower_create(l, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644, &f);
	for (int tries = 0; record_gone(ret) && tries < 4; tries++) {
		/* the last holder just removed the empty directory, maybe
		 * again between our mkdir and create (a release on another
		 * host while we acquire: a migration's hand-over) */
		ret = ensure_dirs(l, rdir);
		if (ret == 0)
			ret = lower_create(l, tmp, O_WRONLY | O_CREAT | O_EXCL,
					   0644, &f);
	}
	if (ret < 0)
		goto out;
	/* nothing of a record may wait in a write-behind queue */
	atomic_store(&f->write_through, true);
	n = lower_write(l, f, text, len, 0);
	ret = n < 0 ? (int)n : (size_t)n != len ? -EIO : 0;
	if (ret == 0)
		ret = lower_flush(l, f);
	if (ret == 0) {
		/* a record the server loses in a crash would let another
		 * host in while we still write */
		ret = lower_fsync(l, f);
		if (ret == -EOPNOTSUPP || ret == -ENOSYS || ret == -EINVAL)
			ret = 0;
	}
	if (ret == 0)
		ret = lower_fgetattr(l, f, &st);
	lower_release(l, f);
	if (ret == 0) {
		*mtime = st.st_mtim;
		ret = lower_rename(l, tmp, final);
	}
	if (ret < 0)
		lower_unlink(l, tmp);
out:
	free(tmp);
	free(final);
	if (ret == 0)
		*name_out = name;
	else
		free(name);
	return ret;
}

void record_drop(const struct gfs_lower *l, const char *rdir, const char *name)
{
	char *path = record_join(rdir, name);
	int ret = path ? lower_unlink(l, path) : -ENOMEM;

	if (ret < 0 && ret != -ENOENT)
		log_warn("cannot remove lock lease %s/%s: %s (it expires by "
			 "itself)",
			 rdir, name, strerror(-ret));
	free(path);
}

/*
 * Read a whole record and its server-side mtime through one open file:
 * an open file's attributes come from the server.  NULL with *err set on
 * failure; *mtime is still filled when the record could be dated (*err
 * is then not -ENOENT).  *toolong: more than RECORD_MAX bytes.
 */
char *record_read(const struct gfs_lower *l, const char *path,
		  struct timespec *mtime, int *err, bool *toolong)
{
	struct vfs_file *f;
	char *buf = malloc(RECORD_MAX + 2);
	struct stat st;
	ssize_t n;
	int ret;

	*err = 0;
	*toolong = false;
	mtime->tv_sec = 0;
	mtime->tv_nsec = 0;
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	/* O_NONBLOCK: a FIFO put there since the listing must not block */
	ret = lower_open(l, path, O_RDONLY | O_NONBLOCK, &f);
	if (ret < 0) {
		/* unopenable (a directory, no permission): its age may
		 * still tell whether it is stale */
		if (!record_gone(ret) && lower_getattr(l, path, &st) == 0)
			*mtime = st.st_mtim;
		free(buf);
		*err = record_gone(ret) ? -ENOENT : ret;
		return NULL;
	}
	ret = lower_fgetattr(l, f, &st);
	if (ret == 0)
		*mtime = st.st_mtim;
	n = ret < 0 ? ret : lower_read(l, f, buf, RECORD_MAX + 1, 0);
	lower_release(l, f);
	if (n < 0) {
		free(buf);
		/* replaced or removed since it was opened: not a record
		 * that could not be read, but no record at all */
		if (record_gone((int)n)) {
			mtime->tv_sec = mtime->tv_nsec = 0;
			n = -ENOENT;
		}
		*err = (int)n;
		return NULL;
	}
	if (n > RECORD_MAX) {
		free(buf);
		*toolong = true;
		*err = -EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * Parse another instance's record, appending its locks to *out.  -EBADMSG
 * when it is not a complete record of ours: the caller then takes it as a
 * write lock of the whole file, as for any record it cannot understand.
 */
int record_parse(char *text, struct glock **out, size_t *n, size_t *cap,
		 char *host, size_t hsize, char *token, size_t tsize)
{
	char *save = NULL;
	size_t first = *n;
	bool header = false;
	int ret = 0;

	host[0] = token[0] = '\0';
	for (char *line = strtok_r(text, "\n", &save); line && ret == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char kind, type, extra[16];
		long long s, e;
		int k;

		if (!header) {
			if (strcmp(line, "vfsd-lease 2") != 0)
				ret = -EBADMSG;
			header = true;
		} else if (strncmp(line, "host ", 5) == 0) {
			snprintf(host, hsize, "%s", line + 5);
		} else if (strncmp(line, "token ", 6) == 0) {
			snprintf(token, tsize, "%s", line + 6);
		} else if ((k = sscanf(line, "%c %c %lld %lld %15s", &kind,
				       &type, &s, &e, extra)) >= 4 &&
			   (kind == 'P' || kind == 'F') &&
			   (type == 'R' || type == 'W') && s >= 0 && e >= s &&
			   (k == 4 || strcmp(extra, "pending") == 0) &&
			   *n - first < LOCKS_MAX) {
			struct glock lk = {
				.kind = kind == 'P' ? GLOCK_POSIX : GLOCK_FLOCK,
				.type = type == 'W' ? F_WRLCK : F_RDLCK,
				.start = s,
				.end = e,
				.pending = k == 5,
			};

			ret = glock_push(out, n, cap, &lk);
		} else {
			ret = -EBADMSG;
		}
	}
	if (ret == 0 && (!header || !host[0] || !token[0]))
		ret = -EBADMSG;
	if (ret < 0) {
		*n = first;
		return ret;
	}
	for (size_t i = first; i < *n; i++) {
		snprintf((*out)[i].host, sizeof((*out)[i].host), "%s", host);
		snprintf((*out)[i].token, sizeof((*out)[i].token), "%s", token);
	}
	return 0;
}

/*
 * The server's clock now, for judging records when we write none: the
 * mtime of a temporary file created (and removed) for the purpose.
 * -ENOENT when the record directory does not exist.
 */
int record_server_now(const struct gfs_lower *l, const char *rdir,
		      struct timespec *now)
{
	struct vfs_file *f;
	struct stat st;
	char *path;
	int ret;

	if (asprintf(&path, "%s/%s.%s.0.%" PRIu64 ".tmp~~", rdir,
		     glock_g.host_esc, glock_g.token,
		     __atomic_add_fetch(&glock_g.seq, 1, __ATOMIC_RELAXED)) < 0)
		return -ENOMEM;
	ret = lower_create(l, path, O_WRONLY | O_CREAT | O_EXCL, 0600, &f);
	if (ret == 0) {
		ret = lower_fgetattr(l, f, &st);
		lower_release(l, f);
		lower_unlink(l, path);
		if (ret == 0)
			*now = st.st_mtim;
	}
	free(path);
	return ret;
}

/* ---- the record directories in the user's tree ------------------------- */

bool glock_reserved(const char *path)
{
	/* any component: the kernel looks each one up, but the layer's
	 * callers include the daemon's own (vfsctl image, clone) */
	return vfs_path_has_component(path, GLOCK_DIR);
}

struct dir_names {
	char **v;
	size_t n;
};

static int collect_any(void *ctx, const char *name, const struct stat *st,
		       unsigned flags, off_t next)
{
	struct dir_names *dn = ctx;
	char **grown;

	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	grown = realloc(dn->v, (dn->n + 1) * sizeof(*grown));
	if (!grown)
		return 1;
	dn->v = grown;
	dn->v[dn->n] = strdup(name);
	if (dn->v[dn->n])
		dn->n++;
	return 0;
}

static void list_names(const struct gfs_lower *l, const char *dir,
		       struct dir_names *dn)
{
	lower_list(l, dir, collect_any, dn);
}

int glock_rmdir_cleanup(const struct gfs_lower *l, const char *dir)
{
	struct dir_names files = {0}, top = {0};
	char *locks;
	bool only_locks;

	/* elsewhere a GLOCK_DIR is a user's, not records to clear away */
	if (!l->shared)
		return -ENOTEMPTY;
	list_names(l, dir, &top);
	only_locks = top.n == 1 && strcmp(top.v[0], GLOCK_DIR) == 0;
	for (size_t i = 0; i < top.n; i++)
		free(top.v[i]);
	free(top.v);
	top = (struct dir_names){0};
	if (!only_locks)
		return -ENOTEMPTY;
	/* every file the records speak of is gone with the directory's
	 * entries, so every record here is moot */
	if (!(locks = vfs_path_child(dir, GLOCK_DIR)))
		return -ENOMEM;
	list_names(l, locks, &top);
	for (size_t i = 0; i < top.n; i++) {
		char *sub = record_join(locks, top.v[i]);

		if (sub) {
			list_names(l, sub, &files);
			for (size_t j = 0; j < files.n; j++) {
				char *f = record_join(sub, files.v[j]);

				if (f)
					lower_unlink(l, f);
				free(f);
				free(files.v[j]);
			}
			free(files.v);
			files = (struct dir_names){0};
			lower_rmdir(l, sub);
		}
		free(sub);
		free(top.v[i]);
	}
	free(top.v);
	lower_rmdir(l, locks);
	free(locks);
	return 0;
}
