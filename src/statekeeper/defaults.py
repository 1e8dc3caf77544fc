"""Where replicas go when nothing says otherwise: the S3 store (MinIO in the cluster) defaults.

`generate app`, `fix` (the backup it adds) and the agent read these, so the manifests
statekeeper writes and the agent that runs from them agree. Plain constants: importing this
module costs nothing.
"""

from __future__ import annotations

# The in-cluster MinIO of the strategy (namespace `minio`, Service `minio`, S3 API on 9000).
S3_ENDPOINT = "http://minio.minio.svc.cluster.local:9000"
# The bucket holding every app's replicas (one key prefix per app).
S3_BUCKET = "statekeeper"
# The Secret holding AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the agent.
S3_SECRET = "statekeeper-s3"
# How often the agent syncs config directories when the policy says nothing (strategy: 5-15 min).
SYNC_INTERVAL = "10m"
# MinIO ignores the region but S3 clients need one; AWS's default.
S3_REGION = "us-east-1"
