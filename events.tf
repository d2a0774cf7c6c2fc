# Single source of truth for event routing, read by Terraform and by the offline runtime
# (python-hcl2). Conventions that keep it machine-readable:
#   - event_pattern is heredoc JSON whose only interpolations are ${var.NAME};
#   - SageMaker pipeline targets use local.pipeline_arns.{train,trainwhpo,inf}
#     (= the pipeline named by var.pipeline_train / pipeline_trainwhpo / pipeline_inf);
#   - optional rules use count = <condition on var.*> ? 1 : 0.
# Pipeline ARNs are matched by case-insensitive suffix so that the patterns do not depend on
# the account id and region.

# ---------------------------------------------------------------- data arrival (S3 -> EventBridge)
resource "aws_cloudwatch_event_rule" "training_data_arrival" {
  name          = "mlops-${var.environment}-training-data-arrival"
  description   = "New training data under <bucket_prefix>/<bucket_train_prefix>/ starts the training pipeline"
  event_pattern = <<-JSON
    {
      "source": ["aws.s3"],
      "detail-type": ["Object Created"],
      "detail": {
        "bucket": {"name": ["${var.bucket_name}"]},
        "object": {"key": [{"prefix": "${var.bucket_prefix}/${var.bucket_train_prefix}/"}]}
      }
    }
  JSON
}

resource "aws_cloudwatch_event_target" "training_data_arrival" {
  rule     = aws_cloudwatch_event_rule.training_data_arrival.name
  arn      = local.pipeline_arns.train
  role_arn = aws_iam_role.events_start_pipelines.arn

  sagemaker_pipeline_target {}

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_cloudwatch_event_rule" "inference_data_arrival" {
  name          = "mlops-${var.environment}-inference-data-arrival"
  description   = "New inference data under <bucket_prefix>/<bucket_inf_prefix>/input/ starts the batch inference pipeline"
  event_pattern = <<-JSON
    {
      "source": ["aws.s3"],
      "detail-type": ["Object Created"],
      "detail": {
        "bucket": {"name": ["${var.bucket_name}"]},
        "object": {"key": [{"prefix": "${var.bucket_prefix}/${var.bucket_inf_prefix}/input/"}]}
      }
    }
  JSON
}

resource "aws_cloudwatch_event_target" "inference_data_arrival" {
  rule     = aws_cloudwatch_event_rule.inference_data_arrival.name
  arn      = local.pipeline_arns.inf
  role_arn = aws_iam_role.events_start_pipelines.arn

  sagemaker_pipeline_target {}

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# ---------------------------------------------------------------- optional schedules
resource "aws_cloudwatch_event_rule" "training_schedule" {
  count               = var.training_schedule_expression == "" ? 0 : 1
  name                = "mlops-${var.environment}-training-schedule"
  description         = "Scheduled training pipeline run"
  schedule_expression = var.training_schedule_expression
}

resource "aws_cloudwatch_event_target" "training_schedule" {
  count    = var.training_schedule_expression == "" ? 0 : 1
  rule     = aws_cloudwatch_event_rule.training_schedule[0].name
  arn      = local.pipeline_arns.train
  role_arn = aws_iam_role.events_start_pipelines.arn

  sagemaker_pipeline_target {}

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_cloudwatch_event_rule" "inference_schedule" {
  count               = var.inference_schedule_expression == "" ? 0 : 1
  name                = "mlops-${var.environment}-inference-schedule"
  description         = "Scheduled batch inference pipeline run"
  schedule_expression = var.inference_schedule_expression
}

resource "aws_cloudwatch_event_target" "inference_schedule" {
  count    = var.inference_schedule_expression == "" ? 0 : 1
  rule     = aws_cloudwatch_event_rule.inference_schedule[0].name
  arn      = local.pipeline_arns.inf
  role_arn = aws_iam_role.events_start_pipelines.arn

  sagemaker_pipeline_target {}

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# ---------------------------------------------------------------- retraining on a real quality breach
# Only a ModelQualityCalcStep failure whose failureReason carries "ModelQualityBreach" (written by
# scripts/model_quality.py when MSE > threshold) starts HPO retraining; crashes do not.
resource "aws_cloudwatch_event_rule" "model_quality_breach" {
  name          = "mlops-${var.environment}-model-quality-breach"
  description   = "ModelQualityCalcStep failed with ModelQualityBreach: start the HPO training pipeline"
  event_pattern = <<-JSON
    {
      "source": ["aws.sagemaker"],
      "detail-type": ["SageMaker Model Building Pipeline Execution Step Status Change"],
      "detail": {
        "pipelineArn": [{"suffix": {"equals-ignore-case": ":pipeline/${var.pipeline_inf}"}}],
        "stepName": ["ModelQualityCalcStep"],
        "currentStepStatus": ["Failed"],
        "failureReason": [{"wildcard": "*ModelQualityBreach*"}]
      }
    }
  JSON
}

resource "aws_cloudwatch_event_target" "model_quality_breach" {
  rule     = aws_cloudwatch_event_rule.model_quality_breach.name
  arn      = local.pipeline_arns.trainwhpo
  role_arn = aws_iam_role.events_start_pipelines.arn

  sagemaker_pipeline_target {}

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# ---------------------------------------------------------------- notifications
resource "aws_cloudwatch_event_rule" "pipeline_status" {
  name          = "mlops-${var.environment}-pipeline-status"
  description   = "Terminal status of the training, HPO and inference pipeline executions"
  event_pattern = <<-JSON
    {
      "source": ["aws.sagemaker"],
      "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
      "detail": {
        "currentPipelineExecutionStatus": ["Succeeded", "Failed", "Stopped"],
        "pipelineArn": [
          {"suffix": {"equals-ignore-case": ":pipeline/${var.pipeline_train}"}},
          {"suffix": {"equals-ignore-case": ":pipeline/${var.pipeline_trainwhpo}"}},
          {"suffix": {"equals-ignore-case": ":pipeline/${var.pipeline_inf}"}}
        ]
      }
    }
  JSON
}

# Step successes are routed too: the Lambda publishes them only for DataQualityCheckStep
# (violation report) and for (step, status) pairs of custom_notification_config, so that
# configuration changes need no pattern change.
resource "aws_cloudwatch_event_rule" "step_status" {
  name          = "mlops-${var.environment}-step-status"
  description   = "Step failures and completions of the training, HPO and inference pipelines"
  event_pattern = <<-JSON
    {
      "source": ["aws.sagemaker"],
      "detail-type": ["SageMaker Model Building Pipeline Execution Step Status Change"],
      "detail": {
        "currentStepStatus": ["Failed", "Succeeded", "Stopped"],
        "pipelineArn": [
          {"suffix": {"equals-ignore-case": ":pipeline/${var.pipeline_train}"}},
          {"suffix": {"equals-ignore-case": ":pipeline/${var.pipeline_trainwhpo}"}},
          {"suffix": {"equals-ignore-case": ":pipeline/${var.pipeline_inf}"}}
        ]
      }
    }
  JSON
}

resource "aws_cloudwatch_event_rule" "model_package_status" {
  name          = "mlops-${var.environment}-model-package-status"
  description   = "Registration and approval changes of the model package group"
  event_pattern = <<-JSON
    {
      "source": ["aws.sagemaker"],
      "detail-type": ["SageMaker Model Package State Change"],
      "detail": {
        "ModelPackageGroupName": ["${var.model_package_group_name}"]
      }
    }
  JSON
}

# The notification Lambda receives the raw event (it needs the event id for deduplication and
# the step metadata for the data-quality report), so no input_transformer here.
resource "aws_cloudwatch_event_target" "pipeline_status" {
  rule = aws_cloudwatch_event_rule.pipeline_status.name
  arn  = aws_lambda_function.notification.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_cloudwatch_event_target" "step_status" {
  rule = aws_cloudwatch_event_rule.step_status.name
  arn  = aws_lambda_function.notification.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

resource "aws_cloudwatch_event_target" "model_package_status" {
  rule = aws_cloudwatch_event_rule.model_package_status.name
  arn  = aws_lambda_function.notification.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# ---------------------------------------------------------------- approval -> GitLab deploy
resource "aws_cloudwatch_event_rule" "model_approved" {
  count         = var.gitlab_project_id != "" && var.gitlab_api_url != "" && var.gitlab_trigger_token_secret_arn != "" ? 1 : 0
  name          = "mlops-${var.environment}-model-approved"
  description   = "A model package of the group was approved (deploy) or rejected (rollback when it served): trigger the GitLab deploy pipeline"
  event_pattern = <<-JSON
    {
      "source": ["aws.sagemaker"],
      "detail-type": ["SageMaker Model Package State Change"],
      "detail": {
        "ModelPackageGroupName": ["${var.model_package_group_name}"],
        "ModelApprovalStatus": ["Approved", "Rejected"]
      }
    }
  JSON
}

# Compact input for the deploy Lambda (it also accepts the raw event).
resource "aws_cloudwatch_event_target" "model_approved" {
  count = var.gitlab_project_id != "" && var.gitlab_api_url != "" && var.gitlab_trigger_token_secret_arn != "" ? 1 : 0
  rule  = aws_cloudwatch_event_rule.model_approved[0].name
  arn   = aws_lambda_function.deploy_trigger[0].arn

  input_transformer {
    input_paths = {
      event_id        = "$.id"
      group           = "$.detail.ModelPackageGroupName"
      package_arn     = "$.detail.ModelPackageArn"
      package_version = "$.detail.ModelPackageVersion"
      approval        = "$.detail.ModelApprovalStatus"
    }
    input_template = <<-JSON
      {"event_id": <event_id>, "model_package_group_name": <group>, "model_package_arn": <package_arn>, "model_package_version": <package_version>, "model_approval_status": <approval>}
    JSON
  }

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}
