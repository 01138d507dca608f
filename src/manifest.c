/*
 * manifest.c - the ids= file: one ObjectId or upload-endpoint JSON
 * object per line.
 *
 * Pure parsing; cp_manifest_load() reads the file once at start-up from
 * main()'s thread and hands each entry to a callback.  Owns nothing
 * beyond the entry strings it gives the caller to free.
 */
#include "manifest.h"

#include "json.h"
#include "log.h"
#include "valid.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN (64 * 1024)
#define NAME_MAX_LEN 4096
#define URL_MAX_LEN 2048

static int fail(char *why, size_t whylen, const char *msg)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", msg);
	return -EINVAL;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* "2024-05-01T12:34:56.000Z" (fraction optional; Z, +hh:mm or none). */
static int parse_iso8601(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t t;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) ||
	    *s++ != '-' || digits(&s, 2, &d) ||
	    (*s != 'T' && *s != 't' && *s != ' '))
		return -1;
	s++;
	if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) ||
	    *s++ != ':' || digits(&s, 2, &sec))
		return -1;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -1;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if (digits(&s, 2, &oh))
			return -1;
		if (*s == ':')
			s++;
		if (digits(&s, 2, &om) || oh > 23 || om > 59)
			return -1;
	}
	if (*s)
		return -1;
	if (y < 1970 || cp_utc_time(y, mo, d, h, mi, sec, &t))
		return -1;
	*out = t - sign * (oh * 3600 + om * 60);
	return 0;
}


/* Copies an optional string member; NULL/absent leaves *dst NULL. */
static int opt_string(const cJSON *obj, const char *key, char **dst, char *why,
		      size_t whylen)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
	char msg[64];

	if (!item || cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsString(item) || !item->valuestring ||
	    strlen(item->valuestring) > NAME_MAX_LEN) {
		snprintf(msg, sizeof(msg), "\"%s\" is not a string", key);
		return fail(why, whylen, msg);
	}
	*dst = strdup(item->valuestring);
	if (!*dst)
		return fail(why, whylen, "out of memory");
	return 0;
}

static int parse_json(const char *text, size_t len, struct cp_manifest_entry *e,
		      char *why, size_t whylen)
{
	const cJSON *obj, *data, *item;
	cJSON *root;
	int res = -EINVAL;

	root = cp_json_parse_exact(text, len);
	if (!root)
		return fail(why, whylen, "malformed JSON");
	obj = root;
	if (!cJSON_IsObject(obj)) {
		fail(why, whylen, "not a JSON object");
		goto out;
	}
	data = cJSON_GetObjectItemCaseSensitive(root, "data");
	if (data) {
		if (!cJSON_IsObject(data)) {
			fail(why, whylen, "\"data\" is not an object");
			goto out;
		}
		obj = data;
	}
	item = cJSON_GetObjectItemCaseSensitive(obj, "id");
	if (!cJSON_IsString(item) || !cp_objectid_valid(item->valuestring)) {
		fail(why, whylen, "\"id\" is missing or not an ObjectId");
		goto out;
	}
	memcpy(e->id, item->valuestring, CP_ID_BUF);

	item = cJSON_GetObjectItemCaseSensitive(obj, "size");
	if (item && !cJSON_IsNull(item)) {
		double v = item->valuedouble;

		if (!cJSON_IsNumber(item) || !(v >= 0) || v != floor(v) ||
		    v > 9007199254740992.0) {
			fail(why, whylen,
			     "\"size\" is not a non-negative integer");
			goto out;
		}
		e->size = (int64_t)v;
	}

	item = cJSON_GetObjectItemCaseSensitive(obj, "createdAt");
	if (item && !cJSON_IsNull(item)) {
		if (!cJSON_IsString(item) ||
		    parse_iso8601(item->valuestring, &e->created_at)) {
			fail(why, whylen,
			     "\"createdAt\" is not an ISO-8601 date");
			goto out;
		}
	}
	if (opt_string(obj, "name", &e->name, why, whylen) ||
	    opt_string(obj, "type", &e->content_type, why, whylen) ||
	    opt_string(obj, "purpose", &e->purpose, why, whylen))
		goto out;
	if (e->purpose && strcmp(e->purpose, "image") == 0) {
		char reason[128], msg[192];

		item = cJSON_GetObjectItemCaseSensitive(obj, "location");
		if (item && !cJSON_IsNull(item)) {
			if (!cJSON_IsString(item) || !item->valuestring ||
			    strlen(item->valuestring) > URL_MAX_LEN) {
				fail(why, whylen,
				     "\"location\" is not a string");
				goto out;
			}
			if (cp_url_check(item->valuestring, reason,
					 sizeof(reason))) {
				snprintf(msg, sizeof(msg),
					 "\"location\" refused: %s", reason);
				fail(why, whylen, msg);
				goto out;
			}
			e->location = strdup(item->valuestring);
			if (!e->location) {
				fail(why, whylen, "out of memory");
				goto out;
			}
		}
	}
	res = CP_MANIFEST_ENTRY;
out:
	cJSON_Delete(root);
	return res;
}

int cp_manifest_parse_line(const char *line, size_t len,
			   struct cp_manifest_entry *entry, char *why,
			   size_t whylen)
{
	size_t start = 0, end = len;
	int res;

	memset(entry, 0, sizeof(*entry));
	entry->size = -1;
	entry->created_at = -1;
	if (why && whylen)
		why[0] = '\0';
	if (!line)
		return CP_MANIFEST_SKIP;
	while (start < end && isspace((unsigned char)line[start]))
		start++;
	while (end > start && isspace((unsigned char)line[end - 1]))
		end--;
	if (start == end || line[start] == '#')
		return CP_MANIFEST_SKIP;
	if (memchr(line + start, '\0', end - start))
		return fail(why, whylen, "line contains a NUL byte");
	if (line[start] == '{') {
		res = parse_json(line + start, end - start, entry, why, whylen);
		if (res < 0)
			cp_manifest_entry_clear(entry);
		return res;
	}
	if (end - start == CP_ID_LEN) {
		memcpy(entry->id, line + start, CP_ID_LEN);
		entry->id[CP_ID_LEN] = '\0';
		if (cp_objectid_valid(entry->id))
			return CP_MANIFEST_ENTRY;
		entry->id[0] = '\0';
	}
	return fail(why, whylen,
		    "not an ObjectId (24 hex digits) or a JSON object");
}

void cp_manifest_entry_clear(struct cp_manifest_entry *entry)
{
	if (!entry)
		return;
	free(entry->name);
	free(entry->content_type);
	free(entry->purpose);
	free(entry->location);
	entry->name = NULL;
	entry->content_type = NULL;
	entry->purpose = NULL;
	entry->location = NULL;
}

int cp_manifest_load(const char *path,
		     void (*fn)(const struct cp_manifest_entry *entry,
				void *arg),
		     void *arg, char *why, size_t whylen)
{
	struct cp_manifest_entry e;
	char reason[128];
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t n;
	int count = 0, res;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		int err = errno;

		if (why && whylen)
			snprintf(why, whylen, "cannot read %s: %s", path,
				 strerror(err));
		return -err;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (n > LINE_MAX_LEN) {
			cp_warn("%s:%u: line too long", path, lineno);
			continue;
		}
		res = cp_manifest_parse_line(line, (size_t)n, &e, reason,
					     sizeof(reason));
		if (res < 0) {
			cp_warn("%s:%u: %s", path, lineno, reason);
			continue;
		}
		if (res == CP_MANIFEST_ENTRY) {
			fn(&e, arg);
			cp_manifest_entry_clear(&e);
			count++;
		}
	}
	res = ferror(f) ? -EIO : count;
	if (res < 0 && why && whylen)
		snprintf(why, whylen, "cannot read %s: %s", path,
			 strerror(EIO));
	free(line);
	fclose(f);
	return res;
}
