/*
 * fuzz_manifest.c - libFuzzer target for manifest lines (manifest.h).
 *
 * The whole input is parsed as one line, then each '\n'-separated piece
 * on its own, the way cp_manifest_load() walks a file.  Lines are passed
 * unterminated and exactly sized.  Checked: the result is one of the
 * three documented values; an entry has a 24-hex-digit id, sizes and
 * times of -1 or more, and strings that are terminated; a refusal gives
 * one terminated line in @why.  Strings are released with
 * cp_manifest_entry_clear(), so LeakSanitizer flags anything a refused
 * or skipped line allocated and kept.
 */
#include <ctype.h>
#include <errno.h>

#include "fuzz.h"
#include "manifest.h"
#include "util.h"

static void check_id(const char *id)
{
	size_t i;

	for (i = 0; i < 24; i++)
		FUZZ_CHECK(isxdigit((unsigned char)id[i]));
	FUZZ_CHECK(id[24] == '\0');
}

static void fuzz_line(const uint8_t *data, size_t len, size_t whylen)
{
	struct cp_manifest_entry entry;
	char *line = fuzz_alloc(len);
	char *why = fuzz_alloc(whylen);
	int ret;

	memcpy(line, data, len);
	memset(&entry, 0, sizeof(entry));
	why[0] = '\0';
	ret = cp_manifest_parse_line(line, len, &entry, why, whylen);
	FUZZ_CHECK(ret == CP_MANIFEST_ENTRY || ret == CP_MANIFEST_SKIP ||
		   ret == -EINVAL);
	if (ret == CP_MANIFEST_ENTRY) {
		check_id(entry.id);
		FUZZ_CHECK(entry.size >= -1);
		FUZZ_CHECK(entry.created_at >= -1);
		if (entry.name)
			(void)strlen(entry.name);
		if (entry.content_type)
			(void)strlen(entry.content_type);
		cp_manifest_entry_clear(&entry);
	} else if (ret == -EINVAL) {
		fuzz_check_line(why, whylen);
	}
	free(why);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t whylens[] = {256, 1, 8, 64};
	size_t whylen = whylens[size % CP_ARRAY_SIZE(whylens)];
	size_t pos = 0, len;
	const char *field;

	fuzz_line(data, size, whylen);
	while ((field = fuzz_next_field(data, size, &pos, '\n', &len)))
		fuzz_line((const uint8_t *)field, len, 256);
	return 0;
}
