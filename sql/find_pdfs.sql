-- The largest PDF files anywhere in the focus snapshot, with their paths (glob over paths).
SELECT path, size FROM find('*.pdf') ORDER BY size DESC, path LIMIT 20;
