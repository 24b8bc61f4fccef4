"""Optional execution layers: the `ray` executor runs grid trials as Ray Tune trials and detection as Ray Data
batches, producing the same files and tables as the local path (`creative_assets.detection`)."""
