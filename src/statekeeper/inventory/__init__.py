"""The cluster as the strategy sees it: apps, workloads, claims, classes, schedules, namespaces."""
