/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * attr.c - attributes over SFTP v3: its ATTRS as struct stat, lstat
 * through the cache, getattr, setattr and fgetattr.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/callctx.h"
#include "backends/sftp/internal.h"
#include "lib/hash.h"

#define SFTP_BLKSIZE (128 * 1024)

/* the short basis keeps the inode numbers of earlier versions (hash.h) */
static ino_t sftp_ino(const char *path)
{
	return (ino_t)(vfs_hash_str_from(VFS_HASH_FNV_BASIS_SHORT, path) | 1);
}

bool sftp_attr_full(const struct sftp_attrs *a)
{
	const uint32_t all = SFTP_ATTR_SIZE | SFTP_ATTR_UIDGID |
			     SFTP_ATTR_PERMISSIONS | SFTP_ATTR_ACMODTIME;

	return (a->flags & all) == all;
}

void sftp_attr_to_stat(struct sftp_mount *sm, const struct sftp_attrs *a,
		       const char *path, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	if (!sm || !sftp_links_get(sm->links, path, &st->st_ino, &st->st_nlink,
				   NULL)) {
		st->st_ino = sftp_ino(path);
		st->st_nlink = 1;
	}
	st->st_blksize = SFTP_BLKSIZE;
	if (a->flags & SFTP_ATTR_PERMISSIONS)
		st->st_mode = (mode_t)a->perm;
	if (!(st->st_mode & S_IFMT))
		st->st_mode |= S_IFREG;
	if (a->flags & SFTP_ATTR_SIZE) {
		st->st_size = (off_t)a->size;
		st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	}
	if (a->flags & SFTP_ATTR_UIDGID) {
		st->st_uid = (uid_t)a->uid;
		st->st_gid = (gid_t)a->gid;
	}
	if (a->flags & SFTP_ATTR_ACMODTIME) {
		st->st_atim.tv_sec = (time_t)a->atime;
		st->st_mtim.tv_sec = (time_t)a->mtime;
		/* v3 has no ctime: mtime is the closest honest value */
		st->st_ctim.tv_sec = (time_t)a->mtime;
	}
}

/* Do a and b (of two names) show one file?  Hard links show the same
 * attributes at all times. */
static bool sftp_attr_same(const struct sftp_attrs *a,
			   const struct sftp_attrs *b)
{
	return a->flags == b->flags && a->size == b->size && a->uid == b->uid &&
	       a->gid == b->gid && a->perm == b->perm && a->mtime == b->mtime;
}

/*
 * path, one of a hard-link group (links.c) with attributes a, and `other`
 * of its group (lstat result orc, attributes oa): still one file if other
 * shows the same attributes; else the name that changed leaves the group
 * (someone replaced one of them behind the mount's back).
 */
static void sftp_links_verdict(struct sftp_mount *sm, const char *path,
			       const struct sftp_attrs *a, const char *other,
			       int orc, const struct sftp_attrs *oa)
{
	if (orc == -ENOENT || (orc == 0 && !sftp_attr_same(a, oa))) {
		sftp_links_gone(sm->links, orc == -ENOENT ? other : path);
		remote_cache_invalidate(sm->cache, other);
	}
}

/* lstat over an already checked-out connection. */
int sftp_lstat_conn(struct sftp_conn *c, const char *rpath, const char *path,
		    struct stat *st)
{
	struct sftp_mount *sm = c->sm;
	struct sftp_attrs a, oa;
	char *other = NULL, *rother = NULL;
	nlink_t nlink;
	ino_t ino;
	int rc, orc = -EIO;

	/* a name of a hard-link group is checked against another of its
	 * names, both lstat'ed in one round trip */
	if (sftp_links_get(sm->links, path, &ino, &nlink, &other) && other &&
	    sftp_rpath(sm, other, &rother) == 0)
		rc = sftp_r_lstat_pair(c, rpath, rother, &a, &oa, &orc);
	else
		rc = sftp_r_stat(c, rpath, false, &a);
	if (rc == 0 && rother)
		sftp_links_verdict(sm, path, &a, other, orc, &oa);
	free(other);
	free(rother);
	if (rc)
		return rc;
	sftp_attr_to_stat(sm, &a, path, st);
	return 0;
}

/* lstat through the cache; `fresh` skips the cache (and refills it). */
static int sftp_lstat(struct sftp_mount *sm, const char *path, bool fresh,
		      struct stat *st)
{
	struct sftp_conn cc, *c = &cc;
	uint64_t gen;
	char *rpath;
	int rc, tries = 0;

	if (!fresh && !vfs_callctx.fresh &&
	    remote_cache_get_attr(sm->cache, path, st))
		return 0;
	/* a name too long for the server is refused as such, never found
	 * absent */
	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	if (!fresh && !vfs_callctx.fresh &&
	    remote_cache_absent(sm->cache, path)) {
		free(rpath);
		return -ENOENT;
	}
	gen = remote_cache_gen(sm->cache);
	do {
		rc = sftp_checkout(sm, -1, 0, c);
		if (rc)
			break;
		rc = sftp_lstat_conn(c, rpath, path, st);
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	free(rpath);
	if (rc == 0)
		remote_cache_put_attr(sm->cache, path, st, gen);
	else if (rc == -ENOENT && !fresh && !vfs_callctx.fresh)
		/* names looked for and not there, several in one directory:
		 * names about to be made (tar, cp), or searched for (a PATH,
		 * an import path) */
		sftp_list_if_due(sm, path);
	return rc;
}

int sftp_getattr(struct vfs_mount *m, const char *path, struct stat *st)
{
	/* a size from before our queued writes would shrink the file in
	 * the kernel's eyes */
	remote_wb_drain_path(sftp_mount_of(m)->wb, path);
	return sftp_lstat(sftp_mount_of(m), path, false, st);
}

/*
 * SFTP v3 carries times as unsigned 32-bit seconds (1970 to 2106): the
 * low 32 bits of 2^32 would land in 1970, of -1 in 2106.  Out-of-range times
 * are clamped instead, as the kernel clamps times to what a file system can
 * store (s_time_min/max).
 */
static uint32_t sftp_time_clamp(time_t t)
{
	if (t < 0)
		return 0;
	if ((uint64_t)t > UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)t;
}

/* setattr of what `path` names (nofollow: a symlink's own), or of f's
 * handle, over connection c, from current attrs. */
static int sftp_setstat_conn(struct sftp_conn *c, struct sftp_file *f,
			     const char *rpath, bool nofollow,
			     const struct stat *cur,
			     const struct vfs_setattr *sa)
{
	struct sftp_attrs a = {0};
	time_t now = time(NULL);

	if (sa->valid & VFS_SET_MODE) {
		a.flags |= SFTP_ATTR_PERMISSIONS;
		a.perm = sa->mode & 07777;
	}
	if (sa->valid & (VFS_SET_UID | VFS_SET_GID)) {
		/* v3 sets owner and group together */
		a.flags |= SFTP_ATTR_UIDGID;
		a.uid = sa->valid & VFS_SET_UID ? sa->uid : cur->st_uid;
		a.gid = sa->valid & VFS_SET_GID ? sa->gid : cur->st_gid;
	}
	if (sa->valid & VFS_SET_SIZE) {
		a.flags |= SFTP_ATTR_SIZE;
		a.size = (uint64_t)sa->size;
	}
	if (sa->valid & (VFS_SET_ATIME | VFS_SET_MTIME | VFS_SET_ATIME_NOW |
			 VFS_SET_MTIME_NOW)) {
		/* ... and both times, in whole seconds */
		a.flags |= SFTP_ATTR_ACMODTIME;
		a.atime = sftp_time_clamp(cur->st_atim.tv_sec);
		a.mtime = sftp_time_clamp(cur->st_mtim.tv_sec);
		if (sa->valid & VFS_SET_ATIME_NOW)
			a.atime = sftp_time_clamp(now);
		else if (sa->valid & VFS_SET_ATIME)
			a.atime = sftp_time_clamp(sa->atime.tv_sec);
		if (sa->valid & VFS_SET_MTIME_NOW)
			a.mtime = sftp_time_clamp(now);
		else if (sa->valid & VFS_SET_MTIME)
			a.mtime = sftp_time_clamp(sa->mtime.tv_sec);
	}
	if (!a.flags)
		return 0;
	if (f)
		return sftp_r_fsetstat(c, &f->h, &a);
	return sftp_r_setstat(c, rpath, nofollow, &a);
}

/* Does sa change one of a pair SFTP v3 can only set together? */
static bool sftp_setattr_partial(const struct vfs_setattr *sa)
{
	bool uid = sa->valid & VFS_SET_UID, gid = sa->valid & VFS_SET_GID;
	bool at = sa->valid & (VFS_SET_ATIME | VFS_SET_ATIME_NOW);
	bool mt = sa->valid & (VFS_SET_MTIME | VFS_SET_MTIME_NOW);

	return uid != gid || at != mt;
}

/* Would sa leave an object with attributes cur unchanged? */
static bool sftp_setattr_noop(const struct stat *cur,
			      const struct vfs_setattr *sa)
{
	if ((sa->valid & VFS_SET_MODE) &&
	    (sa->mode & 07777) != (cur->st_mode & 07777))
		return false;
	if ((sa->valid & VFS_SET_UID) && sa->uid != cur->st_uid)
		return false;
	if ((sa->valid & VFS_SET_GID) && sa->gid != cur->st_gid)
		return false;
	if ((sa->valid & VFS_SET_SIZE) && sa->size != cur->st_size)
		return false;
	if ((sa->valid & VFS_SET_ATIME) &&
	    sa->atime.tv_sec != cur->st_atim.tv_sec)
		return false;
	if ((sa->valid & VFS_SET_MTIME) &&
	    sa->mtime.tv_sec != cur->st_mtim.tv_sec)
		return false;
	return !(sa->valid & (VFS_SET_ATIME_NOW | VFS_SET_MTIME_NOW));
}

int sftp_setattr(struct vfs_mount *m, const char *path, struct vfs_file *vf,
		 const struct vfs_setattr *sa, struct stat *st)
{
	struct sftp_mount *sm = sftp_mount_of(m);
	struct sftp_file *f = vf ? sftp_file_of(vf) : NULL;
	struct sftp_conn cc, *c = &cc;
	struct sftp_attrs a;
	struct stat cur;
	char *rpath;
	uint64_t gen;
	int rc;

	/* queued writes land before the change, as they were issued */
	if (path)
		remote_wb_drain_path(sm->wb, path);
	if (f)
		remote_wb_drain(sm->wb, &f->wbf);
	/* before the requests: an invalidation by another call between the
	 * answer and the put below then still counts */
	gen = remote_cache_gen(sm->cache);
	if (f) {
		pthread_mutex_lock(&f->lock);
		f->ra_len = 0;
		rc = sftp_file_begin(sm, f, c);
		if (rc)
			goto out_unlock;
		/* the current attributes matter only to fill in the half of
		 * owner/group or atime/mtime that v3 must send but the caller
		 * did not give */
		memset(&cur, 0, sizeof(cur));
		rc = 0;
		if (sftp_setattr_partial(sa)) {
			rc = sftp_r_fstat(c, &f->h, &a);
			if (!rc)
				sftp_attr_to_stat(c->sm, &a, f->path, &cur);
		}
		if (!rc) {
			rc = sftp_setstat_conn(c, f, NULL, false, &cur, sa);
			if (rc && (sa->valid & VFS_SET_SIZE))
				rc = sftp_explain_size(
					sm, c, f->rpath, (uint64_t)cur.st_size,
					(uint64_t)sa->size, 0, rc);
			rc = sftp_explain_rofs(sm, c, f->rpath, rc);
		}
		if (!rc)
			rc = sftp_r_fstat(c, &f->h, &a);
		if (!rc)
			sftp_attr_to_stat(c->sm, &a, f->path, st);
		sftp_checkin(sm, c);
	out_unlock:
		pthread_mutex_unlock(&f->lock);
		/*
		 * Cached under the file's own name, and only while that
		 * still names it: the caller's path may be stale, or NULL
		 * for a file unlinked while open.
		 */
		if (!rc && !__atomic_load_n(&f->moved, __ATOMIC_RELAXED))
			remote_cache_invalidate_put(sm->cache, f->path, false,
						    st, gen);
		else
			remote_cache_invalidate(sm->cache, f->path);
		/* after the put: that is our own change too */
		if (path && strcmp(path, f->path) != 0)
			remote_cache_invalidate(sm->cache, path);
		return rc;
	}

	rc = sftp_rpath(sm, path, &rpath);
	if (rc)
		return rc;
	rc = sftp_checkout(sm, -1, 0, c);
	if (rc)
		goto out_free;
	rc = sftp_lstat_conn(c, rpath, path, &cur);
	if (!rc && S_ISLNK(cur.st_mode) && !sm->feat.lsetstat) {
		/* SETSTAT would change the link's target instead: without
		 * lsetstat@openssh.com only what changes nothing (cp -a,
		 * tar: lchown to the owner the new link already has)
		 * succeeds */
		*st = cur;
		if (!sftp_setattr_noop(&cur, sa))
			rc = -EOPNOTSUPP;
		sftp_checkin(sm, c);
		goto out_free;
	}
	if (!rc && S_ISLNK(cur.st_mode) &&
	    (sa->valid & (VFS_SET_MODE | VFS_SET_SIZE))) {
		/* a link has no mode of its own (lchmod is EOPNOTSUPP on
		 * Linux) and no size to set */
		rc = sa->valid & VFS_SET_MODE ? -EOPNOTSUPP : -EINVAL;
		sftp_checkin(sm, c);
		goto out_free;
	}
	if (!rc) {
		rc = sftp_setstat_conn(c, NULL, rpath, S_ISLNK(cur.st_mode),
				       &cur, sa);
		if (rc && (sa->valid & VFS_SET_SIZE))
			rc = sftp_explain_size(sm, c, rpath,
					       (uint64_t)cur.st_size,
					       (uint64_t)sa->size, 0, rc);
		rc = sftp_explain_rofs(sm, c, rpath, rc);
	}
	if (!rc)
		rc = sftp_lstat_conn(c, rpath, path, st);
	sftp_checkin(sm, c);
	if (rc)
		remote_cache_invalidate(sm->cache, path);
	else
		remote_cache_invalidate_put(sm->cache, path, false, st, gen);
out_free:
	free(rpath);
	return rc;
}

int sftp_fgetattr(struct vfs_file *vf, struct stat *st)
{
	struct sftp_file *f = sftp_file_of(vf);
	struct sftp_mount *sm = sftp_mount_of(vf->mount);
	struct sftp_conn cc, *c = &cc;
	struct sftp_attrs a;
	uint64_t gen;
	int rc, tries = 0;

	/* every handle's queued writes: the size must include them */
	remote_wb_drain_path(sm->wb, f->path);
	gen = remote_cache_gen(sm->cache);
	pthread_mutex_lock(&f->lock);
	do {
		rc = sftp_file_begin(sm, f, c);
		if (rc)
			break;
		rc = sftp_r_fstat(c, &f->h, &a);
	} while (sftp_checkin_retry(sm, c, rc, &tries));
	pthread_mutex_unlock(&f->lock);
	if (rc)
		return rc;
	sftp_attr_to_stat(c->sm, &a, f->path, st);
	remote_cache_put_attr(sm->cache, f->path, st, gen);
	return 0;
}
