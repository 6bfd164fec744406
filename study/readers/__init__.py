"""Reader studies: blinded cases for radiologists (`export`), a small web app where they score them (`server`),
and what their scores say about the configurations and the metrics (`analyze`). The folder they share is described
in `layout`."""
