/* files.c: not written yet */
