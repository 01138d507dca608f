/* fs.c: not written yet */
