/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * namespace.c - names on the server: readlink, mknod, mkdir, symlink,
 * link, unlink, rmdir, rename (posix-rename, or replace-by-moving-aside,
 * see sftp.c's head), the owner and mode of what we create, and clone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/sftp/internal.h"
#include "lib/log.h"

ssize_t sftp_readlink(struct vfs_mount *m, const char *path, char *buf,
		      size_t size)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	char target[PATH_MAX + 1], *rpath;
	int rc, tries = 0;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	do {
		rc = sftp_checkout(sm, -1, 0, c);
		if (rc)
			break;
		rc = (int)sftp_r_readlink(c, rpath, target, sizeof(target));
		if (rc < 0)
			/* OpenSSH answers FAILURE for what is no link:
			 * EINVAL, as readlink(2) says */
			rc = sftp_explain(c, rpath, rc, -EINVAL, 0, 0);
	} while (sftp_checkin_retry(sm, c, rc < 0 ? rc : 0, &tries));
	free(rpath);
	if (rc < 0)
		return rc;
	memcpy(buf, target, (size_t)rc < size ? (size_t)rc : size);
	return rc;
}

/*
 * Does the object we just created (attributes *st) have to be given to
 * the caller?  SFTP creates everything as the login user.  When that is
 * root on the server (the new object is owned by uid 0) it can give the
 * object away, and does, as a local file system makes new objects the
 * caller's: owner the caller, group the caller's or, under a setgid
 * directory, the directory's (which the server's own kernel already
 * chose).  Any other login cannot chown, so its objects stay its own (as
 * with sshfs; vfsd(8) says so).  Returns 1 with the group in *gid, 0, or
 * -errno when the parent could not be read.
 */
static int sftp_owner_due(struct sftp_mount *sm, struct sftp_conn *c,
			  const char *rpath, const char *path,
			  const struct stat *st, const struct vfs_cred *cred,
			  gid_t *gid)
{
	char *ppath, *prpath;
	struct stat dir;
	int rc;

	if (!cred || st->st_uid != 0 ||
	    (cred->uid == st->st_uid && cred->gid == st->st_gid))
		return 0;
	*gid = cred->gid;
	if (cred->gid != st->st_gid) {
		ppath = vfs_path_parent(path);
		prpath = vfs_path_parent(rpath);
		rc = ppath && prpath ? 0 : -ENOMEM;
		if (!rc && !remote_cache_get_attr(sm->cache, ppath, &dir))
			rc = sftp_lstat_conn(c, prpath, ppath, &dir);
		free(ppath);
		free(prpath);
		if (rc)
			return rc;
		if (dir.st_mode & S_ISGID)
			*gid = st->st_gid;
	}
	return cred->uid != st->st_uid || *gid != st->st_gid;
}

/*
 * Finish an object we just created (attributes in *st, updated): the
 * caller's owner (sftp_owner_due), then the mode asked for, which the
 * server's umask may have narrowed (the router applied the caller's
 * already).  Through handle h, else by path.  0, or the chown's error:
 * the caller then removes the object, so that nobody sees an object the
 * caller was told does not exist, or one with the wrong owner.  A failed
 * chmod leaves the mode the server chose (reported in *st).
 */
int sftp_finish_new(struct sftp_mount *sm, struct sftp_conn *c,
		    const struct sftp_handle *h, const char *rpath,
		    const char *path, mode_t mode, const struct vfs_cred *cred,
		    struct stat *st)
{
	struct sftp_attrs a = {0};
	bool link = S_ISLNK(st->st_mode);
	mode_t want = mode & 07777;
	gid_t gid;
	int rc;

	if (S_ISDIR(st->st_mode))
		/* mkdir(2) takes set-group-ID from a setgid parent, which
		 * the server did, never from the mode */
		want = (mode & 01777) | (st->st_mode & S_ISGID);
	rc = sftp_owner_due(sm, c, rpath, path, st, cred, &gid);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		a.flags = SFTP_ATTR_UIDGID;
		a.uid = cred->uid;
		a.gid = gid;
		rc = h ? sftp_r_fsetstat(c, h, &a)
		       : sftp_r_setstat(c, rpath, link, &a);
		if (rc) {
			log_warn_ratelimited(
				&sm->rl,
				"%s: cannot give new %s to uid %u gid %u: %s",
				sm->cfg.display, path, (unsigned)cred->uid,
				(unsigned)gid, strerror(-rc));
			return rc;
		}
		st->st_uid = cred->uid;
		st->st_gid = gid;
		/* chown(2) clears set-user-ID and set-group-ID of anything
		 * but a directory: set them again below */
		if (!S_ISDIR(st->st_mode))
			st->st_mode &= ~(mode_t)(S_ISUID | S_ISGID);
	}
	if (!link && (st->st_mode & 07777) != want) {
		a.flags = SFTP_ATTR_PERMISSIONS;
		a.perm = want;
		rc = h ? sftp_r_fsetstat(c, h, &a)
		       : sftp_r_setstat(c, rpath, false, &a);
		if (rc == 0)
			st->st_mode = (st->st_mode & S_IFMT) | want;
	}
	return 0;
}

int sftp_mkdir(struct vfs_mount *m, const char *path, mode_t mode,
	       const struct vfs_cred *cred, struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	char *rpath;
	uint64_t gen;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	gen = remote_cache_gen(sm->cache); /* see sftp_create() */
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto out;
	{
		struct sftp_attrs a = {.flags = SFTP_ATTR_PERMISSIONS,
				       .perm = mode & 07777};

		rc = sftp_r_mkdir(c, rpath, &a);
	}
	if (rc)
		rc = sftp_explain_rofs(
			sm, c, rpath,
			sftp_explain(c, rpath, rc, -EEXIST, 0, 0));
	if (!rc) {
		/* by path: SFTP has no handle of a directory that SETSTAT
		 * could use */
		rc = sftp_lstat_conn(c, rpath, path, st);
		if (!rc)
			rc = sftp_finish_new(sm, c, NULL, rpath, path, mode,
					     cred, st);
		if (rc && !c->broken)
			sftp_r_rmdir(c, rpath);
	}
	sftp_checkin(sm, c);
	if (rc)
		remote_cache_invalidate_name(sm->cache, path);
	else
		remote_cache_invalidate_put(sm->cache, path, true, st, gen);
out:
	free(rpath);
	return rc;
}

int sftp_symlink(struct vfs_mount *m, const char *target, const char *path,
		 const struct vfs_cred *cred, struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	char *rpath;
	uint64_t gen;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	gen = remote_cache_gen(sm->cache); /* see sftp_create() */
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto out;
	rc = sftp_r_symlink(c, target, rpath);
	if (rc)
		rc = sftp_explain_rofs(
			sm, c, rpath,
			sftp_explain(c, rpath, rc, -EEXIST, 0, 0));
	if (rc)
		goto out_checkin;
	rc = sftp_lstat_conn(c, rpath, path, st);
	if (rc == 0 && !S_ISLNK(st->st_mode))
		rc = -EEXIST; /* someone else made something else there */
	/* the caller's, where the login can give it away: with
	 * lsetstat@openssh.com the link itself, never its target */
	if (rc == 0 && sm->feat.lsetstat) {
		rc = sftp_finish_new(sm, c, NULL, rpath, path, 0777, cred, st);
		if (rc && !c->broken)
			sftp_r_remove(c, rpath);
	}
out_checkin:
	sftp_checkin(sm, c);
	if (rc)
		remote_cache_invalidate_name(sm->cache, path);
	else
		remote_cache_invalidate_put(sm->cache, path, true, st, gen);
out:
	free(rpath);
	return rc;
}

/* A hard link (hardlink@openssh.com: link(2) on the server). */
int sftp_link(struct vfs_mount *m, const char *from, const char *to,
	      struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	char *rfrom, *rto = NULL;
	uint64_t gen;
	int rc;

	if (!sm->feat.hardlink)
		return -EPERM;
	rc = sftp_rpath(sm, from, &rfrom);
	if (!rc)
		rc = sftp_rpath(sm, to, &rto);
	if (rc)
		goto out;
	gen = remote_cache_gen(sm->cache); /* see sftp_create() */
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto out;
	rc = sftp_r_link(c, rfrom, rto);
	if (rc)
		/* FAILURE: EEXIST if the new name is taken, EPERM for a
		 * directory (link(2) on Linux) */
		rc = sftp_explain_rofs(sm, c, rto,
				       sftp_explain(c, rto, rc, -EEXIST, 0, 0));
	if (rc == -EIO && !c->broken) {
		struct stat sf;

		if (sftp_lstat_conn(c, rfrom, from, &sf) == 0 &&
		    S_ISDIR(sf.st_mode))
			rc = -EPERM;
	}
	if (!rc) {
		struct stat sf;

		/* one inode number for both names from now on (links.c) */
		if (sftp_lstat_conn(c, rfrom, from, &sf) == 0)
			sftp_links_linked(sm->links, from, to, sf.st_ino);
		rc = sftp_lstat_conn(c, rto, to, st);
	}
	sftp_checkin(sm, c);
	/* the object's ctime and link count changed under both names */
	remote_cache_invalidate(sm->cache, from);
	if (rc)
		remote_cache_invalidate_name(sm->cache, to);
	else
		remote_cache_invalidate_put(sm->cache, to, true, st, gen);
out:
	free(rfrom);
	free(rto);
	return rc;
}

int sftp_unlink(struct vfs_mount *m, const char *path)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	char *rpath;
	uint64_t gen;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	gen = remote_cache_gen(sm->cache); /* see remote_cache_gone() */
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto out;
	rc = sftp_r_remove(c, rpath);
	if (rc)
		rc = sftp_explain_rofs(
			sm, c, rpath,
			sftp_explain(c, rpath, rc, 0, -EISDIR, 0));
	sftp_checkin(sm, c);
	if (!rc) {
		sftp_files_moved(sm, path);
		sftp_links_gone(sm->links, path);
		remote_cache_gone(sm->cache, path, gen);
	} else {
		remote_cache_invalidate_name(sm->cache, path);
	}
out:
	free(rpath);
	return rc;
}

int sftp_rmdir(struct vfs_mount *m, const char *path)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_conn cc, *c = &cc;
	char *rpath;
	uint64_t gen;
	int rc;

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	gen = remote_cache_gen(sm->cache);
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto out;
	rc = sftp_r_rmdir(c, rpath);
	if (rc)
		/* read-only first: the directory is still there then, which
		 * would make it look non-empty */
		rc = sftp_explain(c, rpath, sftp_explain_rofs(sm, c, rpath, rc),
				  0, -ENOTEMPTY, -ENOTDIR);
	sftp_checkin(sm, c);
	if (rc)
		remote_cache_invalidate_name(sm->cache, path);
	else
		remote_cache_gone(sm->cache, path, gen);
	remote_cache_invalidate_dir(sm->cache, path);
out:
	free(rpath);
	return rc;
}

static int sftp_rename_raw(struct sftp_conn *c, const char *from,
			   const char *to)
{
	return sftp_r_rename(c, from, to, false);
}

/*
 * Replace `to` by `from` without ever losing `to`'s content: move the
 * target aside under a hidden name in its directory, move the source in,
 * then delete the hidden copy; each failure undoes the steps before it.
 * Not atomic: for a moment `to` does not exist.
 */
static int sftp_rename_replace(struct sftp_mount *sm, struct sftp_conn *c,
			       const char *rfrom, const char *rto,
			       const struct stat *sfrom, const struct stat *sto)
{
	static unsigned long seq;
	const char *slash = strrchr(rto, '/');
	char *tmp;
	int rc, undo;

	if (S_ISDIR(sto->st_mode) && !S_ISDIR(sfrom->st_mode))
		return -EISDIR;
	if (!S_ISDIR(sto->st_mode) && S_ISDIR(sfrom->st_mode))
		return -ENOTDIR;
	if (asprintf(&tmp, "%.*s/.vfsd-rename-%ld-%lu", (int)(slash - rto), rto,
		     (long)getpid(),
		     __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED)) < 0)
		return -ENOMEM;
	rc = sftp_rename_raw(c, rto, tmp);
	if (rc)
		goto out;
	rc = sftp_rename_raw(c, rfrom, rto);
	if (rc) {
		undo = sftp_rename_raw(c, tmp, rto);
		goto undo_check;
	}
	if (S_ISDIR(sto->st_mode)) {
		rc = sftp_r_rmdir(c, tmp);
		if (rc) {
			/* POSIX: only an empty directory may be replaced */
			if (rc == -EIO && !c->broken)
				rc = -ENOTEMPTY;
			undo = sftp_rename_raw(c, rto, rfrom);
			if (!undo)
				undo = sftp_rename_raw(c, tmp, rto);
			goto undo_check;
		}
	} else if (sftp_r_remove(c, tmp)) {
		/* the rename happened; only a hidden copy is left over */
		log_warn_ratelimited(&sm->rl, "%s: rename left %s behind",
				     sm->cfg.display, tmp);
	}
	goto out;
undo_check:
	if (undo)
		log_err("%s: rename failed and could not be undone: the old %s "
			"is now %s",
			sm->cfg.display, rto, tmp);
out:
	free(tmp);
	return rc;
}

int sftp_rename(struct vfs_mount *m, const char *from, const char *to,
		unsigned flags)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct stat sfrom, sto;
	struct sftp_conn cc, *c = &cc;
	char *rfrom, *rto = NULL;
	bool is_dir = false;
	int rc;

	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE cannot be done over SFTP */
	rc = sftp_rpath(sm, from, &rfrom);
	if (!rc)
		rc = sftp_rpath(sm, to, &rto);
	if (rc)
		goto out;
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto out;
	rc = sftp_lstat_conn(c, rfrom, from, &sfrom);
	if (rc)
		goto out_checkin;
	if (strcmp(from, to) == 0)
		goto out_checkin;
	is_dir = S_ISDIR(sfrom.st_mode);
	if (flags & RENAME_NOREPLACE) {
		/* OpenSSH's rename refuses to replace by itself; the check
		 * covers servers whose rename would (still racy there) */
		rc = sftp_lstat_conn(c, rto, to, &sto);
		if (rc != -ENOENT) {
			rc = rc ? rc : -EEXIST;
			goto out_checkin;
		}
	}
	if (!(flags & RENAME_NOREPLACE) && sm->feat.posix_rename) {
		/* rename(2) itself on the server: atomic, replaces a file
		 * or an empty directory, with POSIX's errors */
		rc = sftp_r_rename(c, rfrom, rto, true);
		if (rc)
			rc = sftp_explain(
				c, rto, rc, 0,
				S_ISDIR(sfrom.st_mode) ? -ENOTEMPTY : -EISDIR,
				S_ISDIR(sfrom.st_mode) ? -ENOTDIR : 0);
	} else {
		rc = sftp_rename_raw(c, rfrom, rto);
		if (rc && !c->broken && !(flags & RENAME_NOREPLACE) &&
		    sftp_lstat_conn(c, rto, to, &sto) == 0)
			rc = sftp_rename_replace(sm, c, rfrom, rto, &sfrom,
						 &sto);
	}
	rc = sftp_explain_rofs(sm, c, rto, rc);
out_checkin:
	sftp_checkin(sm, c);
	if (!rc && strcmp(from, to) != 0) {
		sftp_files_moved(sm, from);
		sftp_files_moved(sm, to); /* what it replaced */
		sftp_links_moved(sm->links, from, to);
	}
	remote_cache_invalidate_name(sm->cache, from);
	remote_cache_invalidate_name(sm->cache, to);
	if (is_dir)
		/* every cached path below `from` is now wrong, also after
		 * a failure that may have come after the server renamed */
		remote_cache_clear(sm->cache);
out:
	free(rfrom);
	free(rto);
	return rc;
}

int sftp_clone(struct vfs_mount *m, const char *from, const char *to,
	       struct vfs_error *err)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	char *rfrom, *rto = NULL;
	int rc;

	if (!sm->cfg.remote_exec)
		return -EOPNOTSUPP;
	remote_wb_drain_path(sm->wb, from);
	rc = sftp_rpath(sm, from, &rfrom);
	if (!rc)
		rc = sftp_rpath(sm, to, &rto);
	if (!rc) {
		remote_cache_invalidate_name(sm->cache, to);
		rc = sftp_exec_clone(sm, rfrom, rto, err);
	} else
		vfs_error_set(err, -rc, "%s: %s", sm->cfg.display,
			      strerror(-rc));
	/* (the copy made `to` on the server before it began: the name was
	 * forgotten then too) */
	remote_cache_invalidate_name(sm->cache, to);
	free(rfrom);
	free(rto);
	return rc;
}

/* Only regular files can be made over SFTP (as an empty exclusive open). */
int sftp_mknod(struct vfs_mount *m, const char *path, mode_t mode, dev_t rdev,
	       const struct vfs_cred *cred, struct stat *st)
{
	struct vfs_file *f;
	int rc;

	if (!S_ISREG(mode))
		return -EOPNOTSUPP;
	rc = sftp_create(m, path, O_WRONLY | O_CREAT | O_EXCL, mode, cred, &f,
			 st);
	if (rc)
		return rc;
	return sftp_release(f);
}
