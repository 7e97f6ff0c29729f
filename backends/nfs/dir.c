/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dir.c - directory listings: READDIRPLUS into a listing (NFSv4: a GETATTR
 * of every entry), its entries' attributes fed to the cache, the listing
 * itself cached.
 */
#include "backends/callctx.h"
#include "backends/nfs/internal.h"
#include "lib/hash.h"

static void nfsb_dirent_stat(struct stat *st, const struct nfsdirent *de)
{
	static const mode_t types[] = {
		[1] = S_IFREG, [2] = S_IFDIR,  [3] = S_IFBLK, [4] = S_IFCHR,
		[5] = S_IFLNK, [6] = S_IFSOCK, [7] = S_IFIFO,
	};

	memset(st, 0, sizeof(*st));
	st->st_ino = de->inode;
	/* NF3* and NF4* file types share their values. */
	st->st_mode = (de->type < 8 ? types[de->type] : 0) | (de->mode & 07777);
	st->st_nlink = de->nlink;
	st->st_uid = de->uid;
	st->st_gid = de->gid;
	st->st_size = de->size;
	st->st_rdev = de->rdev;
	st->st_dev = de->dev;
	st->st_blksize = de->blksize ? de->blksize : 4096;
	st->st_blocks = de->blocks ? de->blocks : (de->used + 511) / 512;
	st->st_atim.tv_sec = de->atime.tv_sec;
	st->st_atim.tv_nsec = de->atime_nsec;
	st->st_mtim.tv_sec = de->mtime.tv_sec;
	st->st_mtim.tv_nsec = de->mtime_nsec;
	st->st_ctim.tv_sec = de->ctime.tv_sec;
	st->st_ctim.tv_nsec = de->ctime_nsec;
}

struct nfsb_entreq {
	struct nfsb_wait *w;
	struct vfs_dirbuf_ent *e;
	int err;
};

static void nfsb_cb_entstat(int err, struct nfs_context *nfs, void *data,
			    void *priv)
{
	struct nfsb_entreq *r = priv;

	if (err == 0)
		nfsb_stat_from64(&r->e->st, data);
	r->err = err;
	/* One entry gone or unreadable does not fail the listing. */
	nfsb_wait_done(r->w, nfsb_is_transport(err) ? err : 0);
}

#define NFSB_STAT_BATCH 256

/*
 * libnfs 4.0.0's NFSv4 READDIR does not return the entries' fileid (it
 * reports inode 0, sometimes garbage, and glibc's readdir() skips d_ino 0
 * entries), so NFSv4 listings get each entry's attributes by GETATTR,
 * NFSB_STAT_BATCH requests in flight at a time on the listing's context.
 * Entries that vanished meanwhile are dropped.
 */
static int nfsb_v4_fill(struct nfsb_op *op, const char *full,
			struct vfs_dirbuf *db)
{
	struct nfsb_entreq *r = calloc(db->n ? db->n : 1, sizeof(*r));
	size_t kept = 0;
	int ret = 0;

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < db->n && ret == 0; i += NFSB_STAT_BATCH) {
		size_t end = i + NFSB_STAT_BATCH < db->n ? i + NFSB_STAT_BATCH
							 : db->n;
		char **paths = calloc(end - i, sizeof(*paths));
		struct nfsb_wait w;

		if (!paths) {
			ret = -ENOMEM;
			break;
		}
		/* a batch in flight at once: not nfsb_call_on */
		nfsb_wait_init(&w);
		for (size_t j = i; j < end; j++) {
			r[j] = (struct nfsb_entreq){&w, &db->ents[j], -EIO};
			w.pending++;
			if (asprintf(&paths[j - i], "%s%s%s", full,
				     strcmp(full, "/") ? "/" : "",
				     db->ents[j].name) < 0) {
				paths[j - i] = NULL;
				w.pending--;
				continue;
			}
			if (nfs_lstat64_async(op->nfs, paths[j - i],
					      nfsb_cb_entstat, &r[j]))
				nfsb_start_failed(op, &w);
		}
		ret = nfsb_finish(op, &w);
		for (size_t j = i; j < end; j++)
			free(paths[j - i]);
		free(paths);
	}
	if (ret == 0) {
		for (size_t i = 0; i < db->n; i++) {
			struct vfs_dirbuf_ent *e = &db->ents[i];

			if (r[i].err == -ENOENT) {
				free(e->name);
				continue;
			}
			if (r[i].err < 0) {
				/* Keep the name and type; a stand-in inode
				 * number, never 0. */
				e->st.st_ino = vfs_hash_str(e->name) | 1u << 31;
				e->flags &= ~VFS_DIRENT_FULL;
			}
			db->ents[kept++] = *e;
		}
		db->n = kept;
	}
	free(r);
	return ret;
}

struct nfsb_opendirreq {
	struct nfsb_ptrreq r; /* the struct nfsdir * */
	const char *full;
};

static int nfsb_start_opendir(struct nfsb_op *op, struct nfsb_wait *w,
			      void *arg)
{
	struct nfsb_opendirreq *o = arg;

	o->r = (struct nfsb_ptrreq){w, NULL};
	return nfs_opendir_async(op->nfs, o->full, nfsb_cb_ptr, &o->r);
}

/* READDIRPLUS the whole directory `full` into a new listing and feed the
 * children's attributes to the cache. */
static int nfsb_list(struct nfsb_mount *m, const char *full,
		     struct remote_listing **out)
{
	struct remote_listing *l;
	struct nfsb_op op;
	struct nfsdir *dir = NULL;
	struct nfsdirent *de;
	uint64_t gen = remote_cache_gen(m->cache);
	int ret, tries = 0;

	/* not nfsb_call: the context stays checked out for what follows (its
	 * NFSv4 GETATTRs, and nfs_closedir on the context that opened it) */
	do {
		struct nfsb_opendirreq o = {.full = full};

		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		ret = nfsb_call_on(&op, nfsb_start_opendir, &o);
		dir = o.r.ptr;
		if (ret < 0 || !dir) {
			nfsb_put(&op);
			ret = ret < 0 ? ret : -EIO;
		}
	} while (ret < 0 && nfsb_retry(&op, ret, &tries));
	if (ret < 0)
		return ret;

	l = remote_listing_new();
	if (!l) {
		ret = -ENOMEM;
		nfs_closedir(op.nfs, dir);
		goto out;
	}
	/* The listing is complete in memory now: nfs_readdir() walks it
	 * without I/O. */
	while ((de = nfs_readdir(op.nfs, dir))) {
		struct stat st;

		if (strcmp(de->name, ".") == 0 || strcmp(de->name, "..") == 0)
			continue;
		nfsb_dirent_stat(&st, de);
		ret = vfs_dirbuf_add(&l->db, de->name, &st, VFS_DIRENT_FULL);
		if (ret < 0)
			break;
	}
	nfs_closedir(op.nfs, dir);
	if (ret == 0 && m->version == 4)
		ret = nfsb_v4_fill(&op, full, &l->db);
	for (size_t i = 0; ret == 0 && m->cache_ttl > 0 && i < l->db.n; i++) {
		const struct vfs_dirbuf_ent *e = &l->db.ents[i];
		char *child;

		if (!(e->flags & VFS_DIRENT_FULL) ||
		    asprintf(&child, "%s%s%s", full,
			     strcmp(full, "/") ? "/" : "", e->name) < 0)
			continue;
		remote_cache_put_attr(m->cache, child, &e->st, gen);
		free(child);
	}
	if (ret < 0) {
		vfs_dirbuf_clear(&l->db);
		free(l);
		l = NULL;
	}
out:
	nfsb_put(&op);
	if (!l)
		return ret;
	*out = l;
	return 0;
}

int nfsb_opendir(struct vfs_mount *vm, const char *path, struct vfs_dir **out)
{
	struct nfsb_mount *m = nfsb_m(vm);
	char *full = nfsb_path(m, path);
	struct remote_listing *l = NULL;
	struct vfs_dir *d;
	int ret = 0;

	if (!full)
		return -ENOMEM;
	d = calloc(1, sizeof(*d));
	if (!d) {
		free(full);
		return -ENOMEM;
	}
	/* lease records are read fresh (backends/callctx.h) */
	if (!vfs_callctx.fresh)
		l = remote_cache_get_listing(m->cache, full);
	if (!l) {
		uint64_t gen = remote_cache_gen(m->cache);

		ret = nfsb_list(m, full, &l);
		if (ret == 0)
			remote_cache_put_listing(m->cache, full, l, gen);
	}
	free(full);
	if (ret < 0) {
		free(d);
		return ret;
	}
	d->list = l;
	*out = d;
	return 0;
}

int nfsb_readdir(struct vfs_mount *vm, struct vfs_dir *d, off_t off,
		 vfs_fill_fn fill, void *ctx)
{
	return vfs_dirbuf_fill(&d->list->db, off, fill, ctx);
}

void nfsb_releasedir(struct vfs_mount *vm, struct vfs_dir *d)
{
	struct nfsb_mount *m = nfsb_m(vm);

	remote_listing_put(m->cache, d->list);
	free(d);
}
