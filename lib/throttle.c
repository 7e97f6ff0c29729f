/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * throttle.c - I/O limits as leaky buckets (throttle.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/throttle.h"

#define NS          1e9
#define VALUE_MAX   (1ull << 53) /* exact in the buckets' doubles */
/* the longest wait (about 146 years): what a huge charge at a tiny rate
 * asks for stays a wait, rather than overflowing into a negative one
 * (no wait at all), and a caller may add it to a clock */
#define WAIT_MAX_NS ((double)(INT64_MAX / 2))

const char *const throttle_names[THROTTLE_NAMES] = {
	"bps",
	"bps_rd",
	"bps_wr",
	"iops",
	"iops_rd",
	"iops_wr",
	"bps_max",
	"bps_rd_max",
	"bps_wr_max",
	"iops_max",
	"iops_rd_max",
	"iops_wr_max",
	"bps_max_length",
	"bps_rd_max_length",
	"bps_wr_max_length",
	"iops_max_length",
	"iops_rd_max_length",
	"iops_wr_max_length",
	"iops_size",
	"weight",
};

uint64_t *throttle_field(struct throttle_cfg *cfg, const char *name)
{
	for (int i = 0; i < THROTTLE_NAMES; i++) {
		if (strcmp(name, throttle_names[i]) != 0)
			continue;
		if (i < THR_KINDS)
			return &cfg->avg[i];
		if (i < 2 * THR_KINDS)
			return &cfg->max[i - THR_KINDS];
		if (i < 3 * THR_KINDS)
			return &cfg->max_len[i - 2 * THR_KINDS];
		return i == 3 * THR_KINDS ? &cfg->iops_size : &cfg->weight;
	}
	return NULL;
}

uint64_t throttle_get(const struct throttle_cfg *cfg, const char *name)
{
	uint64_t *f = throttle_field((struct throttle_cfg *)cfg, name);

	return f ? *f : 0;
}

int throttle_parse_value(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > VALUE_MAX)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

int throttle_check(const struct throttle_cfg *cfg, char *msg, size_t size)
{
	bool iops = false;

	for (int k = 0; k < THR_KINDS; k++) {
		const char *avg = throttle_names[k];

		if (cfg->max[k] && !cfg->avg[k]) {
			snprintf(msg, size, "%s_max needs %s", avg, avg);
			return -EINVAL;
		}
		if (cfg->max[k] && cfg->max[k] < cfg->avg[k]) {
			snprintf(msg, size,
				 "%s_max = %llu is below %s = %llu: a burst "
				 "is never slower than the average",
				 avg, (unsigned long long)cfg->max[k], avg,
				 (unsigned long long)cfg->avg[k]);
			return -EINVAL;
		}
		if (cfg->max_len[k] && !cfg->max[k]) {
			snprintf(msg, size, "%s_max_length needs %s_max", avg,
				 avg);
			return -EINVAL;
		}
		if (k >= THR_IOPS && cfg->avg[k])
			iops = true;
	}
	if (cfg->weight > THROTTLE_WEIGHT_MAX) {
		snprintf(msg, size,
			 "weight = %llu: at most %d (100 is an equal share)",
			 (unsigned long long)cfg->weight, THROTTLE_WEIGHT_MAX);
		return -EINVAL;
	}
	if (cfg->iops_size && !iops) {
		snprintf(msg, size,
			 "iops_size needs an IOPS limit (iops, iops_rd or "
			 "iops_wr)");
		return -EINVAL;
	}
	return 0;
}

bool throttle_limits(const struct throttle_cfg *cfg)
{
	for (int k = 0; k < THR_KINDS; k++)
		if (cfg->avg[k])
			return true;
	return false;
}

/* the average bucket's capacity: a burst's excess over the average for
 * its length, else a tenth of a second's worth */
static double cap_avg(const struct throttle_cfg *c, int k)
{
	if (c->max[k])
		return (double)(c->max[k] - c->avg[k]) *
		       (double)(c->max_len[k] ? c->max_len[k] : 1);
	return (double)c->avg[k] / 10;
}

static void leak(struct throttle *t, int64_t now_ns)
{
	double dt = (double)(now_ns - t->last_ns) / NS;

	if (dt <= 0)
		return;
	for (int k = 0; k < THR_KINDS; k++) {
		t->level[k] -= (double)t->cfg.avg[k] * dt;
		if (t->level[k] < 0 || !t->cfg.avg[k])
			t->level[k] = 0;
		t->burst[k] -= (double)t->cfg.max[k] * dt;
		if (t->burst[k] < 0 || !t->cfg.max[k])
			t->burst[k] = 0;
	}
	t->last_ns = now_ns;
}

void throttle_init(struct throttle *t, const struct throttle_cfg *cfg,
		   int64_t now_ns)
{
	memset(t, 0, sizeof(*t));
	t->cfg = *cfg;
	t->last_ns = now_ns;
}

void throttle_set(struct throttle *t, const struct throttle_cfg *cfg,
		  int64_t now_ns)
{
	leak(t, now_ns);
	t->cfg = *cfg;
}

static bool applies(int k, bool write)
{
	switch (k) {
	case THR_BPS_RD:
	case THR_IOPS_RD:
		return !write;
	case THR_BPS_WR:
	case THR_IOPS_WR:
		return write;
	default:
		return true;
	}
}

int64_t throttle_wait_ns(struct throttle *t, bool write, uint64_t bytes,
			 int64_t now_ns)
{
	double wait = 0;

	(void)bytes; /* a request may start at or below capacity, whatever
		      * its size: the next one pays for it */
	leak(t, now_ns);
	for (int k = 0; k < THR_KINDS; k++) {
		double over, w;

		if (!t->cfg.avg[k] || !applies(k, write))
			continue;
		over = t->level[k] - cap_avg(&t->cfg, k);
		if (over > 0) {
			w = over / (double)t->cfg.avg[k];
			if (w > wait)
				wait = w;
		}
		if (t->cfg.max[k]) {
			over = t->burst[k] - (double)t->cfg.max[k] / 10;
			if (over > 0) {
				w = over / (double)t->cfg.max[k];
				if (w > wait)
					wait = w;
			}
		}
	}
	/* rounded up: a wake-up a little early would find the bucket still
	 * above its capacity and wait again */
	if (wait <= 0)
		return 0;
	return wait * NS < WAIT_MAX_NS ? (int64_t)(wait * NS) + 1
				       : (int64_t)WAIT_MAX_NS;
}

void throttle_charge(struct throttle *t, bool write, uint64_t bytes,
		     int64_t now_ns)
{
	double ops = 1;

	leak(t, now_ns);
	if (t->cfg.iops_size && bytes > t->cfg.iops_size)
		ops = (double)bytes / (double)t->cfg.iops_size;
	for (int k = 0; k < THR_KINDS; k++) {
		double cost = k < THR_IOPS ? (double)bytes : ops;

		if (!t->cfg.avg[k] || !applies(k, write))
			continue;
		t->level[k] += cost;
		if (t->cfg.max[k])
			t->burst[k] += cost;
	}
}
