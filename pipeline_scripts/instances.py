"""vCPUs of a SageMaker ML instance type, from the EC2 size naming every ml.* family follows.

Used for the batch-transform default MaxConcurrentTransforms: CreateTransformJob sends one request at a time
per instance unless it is set ("If MaxConcurrentTransforms is set to 0 or left unset, SageMaker checks the
optional execution-parameters [...]. If the execution-parameters endpoint is not enabled, the default value is
1", https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html), and the
scikit-learn serving container does not serve execution-parameters; its model server starts one worker per
vCPU, so one request at a time leaves all but one core idle.
"""
from __future__ import annotations

import re

# EC2 sizes: large = 2 vCPUs, xlarge = 4, Nxlarge = 4 N (m5, c5, r5, m6i, c6i, g4dn, ...); t2/t3 medium = 2
_SIZE_VCPUS = {"medium": 2, "large": 2, "xlarge": 4}


def vcpus(instance_type: str) -> int:
    """vCPUs of ``ml.<family>.<size>``; 1 for a size it cannot read (the API's own default)."""
    size = instance_type.rsplit(".", 1)[-1]
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    match = re.fullmatch(r"(\d+)xlarge", size)
    return 4 * int(match.group(1)) if match else 1
