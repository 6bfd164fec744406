"""Reader studies: blinded cases for radiologists (`export`), a small web app where they score them (`server`). What
their scores say about the configurations and the metrics is statistics, in analysis.readers. The folder they share
is described in `layout`."""
