/* SPDX-License-Identifier: GPL-2.0-or-later */
/* callctx.c - the per-thread call context of backends/callctx.h. */
#include "backends/callctx.h"

__thread struct vfs_callctx vfs_callctx;
