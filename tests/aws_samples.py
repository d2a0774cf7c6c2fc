"""AWS's documented sample events, with names replaced by this project's: the input of every test about
event routing and the Lambdas, so that they test against what AWS sends, not our assumptions.

Sample events (each builder below names its page):
  * SageMaker: "Events that Amazon SageMaker AI sends to Amazon EventBridge",
    https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
    (pipeline execution status, pipeline step status, model package state change);
  * S3: "Amazon S3 event notifications > EventBridge > Event message structure",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html (Object Created);
with names replaced by this project's.
"""

ACCOUNT, REGION = "123456789012", "us-east-1"


def pipeline_arn(name):
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{name}"


def doc_pipeline_status(pipeline, status="Succeeded"):
    arn = pipeline_arn(pipeline)
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73kd93ir",
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2021-03-15T16:10:11Z",
        "region": REGION,
        "resources": [arn, f"{arn}/execution/p4jn9xou8a8s"],
        "detail": {
            "pipelineExecutionDisplayName": "SomeDisplayName",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
            "executionStartTime": "2021-03-15T16:03:13Z",
            "executionEndTime": "2021-03-15T16:10:10Z",
            "pipelineExecutionDescription": "SomeDescription",
            "pipelineArn": arn,
            "pipelineExecutionArn": f"{arn}/execution/p4jn9xou8a8s",
        },
    }


def doc_step_status(pipeline, step="myprocessingstep1", status="Succeeded", failure_reason=None):
    arn = pipeline_arn(pipeline)
    event = {
        "version": "0",
        "id": "ea37ccbb-5e2b-05e9-4073-1daazc940304",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2021-03-15T16:10:10Z",
        "region": REGION,
        "resources": [arn, f"{arn}/execution/p4jn9xou8a8s"],
        "detail": {
            "metadata": {"processingJob": {"arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-p4jn9xou8a8s-myprocessingstep1-tmgxry49ug"}},
            "stepStartTime": "2021-03-15T16:03:14Z",
            "stepEndTime": "2021-03-15T16:10:09Z",
            "stepName": step,
            "stepType": "Processing",
            "previousStepStatus": "Executing",
            "currentStepStatus": status,
            "pipelineArn": arn,
            "pipelineExecutionArn": f"{arn}/execution/p4jn9xou8a8s",
        },
    }
    # Documented: "If the value of currentStepStatus is Failed, the event contains the failureReason field".
    if failure_reason is not None:
        event["detail"]["failureReason"] = failure_reason
    return event


def doc_model_package(group, approval="Rejected"):
    # The documented sample repeats "source" (once as a list); the duplicate is dropped here.
    arn = f"arn:aws:sagemaker:us-east-2:{ACCOUNT}:model-package/{group}/2"
    return {
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2021-02-24T17:00:14Z",
        "region": "us-east-2",
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": 2,
            "ModelPackageArn": arn,
            "CreationTime": "2021-02-24T17:00:14Z",
            "ModelPackageStatus": "Completed",
            "CertifyForMarketplace": False,
            "ModelApprovalStatus": approval,
            "MetadataProperties": {"GeneratedBy": f"arn:aws:sagemaker:us-east-2:{ACCOUNT}:pipeline/{group}/execution/4r83jejmhorv"},
            "LastModifiedTime": "2021-02-24T17:00:14Z",
        },
    }


def doc_object_created(bucket, key, detail_type="Object Created"):
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2021-11-12T00:00:00Z",
        "region": "ca-central-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                       "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def doc_fail_step(pipeline, step, message=None):
    """The documented step sample for a Fail step: stepType "Fail", no processing job. Whether and how
    failureReason carries the FailStep's message is not documented, so it is optional here."""
    event = doc_step_status(pipeline, step, "Failed", message)
    event["detail"]["stepType"] = "Fail"
    event["detail"]["metadata"] = {}
    return event
