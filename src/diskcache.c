/* diskcache.c: not written yet */
