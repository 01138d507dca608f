/*
 * test_idindex.c - the index by id over a caller's array: every record
 * found at its position in any case, absent ids not found, growth across
 * many doublings while the array itself moves (realloc), and records
 * whose id sits at the start of a larger struct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idindex.h"
#include "valid.h"

static void id_of(unsigned i, char out[CP_ID_BUF])
{
	snprintf(out, CP_ID_BUF, "%08x%016llx", 0x65f1c0deu,
		 (unsigned long long)i * 0x9e3779b97f4a7c15ULL);
}

static void test_empty(void **state)
{
	struct cp_idindex ix = CP_IDINDEX_INIT;
	char ids[1][CP_ID_BUF] = { "" };

	(void)state;
	assert_int_equal(cp_idindex_find(&ix, ids, sizeof(ids[0]),
					 "65f1c0de0000000000000000"), -1);
	cp_idindex_free(&ix);
	cp_idindex_free(&ix);
}

static void test_grows_while_array_moves(void **state)
{
	struct cp_idindex ix = CP_IDINDEX_INIT;
	char (*ids)[CP_ID_BUF] = NULL;
	char upper[CP_ID_BUF], absent[CP_ID_BUF];
	unsigned i, j, n = 20000;

	(void)state;
	for (i = 0; i < n; i++) {
		/* a fresh block often, and always where the index doubles,
		 * so its rehash must use the base it is given */
		if (i % 50 == 0 || (i & (i - 1)) == 0 || !ids) {
			char (*moved)[CP_ID_BUF] = malloc(n * sizeof(*ids));

			assert_non_null(moved);
			if (i)
				memcpy(moved, ids, i * sizeof(*ids));
			memset(ids ? ids : moved, 0, i * sizeof(*ids));
			free(ids);
			ids = moved;
		}
		id_of(i, ids[i]);
		assert_int_equal(cp_idindex_find(&ix, ids, sizeof(*ids),
						 ids[i]), -1);
		assert_int_equal(cp_idindex_add(&ix, ids, sizeof(*ids)), 0);
		assert_int_equal(ix.n, i + 1);
	}
	assert_true(ix.cap >= 2 * n);
	for (i = 0; i < n; i++) {
		for (j = 0; j < CP_ID_BUF; j++)
			upper[j] = (char)toupper((unsigned char)ids[i][j]);
		assert_int_equal(cp_idindex_find(&ix, ids, sizeof(*ids),
						 ids[i]), i);
		assert_int_equal(cp_idindex_find(&ix, ids, sizeof(*ids),
						 upper), i);
	}
	for (i = n; i < n + 1000; i++) {
		id_of(i, absent);
		assert_int_equal(cp_idindex_find(&ix, ids, sizeof(*ids),
						 absent), -1);
	}
	cp_idindex_free(&ix);
	assert_int_equal(ix.n, 0);
	assert_int_equal(cp_idindex_find(&ix, ids, sizeof(*ids), ids[0]), -1);
	free(ids);
}

struct rec {
	char id[CP_ID_BUF];
	double payload[5];
};

static void test_records_with_a_stride(void **state)
{
	struct cp_idindex ix = CP_IDINDEX_INIT;
	struct rec recs[300];
	unsigned i;

	(void)state;
	for (i = 0; i < 300; i++) {
		id_of(i * 3, recs[i].id);
		recs[i].payload[0] = i;
		assert_int_equal(cp_idindex_add(&ix, recs, sizeof(recs[0])), 0);
	}
	for (i = 0; i < 300; i++) {
		long at = cp_idindex_find(&ix, recs, sizeof(recs[0]),
					  recs[i].id);

		assert_int_equal(at, i);
		assert_true(recs[at].payload[0] == i);
	}
	cp_idindex_free(&ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_grows_while_array_moves),
		cmocka_unit_test(test_records_with_a_stride),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
