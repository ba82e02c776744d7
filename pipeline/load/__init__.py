"""The load stage: one sync run end to end (extract, map, stage, post, record)."""
