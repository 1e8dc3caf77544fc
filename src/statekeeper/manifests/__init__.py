"""Sources: files, directories, stdin and rendered kustomize overlays, read into Resources."""
