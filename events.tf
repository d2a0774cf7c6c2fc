# Event routing, read by Terraform and by the offline runtime (local_runtime/terraform.py, tfparse).
# Everything per pipeline comes from contracts/pipelines.json (local.contracts): which pipelines data arrival
# or a quality breach starts, the step names and the breach marker. Adding a pipeline adds no block here.
# Pipeline ARNs are matched by case-insensitive suffix so that the patterns do not depend on the
# account id and region (SageMaker lower-cases pipeline names in ARNs).

locals {
  # S3 prefixes whose "Object Created" events start a pipeline (contract: started_by.data_arrival).
  arrival_prefixes = {
    training        = "${var.bucket_prefix}/${var.bucket_train_prefix}/"
    inference_input = "${var.bucket_prefix}/${var.bucket_inf_prefix}/input/"
  }
  data_arrival_starts = {
    for key, p in local.contracts.pipelines : key => local.arrival_prefixes[p.started_by.data_arrival]
    if try(p.started_by.data_arrival, null) != null
  }
  # Pipelines started by a model-quality breach of another pipeline (contract: started_by.breach_of).
  breach_starts = {
    for key, p in local.contracts.pipelines : key => p.started_by.breach_of
    if try(p.started_by.breach_of, null) != null
  }

  # THE model-quality breach pattern: the only place that says which event means "retrain".
  # The watched pipeline reaches the FailStep named by started_by.breach_step only when its mse
  # condition (steps.model_quality_condition) finds mse > threshold; a crashing step never reaches it. The pattern
  # uses only fields of AWS's documented "Pipeline step state change" sample (SageMaker developer guide,
  # "Automating SageMaker with EventBridge"): pipelineArn, stepName, currentStepStatus. The docs do not
  # say what failureReason holds for a Fail step, so (stricter reading) the pattern does not depend on
  # it; the breach marker that starts the FailStep's message is for notifications and people.
  breach_event_patterns = {
    for key, source in local.breach_starts : key => {
      source        = ["aws.sagemaker"]
      "detail-type" = ["SageMaker Model Building Pipeline Execution Step Status Change"]
      detail = {
        pipelineArn       = [{ suffix = { "equals-ignore-case" = ":pipeline/${local.pipeline_names[source]}" } }]
        stepName          = [local.contracts.steps[local.contracts.pipelines[key].started_by.breach_step]]
        currentStepStatus = ["Failed"]
      }
    }
  }

  # Every pipeline of the contract, for the notification rules.
  our_pipeline_arn_filters = [for name in values(local.pipeline_names) : { suffix = { "equals-ignore-case" = ":pipeline/${name}" } }]

  # Rules whose target is the starter Lambda: {rule key: pipeline key}.
  starter_rules = merge(
    { for key, prefix in local.data_arrival_starts : "${key}-data-arrival" => key },
    { for key, source in local.breach_starts : "${key}-on-breach" => key },
  )

  # SageMaker state changes a Lambda acts on: {rule key: description, the function (lambda.tf key) it
  # invokes, the event's detail-type and detail filter, the input transformer if any}.
  state_change_rules = merge(
    {
      pipeline_status = {
        description = "Terminal status of the executions of every pipeline of the contract"
        function    = "notification"
        detail_type = "SageMaker Model Building Pipeline Execution Status Change"
        detail      = { currentPipelineExecutionStatus = ["Succeeded", "Failed", "Stopped"], pipelineArn = local.our_pipeline_arn_filters }
      }
      # Step successes are routed too: the Lambda publishes them only for the data-quality check
      # (violation report) and for (step, status) pairs of custom_notification_config, so that
      # configuration changes need no pattern change.
      step_status = {
        description = "Step failures and completions of every pipeline of the contract"
        function    = "notification"
        detail_type = "SageMaker Model Building Pipeline Execution Step Status Change"
        detail      = { currentStepStatus = ["Failed", "Succeeded", "Stopped"], pipelineArn = local.our_pipeline_arn_filters }
      }
      model_package_status = {
        description = "Registration and approval changes of the model package group"
        function    = "notification"
        detail_type = "SageMaker Model Package State Change"
        detail      = { ModelPackageGroupName = [local.model_package_group_name] }
      }
    },
    # Approval -> GitLab deploy, with a compact input for the deploy Lambda (it also accepts the raw event).
    local.deploy_trigger_enabled ? {
      model_approved = {
        description = "A model package of the group was approved (deploy) or rejected (rollback when it served): trigger the GitLab deploy pipeline"
        function    = "deploy_trigger"
        detail_type = "SageMaker Model Package State Change"
        detail      = { ModelPackageGroupName = [local.model_package_group_name], ModelApprovalStatus = ["Approved", "Rejected"] }
        input_transformer = {
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
      }
    } : {},
  )
}

# ---------------------------------------------------------------- data arrival (S3 -> EventBridge -> starter Lambda)
# The starter Lambda passes the object's key as a pipeline parameter and derives the
# StartPipelineExecution ClientRequestToken from bucket/key/version (or etag): one object version
# starts at most one execution, however often the event is delivered.
resource "aws_cloudwatch_event_rule" "data_arrival" {
  for_each    = local.data_arrival_starts
  name        = "mlops-${var.environment}-${replace(each.key, "_", "-")}-data-arrival"
  description = "New data under ${each.value} starts the ${each.key} pipeline (through the starter Lambda)"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.bucket_name] }
      object = { key = [{ prefix = each.value }] }
    }
  })
}

# ---------------------------------------------------------------- retraining on a real quality breach
resource "aws_cloudwatch_event_rule" "model_quality_breach" {
  for_each      = local.breach_starts
  name          = "mlops-${var.environment}-${replace(each.key, "_", "-")}-on-breach"
  description   = "${local.contracts.steps[local.contracts.pipelines[each.key].started_by.breach_step]} (${local.contracts.markers.model_quality_breach}) of ${local.pipeline_names[each.value]}: start ${each.key}"
  event_pattern = jsonencode(local.breach_event_patterns[each.key])
}

# ---------------------------------------------------------------- optional schedules
# var.pipeline_schedules: {pipeline key: cron(...) or rate(...)}. A scheduled run starts with the
# pipeline's default parameters (no object), straight from EventBridge.
resource "aws_cloudwatch_event_rule" "schedule" {
  for_each            = var.pipeline_schedules
  name                = "mlops-${var.environment}-${replace(each.key, "_", "-")}-schedule"
  description         = "Scheduled ${each.key} pipeline run"
  schedule_expression = each.value
}

resource "aws_cloudwatch_event_target" "schedule" {
  for_each = var.pipeline_schedules
  rule     = aws_cloudwatch_event_rule.schedule[each.key].name
  arn      = local.pipeline_arns[each.key]
  role_arn = aws_iam_role.events_start_pipelines[0].arn

  sagemaker_pipeline_target {}

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# ---------------------------------------------------------------- SageMaker state changes (notifications, deploy)
# The notification Lambda receives the raw event (it needs the event id for deduplication and
# the step metadata for the data-quality report), so its targets have no input_transformer.
resource "aws_cloudwatch_event_rule" "state_change" {
  for_each    = local.state_change_rules
  name        = "mlops-${var.environment}-${replace(each.key, "_", "-")}"
  description = each.value.description
  event_pattern = jsonencode({
    source        = ["aws.sagemaker"]
    "detail-type" = [each.value.detail_type]
    detail        = each.value.detail
  })
}

# ---------------------------------------------------------------- Lambda targets
# Every rule that invokes a Lambda, by rule key: the function (lambda.tf key) and its input
# transformer (none or one). Starts go through the starter Lambda with an input that names the
# pipeline key and carries the whole event (predefined variable aws.events.event.json, EventBridge
# input transformation).
locals {
  lambda_targets = merge(
    { for key, pipeline in local.starter_rules : key => {
      function           = "start_pipeline"
      input_transformers = [{ input_paths = {}, input_template = "{\"pipeline\": \"${pipeline}\", \"event\": <aws.events.event.json>}" }]
    } },
    { for key, rule in local.state_change_rules : key => {
      function           = rule.function
      input_transformers = try([rule.input_transformer], [])
    } },
  )
  # The rules those targets belong to, by the same keys.
  lambda_target_rules = merge(
    { for key, rule in aws_cloudwatch_event_rule.data_arrival : "${key}-data-arrival" => rule },
    { for key, rule in aws_cloudwatch_event_rule.model_quality_breach : "${key}-on-breach" => rule },
    aws_cloudwatch_event_rule.state_change,
  )
}

resource "aws_cloudwatch_event_target" "lambda" {
  for_each = local.lambda_targets
  rule     = local.lambda_target_rules[each.key].name
  arn      = aws_lambda_function.this[each.value.function].arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  # After the static blocks: tfparse (how the offline runtime reads this file) drops a dynamic block
  # that precedes them.
  dynamic "input_transformer" {
    for_each = each.value.input_transformers
    content {
      input_paths    = input_transformer.value.input_paths
      input_template = input_transformer.value.input_template
    }
  }
}

resource "aws_lambda_permission" "events" {
  for_each      = local.lambda_targets
  statement_id  = "AllowEventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.value.function].function_name
  principal     = "events.amazonaws.com"
  source_arn    = local.lambda_target_rules[each.key].arn
}
