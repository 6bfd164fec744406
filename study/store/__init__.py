"""The results folder: trial folders and the two tables (`results`), locks (`locks`), the per-trial audit log
(`events`), provenance (`provenance`), content ids (`ids`: the hash behind run keys, data and encoder ids)."""
