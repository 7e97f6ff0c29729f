/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cred.c - creating calls run as their caller: the calling thread takes
 * the caller's umask, and (the daemon running as root) its fsuid, fsgid
 * and groups for the one system call that creates, then the daemon's own
 * again.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backends/local/internal.h"
#include "lib/log.h"

/*
 * Give the calling thread the caller's umask for one creating call, so that
 * the file system beneath applies it, or a default ACL of the parent in its
 * place, as it would for the caller itself.  The umask belongs to the
 * process unless a thread has a filesystem context of its own, so each
 * thread that creates unshares its own once (CLONE_FS: cwd, root and umask,
 * none of which the daemon otherwise uses) and keeps setting it.  Where
 * that fails the mode is masked here, default ACLs aside.
 */
static __thread signed char local_own_fs; /* 0 unknown, 1 own, -1 failed */

mode_t local_umask(mode_t mode, const struct vfs_cred *cred)
{
	if (!local_own_fs)
		local_own_fs = unshare(CLONE_FS) == 0 ? 1 : -1;
	if (local_own_fs < 0)
		return mode & ~cred->umask;
	umask(cred->umask);
	return mode;
}

/*
 * Creating calls run as their caller: for that one call the thread takes
 * the caller's fsuid, fsgid and groups, so the file system beneath makes
 * the object the caller's itself - owner, a setgid directory's group,
 * set-id bits the caller may have - and checks the caller's right to
 * make it (quotas aside: the thread keeps CAP_SYS_RESOURCE).  No chown follows,
 * so there is no moment in which another user could swap the new name for one
 * of theirs.  fsuid and fsgid belong to the thread; so do the groups when set
 * by the system call itself (glibc's setgroups() changes every thread).  The
 * kernel drops the thread's file capabilities with a non-zero fsuid and raises
 * them again with 0.  Groups vfsd could not learn (a caller in another PID
 * namespace) leave the primary group alone; with default_permissions the kernel
 * has checked the caller's whole list before.
 */
static gid_t local_groups0[NGROUPS_MAX]; /* the daemon's own */
static int local_ngroups0 = -1;
static uid_t local_uid0;
static gid_t local_gid0;
static pthread_once_t local_groups0_once = PTHREAD_ONCE_INIT;

static void local_groups0_read(void)
{
	local_uid0 = geteuid();
	local_gid0 = getegid();
	local_ngroups0 = getgroups(NGROUPS_MAX, local_groups0);
}

/*
 * Back to the daemon's own identity.  A worker that stayed someone else
 * would make the next caller's objects that user's, root's included: if the
 * kernel refuses the way back, the daemon stops rather than go on.
 */
static void local_restore(void)
{
	setfsuid(local_uid0);
	setfsgid(local_gid0);
	if (syscall(SYS_setgroups, (size_t)local_ngroups0, local_groups0) < 0 ||
	    (uid_t)setfsuid((uid_t)-1) != local_uid0 ||
	    (gid_t)setfsgid((gid_t)-1) != local_gid0) {
		log_err("cannot take back the daemon's own credentials after a "
			"create: stopping");
		abort();
	}
}

int local_become(const struct local_mount *lm, const struct vfs_cred *cred)
{
	const gid_t *groups = cred->ngroups < 0 ? &cred->gid : cred->groups;
	size_t n = cred->ngroups < 0 ? 1 : (size_t)cred->ngroups;

	/* root's creations are root's: nothing to become */
	if (!lm->root_user || (cred->uid == 0 && cred->gid == 0))
		return 0;
	pthread_once(&local_groups0_once, local_groups0_read);
	if (local_ngroups0 < 0)
		return -EPERM;
	if (syscall(SYS_setgroups, n, groups) < 0)
		return -errno;
	setfsgid(cred->gid);
	setfsuid(cred->uid);
	if ((uid_t)setfsuid((uid_t)-1) != cred->uid ||
	    (gid_t)setfsgid((gid_t)-1) != cred->gid) {
		local_restore();
		return -EPERM;
	}
	return 1;
}

/* After local_become(): `became` is what it returned, whatever the call
 * in between did.  errno is kept. */
void local_unbecome(int became)
{
	int e = errno;

	if (became > 0)
		local_restore();
	errno = e;
}
