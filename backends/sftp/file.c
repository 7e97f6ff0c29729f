/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * file.c - open files: create and open, the handle's connection (reopened
 * by path after a reconnect), the mount's list of open files, flush,
 * fsync and release.  Reads and writes are in io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sftp/internal.h"
#include "lib/log.h"

static uint32_t sftp_fxf(int flags)
{
	uint32_t fxf = 0;

	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		fxf = SFTP_FXF_READ;
		break;
	case O_WRONLY:
		fxf = SFTP_FXF_WRITE;
		break;
	default:
		fxf = SFTP_FXF_READ | SFTP_FXF_WRITE;
		break;
	}
	if (flags & O_APPEND)
		fxf |= SFTP_FXF_APPEND;
	return fxf;
}

/* A new handle for path in *out: 0 or -errno (sftp_rpath). */
static int sftp_file_new(struct sftp_mount *sm, const char *path, int flags,
			 struct sftp_file **out)
{
	struct sftp_file *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return -ENOMEM;
	rc = sftp_rpath(sm, path, &f->rpath);
	f->path = strdup(path);
	f->xh = calloc((size_t)sm->pool.n, sizeof(*f->xh));
	if (!rc && (!f->path || !f->xh))
		rc = -ENOMEM;
	if (rc) {
		free(f->xh);
		free(f->path);
		free(f->rpath);
		free(f);
		return rc;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->xlock, NULL);
	f->base.mount = &sm->base;
	f->base.flags = flags & ~(O_CREAT | O_EXCL | O_TRUNC);
	f->base.host_fd = -1;
	/* a reopen after reconnecting must not create or truncate again */
	f->fxf = sftp_fxf(flags);
	f->idx = -1;
	pthread_mutex_lock(&sm->files_lock);
	f->next = sm->files;
	if (f->next)
		f->next->pprev = &f->next;
	f->pprev = &sm->files;
	sm->files = f;
	pthread_mutex_unlock(&sm->files_lock);
	*out = f;
	return 0;
}

/* Files open at `path` or below it no longer have it for a name. */
void sftp_files_moved(struct sftp_mount *sm, const char *path)
{
	size_t len = strlen(path);

	pthread_mutex_lock(&sm->files_lock);
	for (struct sftp_file *f = sm->files; f; f = f->next)
		if (strncmp(f->path, path, len) == 0 &&
		    (f->path[len] == '\0' || f->path[len] == '/'))
			__atomic_store_n(&f->moved, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sm->files_lock);
}

static void sftp_file_free(struct sftp_file *f)
{
	struct sftp_mount *sm = sftp_mount_of(f->base.mount);

	pthread_mutex_lock(&sm->files_lock);
	*f->pprev = f->next;
	if (f->next)
		f->next->pprev = f->pprev;
	pthread_mutex_unlock(&sm->files_lock);
	if (f->ra) {
		free(f->ra);
		__atomic_sub_fetch(&sftp_mount_of(f->base.mount)->ra_buffers, 1,
				   __ATOMIC_RELAXED);
	}
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->xlock);
	free(f->xh);
	free(f->path);
	free(f->rpath);
	free(f);
}

static void sftp_file_attach(struct sftp_mount *sm, struct sftp_file *f,
			     struct sftp_conn *c, const struct sftp_handle *h)
{
	f->h = *h;
	f->idx = c->idx;
	f->gen = c->gen;
	sftp_pool_count_file(sm, c->idx, +1);
}

int sftp_create(struct vfs_mount *m, const char *path, int flags, mode_t mode,
		const struct vfs_cred *cred, struct vfs_file **out,
		struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	struct sftp_attrs a;
	struct sftp_attrs na = {.flags = SFTP_ATTR_PERMISSIONS,
				.perm = mode & 07777};
	struct sftp_handle h;
	struct sftp_file *f;
	bool created = true;
	uint64_t gen;
	int rc, arc;

	rc = sftp_file_new(sm, path, flags, &f);
	if (rc)
		return rc;
	/* before the requests: an invalidation by another call between the
	 * answer and the put below then still counts */
	gen = remote_cache_gen(sm->cache);
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto err_free;
	/* Always exclusive first, so that we know whether we created the
	 * file and may fix its mode; fall back for plain O_CREAT. */
	/* the open and an lstat in one round trip */
	rc = sftp_r_open_lstat(c, f->rpath,
			       f->fxf | SFTP_FXF_CREAT | SFTP_FXF_EXCL |
				       SFTP_FXF_TRUNC,
			       &na, &h, &a, &arc);
	if (rc) {
		rc = sftp_explain_rofs(sm, c, f->rpath,
				       sftp_explain(c, f->rpath, rc, -EEXIST,
						    -EISDIR, -EEXIST));
		if (rc == -EEXIST && !(flags & O_EXCL)) {
			created = false;
			rc = sftp_r_open(
				c, f->rpath,
				f->fxf | SFTP_FXF_CREAT |
					(flags & O_TRUNC ? SFTP_FXF_TRUNC : 0),
				&na, &h);
			if (rc)
				rc = sftp_explain(c, f->rpath, rc, 0, -EISDIR,
						  0);
			else
				arc = sftp_r_fstat(c, &h, &a);
		}
		if (rc)
			goto err_checkin;
	}
	rc = arc;
	if (!rc) {
		sftp_attr_to_stat(sm, &a, path, st);
		if (created)
			rc = sftp_finish_new(sm, c, &h, f->rpath, path, mode,
					     cred, st);
	}
	if (rc) {
		if (!c->broken)
			sftp_r_close_async(c, &h);
		if (created && !c->broken)
			sftp_r_remove(c, f->rpath);
		goto err_checkin;
	}
	sftp_file_attach(sm, f, c, &h);
	sftp_checkin(sm, c);
	remote_cache_invalidate_put(sm->cache, path, true, st, gen);
	*out = &f->base;
	return 0;

err_checkin:
	sftp_checkin(sm, c);
	remote_cache_invalidate_name(sm->cache, path);
err_free:
	sftp_file_free(f);
	return rc;
}

int sftp_open(struct vfs_mount *m, const char *path, int flags,
	      struct vfs_file **out)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	struct sftp_handle h;
	struct sftp_file *f;
	int rc, tries = 0;

	rc = sftp_file_new(sm, path, flags, &f);
	if (rc)
		return rc;
	/* close-to-open: whatever we remember of this file may be old */
	remote_cache_invalidate(sm->cache, path);
	do {
		rc = sftp_checkout(sm, -1, 0, c);
		if (rc)
			break;
		rc = sftp_r_open(c, f->rpath,
				 f->fxf |
					 (flags & O_TRUNC ? SFTP_FXF_TRUNC : 0),
				 NULL, &h);
		if (rc == 0) {
			sftp_file_attach(sm, f, c, &h);
		} else {
			rc = sftp_explain(c, f->rpath, rc, 0, -EISDIR, 0);
			if ((flags & (O_ACCMODE | O_TRUNC)) != O_RDONLY)
				rc = sftp_explain_rofs(sm, c, f->rpath, rc);
		}
		/* retrying an open that may have truncated is harmless:
		 * it truncates the same file again */
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	if (rc) {
		sftp_file_free(f);
		return rc;
	}
	*out = &f->base;
	return 0;
}

/* Check out the connection f's handle lives on, reopening it by path on
 * any connection if its session is gone.  Called with f->lock held. */
int sftp_file_begin(struct sftp_mount *sm, struct sftp_file *f,
		    struct sftp_conn *c)
{
	struct sftp_handle h;
	int rc;

	if (f->idx >= 0) {
		rc = sftp_checkout(sm, f->idx, f->gen, c);
		if (rc != -ESTALE)
			return rc;
		/* the handle died with its session */
		sftp_pool_count_file(sm, f->idx, -1);
		f->idx = -1;
		f->h.len = 0;
	}
	if (__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
		/* renamed or removed through this mount since it was
		 * opened: its old name may belong to another file now */
		return -ESTALE;
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		return rc;
	rc = sftp_r_open(c, f->rpath, f->fxf, NULL, &h);
	if (rc) {
		sftp_checkin(sm, c);
		log_warn_ratelimited(
			&sm->rl, "%s: cannot reopen %s after reconnecting: %s",
			sm->cfg.display, f->path, strerror(-rc));
		return rc == -ENOENT ? -ESTALE : rc;
	}
	f->h = h;
	f->idx = c->idx;
	f->gen = c->gen;
	sftp_pool_count_file(sm, f->idx, +1);
	log_debug("%s: reopened %s on connection %d", sm->cfg.display, f->path,
		  f->idx);
	return 0;
}

/* Close the extra handles (release). */
static void sftp_file_close_any(struct sftp_mount *sm, struct sftp_file *f)
{
	for (int i = 0; i < sm->pool.n; i++) {
		struct sftp_conn c;

		if (!f->xh[i].h.len)
			continue;
		if (sftp_checkout(sm, i, f->xh[i].gen, &c) == 0) {
			sftp_r_close_async(&c, &f->xh[i].h);
			sftp_checkin(sm, &c);
			sftp_pool_count_file(sm, i, -1);
		} else {
			/* gone with its session, or unreachable: it lives
			 * until the session ends */
			sftp_pool_count_file(sm, i, -1);
		}
		f->xh[i].h.len = 0;
	}
}

/* close(2): the queued writes go out first, and their errors surface
 * here, left in place: the file description may have other descriptors
 * (a forked child's, say), and the close of one must not take the error
 * from the owner's fsync or close (the kernel's errseq rule: flush
 * reports, fsync consumes). */
int sftp_flush(struct vfs_file *vf)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct remote_wb *wb = sftp_mount_of(vf->mount)->wb;

	remote_wb_drain(wb, &f->wbf);
	return remote_wb_err(wb, &f->wbf);
}

int sftp_fsync(struct vfs_file *vf, bool datasync)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	struct sftp_conn cc, *c = &cc;
	int rc;

	remote_wb_drain(sm->wb, &f->wbf);
	pthread_mutex_lock(&f->lock);
	rc = remote_wb_take_err(sm->wb, &f->wbf);
	if (rc)
		goto out;
	if (!sm->feat.fsync) {
		rc = -EOPNOTSUPP;
		goto out;
	}
	rc = sftp_file_begin(sm, f, c);
	if (rc)
		goto out;
	rc = sftp_r_fsync(c, &f->h);
	sftp_checkin(sm, c);
out:
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int sftp_release(struct vfs_file *vf)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	struct sftp_conn cc, *c = &cc;
	int rc = 0;

	remote_wb_drain(sm->wb, &f->wbf);
	sftp_file_close_any(sm, f);
	pthread_mutex_lock(&f->lock);
	if (f->idx >= 0) {
		rc = sftp_checkout(sm, f->idx, f->gen, c);
		if (rc == 0) {
			rc = sftp_r_close_async(c, &f->h);
			sftp_checkin(sm, c);
		} else if (rc == -ESTALE) {
			/* the handle went with its session */
			rc = 0;
		}
		/* on other errors the server-side handle lives until its
		 * session ends */
		sftp_pool_count_file(sm, f->idx, -1);
	}
	if (!rc)
		rc = remote_wb_err(sm->wb, &f->wbf);
	pthread_mutex_unlock(&f->lock);
	remote_cache_invalidate(sm->cache, f->path);
	sftp_file_free(f);
	return rc;
}
