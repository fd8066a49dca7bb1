"""Running a training job: device mesh and step compilation, feeding, several hosts,
checkpoints, the workdir guard and metric writers."""
