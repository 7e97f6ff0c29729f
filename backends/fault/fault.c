/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fault.c - the test-only fault injection wrapper (see fault.h): any
 * backend's instance behind a table that forwards every call, after
 * delaying, failing or pausing the ones a rule picks.  This is how tests
 * of cross-host locks get a slow or stalled server, or a lease renewal
 * that fails, exactly where they want it (QEMU's blkdebug, SQLite's
 * test_vfs.c).  This file owns the instance: wrapping, detaching,
 * unmounting, statfs and state, and the ops table; internal.h lists the
 * others.
 *
 * Rules: a list per mount, evaluated in order for every call; the first
 * that matches the operation and the path acts on it:
 *
 *   op=OP[,OP...]  path=GLOB  delay=MS  error=ERRNO  pause  when=after
 *   skip=N  count=N
 *
 * Paths are mount-relative and matched with fnmatch(3) without
 * FNM_PATHNAME, so '*' crosses '/'.  Calls on open files match the path
 * the file was opened or created with; rename, link, copy_range and clone
 * match if either of their two names does.  A rule acts by pausing until
 * resumed, then sleeping `delay`, then failing with `error` without
 * calling the backend; with when=after all of that happens once the
 * backend has answered (the request was served, its reply is late or
 * lost).  release always reaches the backend, since a handle must be
 * freed whatever a rule says.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/fault/internal.h"
#include "backends/stack.h"
#include "lib/log.h"

static void fault_unmount(struct vfs_mount *m)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_rule *r, *next;

	fm->iops->unmount(fm->inner);
	for (r = fm->rules; r; r = next) {
		next = r->next;
		fault_rule_free(r);
	}
	pthread_cond_destroy(&fm->wake);
	pthread_mutex_destroy(&fm->lock);
	free(fm->what);
	free(fm);
}

static int fault_statfs(struct vfs_mount *m, const char *path,
			struct statvfs *st)
{
	struct fault_mount *fm = fault_m(m);
	struct fault_act act;
	int ret = fault_enter(fm, FOP_STATFS, path, NULL, &act);

	if (ret < 0)
		return ret;
	ret = fm->iops->statfs(fm->inner, path, st);
	return (int)fault_leave(fm, &act, ret);
}

/*
 * Always present (NULL would mean "always connected", which is what we
 * answer for an inner backend without one).  The router reads the
 * reconnect count of our base right after asking this, so pass on the
 * inner one's here.
 */
static const char *fault_state(struct vfs_mount *m)
{
	struct fault_mount *fm = fault_m(m);

	__atomic_store_n(
		&m->reconnects,
		__atomic_load_n(&fm->inner->reconnects, __ATOMIC_RELAXED),
		__ATOMIC_RELAXED);
	return fm->iops->state ? fm->iops->state(fm->inner) : "connected";
}

/*
 * The template of every instance's table (fault_wrap() copies it).
 * There is no mount: a fault mount is made by wrapping another backend's
 * instance, never from a URL of its own.
 */
static const struct vfs_backend_ops fault_ops = {
	.name = "fault",
	.unmount = fault_unmount,
	.statfs = fault_statfs,
	.state = fault_state,
	.getattr = fault_getattr,
	.setattr = fault_setattr,
	.readlink = fault_readlink,
	.mknod = fault_mknod,
	.mkdir = fault_mkdir,
	.symlink = fault_symlink,
	.link = fault_link,
	.unlink = fault_unlink,
	.rmdir = fault_rmdir,
	.rename = fault_rename,
	.opendir = fault_opendir,
	.readdir = fault_readdir,
	.releasedir = fault_releasedir,
	.getxattr = fault_getxattr,
	.listxattr = fault_listxattr,
	.setxattr = fault_setxattr,
	.removexattr = fault_removexattr,
	.create = fault_create,
	.open = fault_open,
	.read = fault_read,
	.write = fault_write,
	.fgetattr = fault_fgetattr,
	.flush = fault_flush,
	.fsync = fault_fsync,
	.fallocate = fault_fallocate,
	.lseek = fault_lseek,
	.copy_range = fault_copy_range,
	.clone = fault_clone,
	.release = fault_release,
};

/* fault_state() answers for an inner backend without a state of its own */
static const size_t fault_keep[] = {VFS_STACK_MEMBER(state)};

int fault_wrap(struct vfs_mount **vm, const char *what, struct vfs_error *err)
{
	struct vfs_mount *inner = *vm;
	struct fault_mount *fm;
	pthread_condattr_t ca;
	int ret;

	/* owned by the router from here, freed by fault_unmount() */
	fm = calloc(1, sizeof(*fm));
	if (!fm || !(fm->what = strdup(what)))
		goto nomem;
	if (pthread_condattr_init(&ca) != 0)
		goto nomem;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	ret = pthread_cond_init(&fm->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (ret != 0)
		goto nomem;
	pthread_mutex_init(&fm->lock, NULL);
	fm->inner = inner;
	fm->iops = inner->ops;
	fm->next_id = 1;

	snprintf(fm->name, sizeof(fm->name), FAULT_SCHEME_PREFIX "%s",
		 fm->iops->name);
	vfs_stack_ops(&fm->ops, &fault_ops, fm->iops, fault_keep,
		      sizeof(fault_keep) / sizeof(*fault_keep));
	fm->ops.name = fm->name;
	fm->ops.opts = fm->iops->opts;

	fm->base.ops = &fm->ops;
	/* our handles have no host fd, so the kernel cannot pass through */
	fm->base.caps = inner->caps & ~VFS_CAP_PASSTHROUGH;
	fm->base.attr_timeout = inner->attr_timeout;
	fm->base.entry_timeout = inner->entry_timeout;
	/* the router reads the backend's counters and bits through it */
	fm->base.lower = inner;
	log_warn("%s: fault injection is on (%s): for tests only, never in "
		 "production",
		 what, fm->name);
	*vm = &fm->base;
	return 0;
nomem:
	if (fm)
		free(fm->what);
	free(fm);
	inner->ops->unmount(inner);
	return vfs_error_set(err, ENOMEM, "%s: out of memory", what);
}

struct fault_mount *fault_mount_of(struct vfs_mount *vm)
{
	return vm->ops->unmount == fault_unmount ? fault_m(vm) : NULL;
}

void fault_detach(struct vfs_mount *vm)
{
	struct fault_mount *fm = fault_mount_of(vm);

	if (!fm)
		return;
	pthread_mutex_lock(&fm->lock);
	fm->detached = true;
	pthread_cond_broadcast(&fm->wake);
	pthread_mutex_unlock(&fm->lock);
}
