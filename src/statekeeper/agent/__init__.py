"""The runtime agent: Fail-Safe Integrity restore, Litestream + rclone sidecar, restore drills."""
