/*
 * report_stats.h - comparing two sets of profiles function by function.
 *
 * Used by report.c for each service: the baseline's profiles (side 0) and
 * the current window's (side 1) are added, one per version, then
 * rs_compare_run() tests every function's self and total share and fills
 * the findings, the suppressed changes and the counts of a service report.
 * The method is described at the top of report_stats.c and in
 * docs/report.md.
 */
#ifndef EMBER_REPORT_STATS_H
#define EMBER_REPORT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "core/profile.h"
#include "report/report.h"

#define RS_BASE 0
#define RS_CUR 1

struct rs_compare;

struct rs_compare *rs_compare_new(void);
void rs_compare_free(struct rs_compare *rc);

/*
 * Add a profile's stacks to a side (RS_BASE or RS_CUR) under a version name
 * (NULL = unknown).  Profiles of the same side simply add up.  Returns 0,
 * -EINVAL or -ENOMEM.
 */
int rs_compare_add(struct rs_compare *rc, int side, const char *version,
		   const struct ember_profile *p);

/* Samples added to a side. */
uint64_t rs_compare_samples(const struct rs_compare *rc, int side);

/* Fill out->versions / base_versions and the sample counts. */
int rs_compare_versions(const struct rs_compare *rc, struct ember_report_service *out);

/*
 * Test every function and fill out's findings, suppressed changes and
 * counts (functions, tests, small, truncated).  Returns 0 or -ENOMEM.
 */
int rs_compare_run(struct rs_compare *rc, const struct ember_report_thresholds *th,
		   struct ember_report_service *out);

/* ---- the statistics, exposed for tests ---- */

/*
 * Two-proportion z statistic of x1/n1 (baseline) against x2/n2 (current),
 * with the pooled proportion; positive when the current share is larger.
 * 0 when either n is 0 or the pooled proportion is 0 or 1.
 */
double rs_z_two_proportions(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2);

/* Two-sided p-value of a standard normal statistic. */
double rs_p_two_sided(double z);

/*
 * Adjust m p-values for multiple comparisons into q (Benjamini-Hochberg:
 * false discovery rate; Holm: family-wise error rate).  Returns 0 or -ENOMEM.
 */
int rs_adjust(const double *p, double *q, size_t m, enum ember_correction c);

#endif
