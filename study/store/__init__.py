"""The results folder: trial folders and the two tables (`results`), locks (`locks`), the per-trial audit log
(`events`), provenance (`provenance`)."""
