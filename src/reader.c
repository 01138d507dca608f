/* reader.c: not written yet */
