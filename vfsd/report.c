/* SPDX-License-Identifier: GPL-2.0-or-later */
/* report.c - status, mounts and statistics as tables or JSON. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/path.h"
#include "vfsd/passthrough.h"
#include "vfsd/report.h"
#include "vfsd/router.h"
#include "vfsd/stats.h"

static const char *origin_name(enum router_origin o)
{
	switch (o) {
	case ROUTER_ORIGIN_CONFIG:
		return "config";
	case ROUTER_ORIGIN_CMDLINE:
		return "command-line";
	case ROUTER_ORIGIN_CONTROL:
		return "vfsctl";
	case ROUTER_ORIGIN_INTERNAL:
		return "internal";
	}
	return "?";
}

void report_status(FILE *out, bool json, const struct vfsd_status *st)
{
	struct timespec now;
	long up;

	clock_gettime(CLOCK_MONOTONIC, &now);
	up = now.tv_sec - st->started.tv_sec;
	if (json) {
		fputs("{\"version\":", out);
		vfs_json_str(out, st->version);
		fprintf(out,
			",\"uptime_seconds\":%ld,\"pid\":%d,\"mountpoint\":",
			up, st->pid);
		vfs_json_str(out, st->mountpoint);
		fputs(",\"host_id\":", out);
		vfs_json_str(out, st->host_id);
		fputs(",\"control\":", out);
		vfs_json_str(out, st->control);
		fputs(",\"config\":", out);
		if (st->config)
			vfs_json_str(out, st->config);
		else
			fputs("null", out);
		fputs("}\n", out);
		return;
	}
	fprintf(out, "version:     vfsd %s\n", st->version);
	fprintf(out, "uptime:      %ldd %02ld:%02ld:%02ld\n", up / 86400,
		up / 3600 % 24, up / 60 % 60, up % 60);
	fprintf(out, "pid:         %d\n", st->pid);
	fprintf(out, "mount point: %s\n", st->mountpoint);
	fprintf(out, "host id:     %s\n", st->host_id);
	fprintf(out, "control:     %s\n", st->control);
	fprintf(out, "config:      %s\n", st->config ? st->config : "(none)");
}

struct mounts_ctx {
	FILE *out;
	bool json;
	int n;
};

static void mounts_one(void *p, const struct router_view *v)
{
	struct mounts_ctx *c = p;
	const char *caps[ROUTER_CAPS_MAX];
	size_t ncaps = router_caps(v, caps, ROUTER_CAPS_MAX);

	if (v->origin == ROUTER_ORIGIN_INTERNAL)
		return;
	if (!c->json) {
		fprintf(c->out, "%-20s %-7s %-12s %-3s %-12s %s ", v->prefix,
			v->backend, v->state, v->readonly ? "yes" : "no",
			origin_name(v->origin), v->display);
		for (size_t i = 0; i < ncaps; i++)
			fprintf(c->out, "%s%s", i ? "," : "", caps[i]);
		fputs(ncaps ? "\n" : "-\n", c->out);
		c->n++;
		return;
	}
	fputs(c->n++ ? ",{" : "{", c->out);
	fputs("\"prefix\":", c->out);
	vfs_json_str(c->out, v->prefix);
	fputs(",\"url\":", c->out);
	vfs_json_str(c->out, v->display);
	fputs(",\"backend\":", c->out);
	vfs_json_str(c->out, v->backend);
	fputs(",\"state\":", c->out);
	vfs_json_str(c->out, v->state);
	fprintf(c->out,
		",\"readonly\":%s,\"passthrough\":%s,\"origin\":\"%s\",\"open_"
		"files\":%llu,\"reconnects\":%lu,\"since\":%lld",
		v->readonly ? "true" : "false",
		v->passthrough && pt_enabled() ? "true" : "false",
		origin_name(v->origin), (unsigned long long)v->open_files,
		v->reconnects, (long long)v->since.tv_sec);
	fputs(",\"caps\":[", c->out);
	for (size_t i = 0; i < ncaps; i++)
		fprintf(c->out, "%s\"%s\"", i ? "," : "", caps[i]);
	fputs("]}", c->out);
}

void report_mounts(FILE *out, bool json)
{
	struct mounts_ctx c = {out, json, 0};

	if (json)
		fputs("{\"mounts\":[", out);
	else
		fprintf(out, "%-20s %-7s %-12s %-3s %-12s %s %s\n", "PREFIX",
			"BACKEND", "STATE", "RO", "ORIGIN", "URL", "CAPS");
	router_foreach(mounts_one, &c);
	if (json)
		fputs("]}\n", out);
}

struct stats_ctx {
	FILE *out;
	bool json;
	const char *prefix;
	int n;
};

static uint64_t ld(const atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static const char *errno_name(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static void stats_json(FILE *out, const struct router_view *v)
{
	const struct mount_stats *s = v->stats;
	bool first = true;

	fputs("{\"prefix\":", out);
	vfs_json_str(out, v->prefix);
	fputs(",\"backend\":", out);
	vfs_json_str(out, v->backend);
	fputs(",\"ops\":{", out);
	for (int op = 0; op < VOP_COUNT; op++) {
		fprintf(out, "%s\"%s\":%llu", op ? "," : "", stats_op_name(op),
			(unsigned long long)ld(&s->ops[op]));
	}
	fprintf(out,
		"},\"bytes_read\":%llu,\"bytes_written\":%llu,\"errors\":{",
		(unsigned long long)ld(&s->bytes_read),
		(unsigned long long)ld(&s->bytes_written));
	for (int e = 1; e <= STATS_MAX_ERRNO; e++) {
		uint64_t n = ld(&s->errors[e]);

		if (!n)
			continue;
		fprintf(out, "%s\"%s\":%llu", first ? "" : ",", errno_name(e),
			(unsigned long long)n);
		first = false;
	}
	fprintf(out,
		"},\"latency_us\":{\"p50\":%llu,\"p99\":%llu},\"reconnects\":%"
		"lu,\"in_flight\":%lld",
		(unsigned long long)stats_percentile(s, 0.50),
		(unsigned long long)stats_percentile(s, 0.99), v->reconnects,
		(long long)atomic_load_explicit(&s->inflight,
						memory_order_relaxed));
	fprintf(out,
		",\"fair\":{\"on\":%s,\"capacity_requests\":%u,"
		"\"capacity_bytes\":%llu,\"requests\":%u,\"bytes\":%llu,"
		"\"waited\":%llu,\"waited_ms\":%llu,"
		"\"behind_max\":%u,\"behind_shared_max\":%u,"
		"\"behind_shared_max_bytes\":%lu}",
		v->fair.on ? "true" : "false", v->fair.max_reqs,
		(unsigned long long)v->fair.max_bytes, v->fair.reqs,
		(unsigned long long)v->fair.bytes,
		(unsigned long long)v->fair.waited,
		(unsigned long long)v->fair.waited_ms, v->wb_max,
		v->wb_shared_max, v->wb_shared_max_bytes);
	fprintf(out,
		",\"readahead\":{\"budget\":%llu,\"held\":%llu,"
		"\"read\":%llu,\"served\":%llu,\"dropped\":%llu}}",
		(unsigned long long)v->ra_budget,
		(unsigned long long)v->ra_held,
		(unsigned long long)ld(&s->ra_read),
		(unsigned long long)ld(&s->ra_served),
		(unsigned long long)ld(&s->ra_dropped));
}

static void stats_text(FILE *out, const struct router_view *v)
{
	const struct mount_stats *s = v->stats;
	int col = 0;

	fprintf(out, "%s (%s, %s)\n  operations:", v->prefix, v->backend,
		v->state);
	for (int op = 0; op < VOP_COUNT; op++) {
		uint64_t n = ld(&s->ops[op]);

		if (!n)
			continue;
		fprintf(out, "%s %s=%llu",
			col && col % 6 == 0 ? "\n             " : "",
			stats_op_name(op), (unsigned long long)n);
		col++;
	}
	if (!col)
		fputs(" none", out);
	fprintf(out, "\n  bytes:      read=%llu written=%llu\n  errors:    ",
		(unsigned long long)ld(&s->bytes_read),
		(unsigned long long)ld(&s->bytes_written));
	col = 0;
	for (int e = 1; e <= STATS_MAX_ERRNO; e++) {
		uint64_t n = ld(&s->errors[e]);

		if (n) {
			fprintf(out, " %s=%llu", errno_name(e),
				(unsigned long long)n);
			col++;
		}
	}
	if (!col)
		fputs(" none", out);
	fprintf(out,
		"\n  latency:    p50=%lluus p99=%lluus\n  reconnects: %lu\n  "
		"in flight:  %lld\n",
		(unsigned long long)stats_percentile(s, 0.50),
		(unsigned long long)stats_percentile(s, 0.99), v->reconnects,
		(long long)atomic_load_explicit(&s->inflight,
						memory_order_relaxed));
	if (v->fair.on)
		fprintf(out,
			"  fair share: %u requests, %llu bytes in flight now; "
			"%llu requests waited their turn, %llu ms in all\n",
			v->fair.reqs, (unsigned long long)v->fair.bytes,
			(unsigned long long)v->fair.waited,
			(unsigned long long)v->fair.waited_ms);
	if (v->wb_max || v->wb_shared_max)
		fprintf(out,
			"  write-behind: at most %u WRITEs in flight alone, "
			"%u (%lu bytes) beside active callers\n",
			v->wb_max, v->wb_shared_max, v->wb_shared_max_bytes);
	if (v->ra_budget)
		fprintf(out,
			"  read-ahead: %llu of %llu bytes held; %llu bytes "
			"read ahead, %llu served, %llu dropped unread\n",
			(unsigned long long)v->ra_held,
			(unsigned long long)v->ra_budget,
			(unsigned long long)ld(&s->ra_read),
			(unsigned long long)ld(&s->ra_served),
			(unsigned long long)ld(&s->ra_dropped));
}

static void stats_one(void *p, const struct router_view *v)
{
	struct stats_ctx *c = p;

	if (v->origin == ROUTER_ORIGIN_INTERNAL)
		return;
	if (c->prefix && strcmp(c->prefix, v->prefix) != 0)
		return;
	if (c->json) {
		if (c->n)
			fputc(',', c->out);
		stats_json(c->out, v);
	} else {
		stats_text(c->out, v);
	}
	c->n++;
}

int report_stats(FILE *out, const char *prefix, bool json,
		 struct vfs_error *err)
{
	struct stats_ctx c = {out, json, prefix, 0};
	FILE *tmp;
	char *buf = NULL;
	size_t len = 0;

	/* into a buffer first: an unknown prefix must print nothing */
	tmp = open_memstream(&buf, &len);
	if (!tmp)
		return vfs_error_set(err, ENOMEM, "out of memory");
	c.out = tmp;
	if (json)
		fputs("{\"mounts\":[", tmp);
	router_foreach(stats_one, &c);
	if (json)
		fputs("]}\n", tmp);
	fclose(tmp);
	if (prefix && !c.n) {
		free(buf);
		return vfs_error_set(err, ENOENT, "%s is not mounted", prefix);
	}
	fwrite(buf, 1, len, out);
	free(buf);
	return 0;
}

struct files_ctx {
	FILE *out;
	bool json;
	const char *prefix;
	unsigned n;
};

static void files_one(void *p, const struct router_file_view *v)
{
	struct files_ctx *c = p;

	if (c->prefix && !vfs_path_under(v->path, c->prefix, strlen(c->prefix)))
		return;
	if (c->json) {
		fputs(c->n ? ",\n {\"path\": " : "\n {\"path\": ", c->out);
		vfs_json_str(c->out, v->path);
		fputs(", \"mount\": ", c->out);
		vfs_json_str(c->out, v->mount);
		fprintf(c->out,
			", \"read_bytes\": %llu, \"write_bytes\": %llu, "
			"\"read_ops\": %llu, \"write_ops\": %llu, "
			"\"held_ms\": %llu, \"waiting\": %u, \"limited\": %s}",
			(unsigned long long)v->read_bytes,
			(unsigned long long)v->write_bytes,
			(unsigned long long)v->read_ops,
			(unsigned long long)v->write_ops,
			(unsigned long long)(v->held_ns / 1000000), v->waiting,
			v->limited ? "true" : "false");
	} else {
		vfs_path_print(c->out, v->path);
		fprintf(c->out,
			"\n  read %llu B in %llu ops, written %llu B in %llu "
			"ops; held back %llu ms, waiting %u%s\n",
			(unsigned long long)v->read_bytes,
			(unsigned long long)v->read_ops,
			(unsigned long long)v->write_bytes,
			(unsigned long long)v->write_ops,
			(unsigned long long)(v->held_ns / 1000000), v->waiting,
			v->limited ? "; limited" : "");
	}
	c->n++;
}

void report_files(FILE *out, const char *prefix, bool json)
{
	struct files_ctx c = {out, json, prefix, 0};

	if (json)
		fputc('[', out);
	router_foreach_file(files_one, &c);
	if (json)
		fputs(c.n ? "\n]\n" : "]\n", out);
}
