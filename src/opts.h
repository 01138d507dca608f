/*
 * opts.h - the command line: `cpfs [options] [API_URL] MOUNTPOINT`.
 *
 * cp_opts_parse() turns argv into a struct cp_config, validating
 * everything that can be validated before mounting (sizes, URL, key,
 * mountpoint), and builds the argument list handed to libfuse
 * (fuse_args) from the options that are libfuse's own.  The struct and
 * its defaults are in cfg.h, the validators it uses in valid.h: other
 * modules include those, not this header.
 *
 * Thread safety: called once from main() before any thread starts; the
 * resulting struct cp_config is read-only afterwards.
 */
#ifndef CP_OPTS_H
#define CP_OPTS_H

#include "cfg.h"

#include <stddef.h>

enum {
	CP_OPTS_MOUNT = 0, /* go on and mount */
	CP_OPTS_EXIT = 1,  /* -h or -V was printed: exit 0 */
	CP_OPTS_ERROR = -1 /* one line in @err: exit 1 */
};

/*
 * Parses @argv.  Reads the key from CHECKOUTPAGE_API_KEY or
 * api_key_file= (warns when the file is readable by group or others),
 * checks that the mountpoint is an existing empty directory.  On
 * CP_OPTS_ERROR, @err holds one line without a trailing newline.
 * The caller frees @cfg with cp_config_free() whatever the result.
 */
int cp_opts_parse(int argc, char **argv, struct cp_config *cfg, char *err,
		  size_t errlen);

void cp_config_free(struct cp_config *cfg);

#endif
