"""The cheats' code, one file each (see autograder/examples/cheats.py): read as text and put
into a submission's cells, never imported. `attempt`, `must_find`, `CODE` and `COURSE` come from
the cheats' PRELUDE cell."""
