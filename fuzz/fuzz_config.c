/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_config.c - libFuzzer target for vfsd/config.c: cfg_load_string()
 * and, when the text loads, cfg_validate() on arbitrary text.
 *
 * The input length's parity picks a private or an open config file, so
 * both secret-option paths are reached.  Besides memory errors it checks
 * the error contract: a failed load sets *err, returns -err.code and names
 * the file ("fuzz.conf:LINE: ..." or "fuzz.conf: ...").
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vfsd/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfsd_config cfg;
	struct vfs_error err;
	char *text;
	int ret;

	/* cfg_load_file refuses bigger files; keep runs fast */
	if (size > 64 * 1024)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	memset(&cfg, 0, sizeof(cfg));
	vfs_error_init(&err);
	ret = cfg_load_string(&cfg, text, "fuzz.conf", size % 2 == 0, &err);
	if (ret < 0) {
		CHECK(err.code == -ret);
		CHECK(strncmp(err.msg, "fuzz.conf:", 10) == 0);
	} else {
		CHECK(ret == 0 && err.code == 0);
		for (size_t i = 0; i < cfg.nmounts; i++) {
			CHECK(cfg.mounts[i].url);
			CHECK(cfg.mounts[i].prefix[0] == '/');
		}
		ret = cfg_validate(&cfg, &err);
		if (ret < 0) {
			CHECK(err.code == -ret);
			CHECK(err.msg[0] != '\0');
		}
	}
	cfg_free(&cfg);
	free(text);
	return 0;
}
