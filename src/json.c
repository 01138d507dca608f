/*
 * json.c - see json.h.
 */
#include "json.h"

cJSON *cp_json_parse_exact(const char *text, size_t len)
{
	const char *end = NULL;
	cJSON *root;

	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!root)
		return NULL;
	while (end && end < text + len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != text + len) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}
