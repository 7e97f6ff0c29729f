/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * call.c - one libnfs request, start to finish: what every call that
 * sends a single request shares.  Check a context out of the pool (which
 * sets the call's deadline), set up the completion, queue the request,
 * run the event loop until the answer is in or the deadline passes, fold
 * the outcome into 0 or -errno, check the context in, and go once more on
 * a fresh context when an idle one was found broken, or again after a
 * wait when the server said "try again later".  The calls differ
 * only in how they queue their request (an nfsb_start_fn).
 */
#include <errno.h>
#include <time.h>

#include "backends/callctx.h"
#include "backends/nfs/internal.h"

int nfsb_call_on(struct nfsb_op *op, nfsb_start_fn start, void *arg)
{
	struct nfsb_wait w;

	/* an earlier request of this checkout lost the context (its
	 * failure destroyed it): there is nothing left to send on */
	if (!op->nfs)
		return -EIO;
	nfsb_wait_init(&w);
	w.pending = 1;
	if (start(op, &w, arg))
		nfsb_start_failed(op, &w);
	return nfsb_finish(op, &w);
}

/*
 * After a "try again later" answer (NFS3ERR_JUKEBOX, NFS4ERR_DELAY: libnfs
 * gives -EAGAIN; the server had not done it): wait before the next try,
 * 50 ms doubling to 1 s, as long as the mount's timeout from the first
 * answer (cut short by the thread's deadline) allows.  False: give up.
 */
static bool nfsb_jukebox_wait(struct nfsb_mount *m, int64_t *give_up_ns,
			      unsigned *delay_ms)
{
	int64_t now = vfs_mono_ns(), until;
	struct timespec ts;

	if (!*give_up_ns)
		*give_up_ns = now + vfs_call_budget_ms(m->timeout * 1000L) *
					    1000000LL;
	*delay_ms = *delay_ms ? *delay_ms * 2 : 50;
	if (*delay_ms > 1000)
		*delay_ms = 1000;
	until = now + *delay_ms * 1000000LL;
	if (until >= *give_up_ns)
		return false;
	ts = (struct timespec){.tv_sec = *delay_ms / 1000,
			       .tv_nsec = (*delay_ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return true;
}

int nfsb_call_resent(struct nfsb_mount *m, nfsb_start_fn start, void *arg,
		     bool *resent)
{
	struct nfsb_op op;
	int64_t give_up = 0;
	unsigned delay = 0;
	int ret, tries = 0;

	*resent = false;
	for (;;) {
		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		ret = nfsb_call_on(&op, start, arg);
		nfsb_put(&op);
		/* the server may have begun a non-idempotent call it then
		 * answered JUKEBOX for: its retry is judged as resent */
		if (ret == -EAGAIN && nfsb_jukebox_wait(m, &give_up, &delay)) {
			*resent = true;
			continue;
		}
		if (!nfsb_retry(&op, ret, &tries))
			return ret;
		*resent = true;
	}
}

int nfsb_call(struct nfsb_mount *m, nfsb_start_fn start, void *arg)
{
	bool resent;

	return nfsb_call_resent(m, start, arg, &resent);
}

int nfsb_start_open(struct nfsb_op *op, struct nfsb_wait *w, void *arg)
{
	struct nfsb_openreq *o = arg;

	o->r = (struct nfsb_ptrreq){w, NULL};
	if (o->flags & O_CREAT)
		return nfs_create_async(op->nfs, o->full, o->flags, o->mode,
					nfsb_cb_ptr, &o->r);
	return nfs_open_async(op->nfs, o->full, o->flags, nfsb_cb_ptr, &o->r);
}

int nfsb_v3_fh_on(struct nfsb_op *op, const char *full, char *fh, int *len)
{
	struct nfsb_openreq o = {.full = full, .flags = O_RDONLY};
	struct nfs_fh *raw;
	int ret = nfsb_call_on(op, nfsb_start_open, &o);

	*len = 0;
	if (ret == 0 && !o.r.ptr)
		ret = -EIO;
	if (ret < 0)
		return ret;
	raw = nfsb_rawfh(o.r.ptr, NFSB_V3_FHSIZE);
	if (raw) {
		memcpy(fh, raw->val, (size_t)raw->len);
		*len = raw->len;
	}
	/* Freed at once, while the context that opened it is alive: a
	 * request that fails destroys the context, and a close after that
	 * would not be made at all (nfsb_call_on), leaking libnfs's handle.
	 * An NFSv3 handle holds no server state, so this only frees it, and
	 * the copy stays valid. */
	nfsb_call_on(op, nfsb_start_close, o.r.ptr);
	return 0;
}

int nfsb_start_close(struct nfsb_op *op, struct nfsb_wait *w, void *arg)
{
	return nfs_close_async(op->nfs, arg, nfsb_cb_status, w);
}
