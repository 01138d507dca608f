/* opts.c: not written yet */
