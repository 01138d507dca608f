/*
 * curlopt.h - the settings every curl handle of cpfs carries.
 *
 * One place for what keeps a transfer safe, so the API client (api.c),
 * the fetch engine (fetch.c) and the kept connections of random reads
 * (conn.c) cannot drift apart: http and https only (also after a
 * redirect, which is never followed: the callers decide what a 3xx
 * means), no signals (the handles run on many threads), TLS peers and
 * host names verified, against the configured CA bundle when there is
 * one.
 *
 * Thread safety: touches only the handle it is given.
 */
#ifndef CP_CURLOPT_H
#define CP_CURLOPT_H

#include <curl/curl.h>

struct cp_config;

void cp_curl_safe_defaults(CURL *easy, const struct cp_config *cfg);

#endif
