/* SPDX-License-Identifier: GPL-2.0-or-later */
/* opts.c - the option values every network backend reads the same way. */
#include "backends/remote/opts.h"

void remote_opts_get(const struct vfs_opts *opts, struct remote_opts *out)
{
	out->connections = (int)vfs_opts_get_int(opts, "connections");
	if (out->connections < 1)
		out->connections = 1;
	out->timeout_s = (int)vfs_opts_get_int(opts, "timeout");
	if (out->timeout_s < 1)
		out->timeout_s = 20;
	out->cache_ttl_s = (int)vfs_opts_get_int(opts, "cache_ttl");
	if (out->cache_ttl_s < 0)
		out->cache_ttl_s = 0;
	out->write_behind = vfs_opts_get_bool(opts, "write_behind");
	out->readahead_bytes = (uint64_t)vfs_opts_get_int(opts, "readahead")
			       << 20;
}
