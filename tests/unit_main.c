/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * unit_main.c - runner for the check unit suites, one per module.
 *
 *   unit_main [SUITE...]     run the named suites (default: all)
 *
 * tests/meson.build registers one test per suite ("unit-url" runs
 * `unit_main url`), so a failure names its suite.  Check forks a child per
 * test (CK_FORK=no turns that off for gdb); a crash fails only that test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

Suite *url_suite(void);
Suite *options_suite(void);
Suite *config_suite(void);
Suite *router_suite(void);
Suite *inode_suite(void);
Suite *sftp_suite(void);
Suite *sftp_proto_suite(void);
Suite *nfs_suite(void);
Suite *lib_suite(void);
Suite *remote_suite(void);
Suite *stack_suite(void);
Suite *fair_suite(void);

static const struct {
	const char *name;
	Suite *(*make)(void);
} unit_suites[] = {
	{"url", url_suite},
	{"options", options_suite},
	{"config", config_suite},
	{"router", router_suite},
	{"inode", inode_suite},
	{"sftp", sftp_suite},
	{"sftp_proto", sftp_proto_suite},
	{"nfs", nfs_suite},
	{"lib", lib_suite},
	{"remote", remote_suite},
	{"stack", stack_suite},
	{"fair", fair_suite},
};

#define NSUITES (sizeof(unit_suites) / sizeof(unit_suites[0]))

static Suite *unit_find(const char *name)
{
	for (size_t i = 0; i < NSUITES; i++)
		if (strcmp(unit_suites[i].name, name) == 0)
			return unit_suites[i].make();
	return NULL;
}

int main(int argc, char **argv)
{
	SRunner *sr = NULL;
	int failed;

	/* the router logs every mount at info level: keep the output to
	 * the test results */
	log_init("vfsd-unit", false, LOG_LVL_ERR);

	if (argc < 2) {
		for (size_t i = 0; i < NSUITES; i++) {
			Suite *s = unit_suites[i].make();

			if (!sr)
				sr = srunner_create(s);
			else
				srunner_add_suite(sr, s);
		}
	}
	for (int i = 1; i < argc; i++) {
		Suite *s = unit_find(argv[i]);

		if (!s) {
			fprintf(stderr, "%s: no suite '%s' (known:", argv[0],
				argv[i]);
			for (size_t j = 0; j < NSUITES; j++)
				fprintf(stderr, " %s", unit_suites[j].name);
			fprintf(stderr, ")\n");
			if (sr)
				srunner_free(sr);
			return 2;
		}
		if (!sr)
			sr = srunner_create(s);
		else
			srunner_add_suite(sr, s);
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
