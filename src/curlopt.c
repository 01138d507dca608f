/*
 * curlopt.c - the settings every curl handle of cpfs carries (curlopt.h).
 */
#include "curlopt.h"

#include "cfg.h"

void cp_curl_safe_defaults(CURL *easy, const struct cp_config *cfg)
{
	/* CURLOPT_PROTOCOLS_STR came with 7.85; meson accepts 7.68. */
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->cafile)
		curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->cafile);
}
