/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * call.c - one libnfs request, start to finish: what every call that
 * sends a single request shares.  Check a context out of the pool (which
 * sets the call's deadline), set up the completion, queue the request,
 * run the event loop until the answer is in or the deadline passes, fold
 * the outcome into 0 or -errno, check the context in, and go once more on
 * a fresh context when an idle one was found broken.  The calls differ
 * only in how they queue their request (an nfsb_start_fn).
 */
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

int nfsb_call_resent(struct nfsb_mount *m, nfsb_start_fn start, void *arg,
		     bool *resent)
{
	struct nfsb_op op;
	int ret, tries = 0;

	*resent = false;
	for (;;) {
		ret = nfsb_get(m, -1, &op);
		if (ret < 0)
			return ret;
		ret = nfsb_call_on(&op, start, arg);
		nfsb_put(&op);
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

int nfsb_start_close(struct nfsb_op *op, struct nfsb_wait *w, void *arg)
{
	return nfs_close_async(op->nfs, arg, nfsb_cb_status, w);
}
