/* cache.c: not written yet */
