/* util.c: not written yet */
