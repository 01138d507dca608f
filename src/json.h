/*
 * json.h - the one cJSON helper the API client and the manifest share.
 *
 * Thread safety: pure; any thread.
 */
#ifndef CP_JSON_H
#define CP_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses exactly @len bytes of JSON: trailing bytes other than white
 * space make the text malformed (cJSON alone would ignore them).
 * Returns the tree (caller frees with cJSON_Delete) or NULL. */
cJSON *cp_json_parse_exact(const char *text, size_t len);

#endif
