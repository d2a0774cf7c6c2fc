# ------------------------------------------------------------ shared: DLQ and idempotency store
resource "aws_sqs_queue" "dlq" {
  name                      = "${local.name_prefix}-mlops-events-dlq"
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = 1209600 # 14 days, the SQS maximum: time to inspect and redrive
}

# EventBridge targets put events they could not deliver here (Lambda async failures use
# the function's role instead).
resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeRulesOfThisStack"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.dlq.arn
      Condition = {
        ArnLike = { "aws:SourceArn" = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.name_prefix}-*" }
      }
    }]
  })
}

# Duplicate suppression: a conditional put keyed by the EventBridge event id. SNS FIFO
# deduplication is not an option because FIFO topics cannot have e-mail subscriptions.
resource "aws_dynamodb_table" "idempotency" {
  name         = "${local.name_prefix}-mlops-notification-idempotency"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "idempotency_key"

  attribute {
    name = "idempotency_key"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

# The contract as the Lambdas see it (names defined in contracts.json's _comment): JSON strings.
locals {
  contract_env = {
    CONTRACT_STEPS   = jsonencode(local.contracts.steps)
    CONTRACT_MARKERS = jsonencode(local.contracts.markers)
    CONTRACT_PIPELINES = jsonencode({
      for key, p in local.contracts.pipelines : key => { name = local.pipeline_names[key], started_by = p.started_by }
    })
  }
  # Custom notification texts name steps by contract role; the Lambda gets the step names.
  custom_notification_config = [
    for c in var.custom_notification_config : {
      step_name           = local.contracts.steps[c.step_role]
      step_status         = c.step_status
      step_custom_message = c.step_custom_message
    }
  ]
}

# A message in the DLQ means an event was lost to its target (a pipeline that did not start, a
# notification not sent): alarm on the first one.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${local.name_prefix}-mlops-events-dlq-not-empty"
  alarm_description   = "Events that EventBridge or a Lambda could not deliver are waiting in ${aws_sqs_queue.dlq.name}; inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.notifications.arn]
  ok_actions          = [aws_sns_topic.notifications.arn]
}

# ------------------------------------------------------------ notification Lambda
resource "aws_cloudwatch_log_group" "notification" {
  name              = "/aws/lambda/${var.notification_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_lambda_function" "notification" {
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and an S3-hosted signed package; set var.code_signing_config_arn to enforce it. The zip is built reproducibly in CI and its hash is pinned by source_code_hash.
  function_name                  = var.notification_function_name
  description                    = "SageMaker pipeline/step/model package events -> SNS notifications"
  role                           = aws_iam_role.notification.arn
  runtime                        = var.lambda_runtime
  handler                        = "notification.lambda_handler"
  filename                       = var.lambda_zip_path
  source_code_hash               = local.lambda_zip_hash
  timeout                        = 60
  memory_size                    = 256
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  code_signing_config_arn        = var.code_signing_config_arn == "" ? null : var.code_signing_config_arn

  environment {
    variables = {
      SNS_TOPIC_ARN              = aws_sns_topic.notifications.arn
      CUSTOM_NOTIFICATION_CONFIG = jsonencode(local.custom_notification_config)
      IDEMPOTENCY_TABLE          = aws_dynamodb_table.idempotency.name
      IDEMPOTENCY_TTL_HOURS      = tostring(var.idempotency_ttl_hours)
      ENVIRONMENT                = var.environment
      NOTIFY_CLEAN_RUNS          = tostring(var.notify_clean_runs)
      CONTRACT_STEPS             = local.contract_env.CONTRACT_STEPS
      CONTRACT_MARKERS           = local.contract_env.CONTRACT_MARKERS
      CONTRACT_PIPELINES         = local.contract_env.CONTRACT_PIPELINES
    }
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = [var.subnet_id]
    security_group_ids = [var.sg_id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.notification.name
  }

  depends_on = [aws_iam_role_policy.notification, aws_iam_role_policy_attachment.notification_vpc]
}

# Async invocations from EventBridge: retried twice by Lambda, then sent to the DLQ.
resource "aws_lambda_function_event_invoke_config" "notification" {
  function_name                = aws_lambda_function.notification.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

resource "aws_lambda_permission" "notification_events" {
  for_each = {
    pipeline_status      = aws_cloudwatch_event_rule.pipeline_status.arn
    step_status          = aws_cloudwatch_event_rule.step_status.arn
    model_package_status = aws_cloudwatch_event_rule.model_package_status.arn
  }
  statement_id  = "AllowEventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.notification.function_name
  principal     = "events.amazonaws.com"
  source_arn    = each.value
}

# ------------------------------------------------------------ deploy trigger Lambda
resource "aws_cloudwatch_log_group" "deploy_trigger" {
  count             = local.deploy_trigger_enabled ? 1 : 0
  name              = "/aws/lambda/${var.deploy_trigger_function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_lambda_function" "deploy_trigger" {
  #checkov:skip=CKV_AWS_272:Same package and reasoning as the notification Lambda; set var.code_signing_config_arn to enforce signing.
  count                          = local.deploy_trigger_enabled ? 1 : 0
  function_name                  = var.deploy_trigger_function_name
  description                    = "Approved model package -> GitLab pipeline trigger (deploy)"
  role                           = aws_iam_role.deploy_trigger[0].arn
  runtime                        = var.lambda_runtime
  handler                        = "deploy_trigger.lambda_handler"
  filename                       = var.lambda_zip_path
  source_code_hash               = local.lambda_zip_hash
  timeout                        = 30
  memory_size                    = 128
  reserved_concurrent_executions = 1 # one deploy trigger at a time
  kms_key_arn                    = aws_kms_key.this.arn
  code_signing_config_arn        = var.code_signing_config_arn == "" ? null : var.code_signing_config_arn

  environment {
    variables = {
      GITLAB_API_URL                  = var.gitlab_api_url
      GITLAB_PROJECT_ID               = var.gitlab_project_id
      GITLAB_TRIGGER_TOKEN_SECRET_ARN = var.gitlab_trigger_token_secret_arn
      GITLAB_TRIGGER_REF              = var.gitlab_trigger_ref
      MODEL_PACKAGE_GROUP_NAME        = local.model_package_group_name
      DEPLOY_ENVIRONMENT              = var.environment
      IDEMPOTENCY_TABLE               = aws_dynamodb_table.idempotency.name
      IDEMPOTENCY_TTL_HOURS           = tostring(var.idempotency_ttl_hours)
    }
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = [var.subnet_id]
    security_group_ids = [var.sg_id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.deploy_trigger[0].name
  }

  depends_on = [aws_iam_role_policy.deploy_trigger, aws_iam_role_policy_attachment.deploy_trigger_vpc]
}

resource "aws_lambda_function_event_invoke_config" "deploy_trigger" {
  count                        = local.deploy_trigger_enabled ? 1 : 0
  function_name                = aws_lambda_function.deploy_trigger[0].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

resource "aws_lambda_permission" "deploy_trigger_events" {
  count         = local.deploy_trigger_enabled ? 1 : 0
  statement_id  = "AllowEventBridge-model-approved"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.deploy_trigger[0].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.model_approved[0].arn
}

# ------------------------------------------------------------ pipeline starter Lambda
# Data arrival and quality breaches start pipelines through this function (events.tf): it passes
# the arrived object's key as the pipeline parameter the contract names, makes the start idempotent
# (ClientRequestToken from bucket/key/version or etag, or from the breached execution) and keeps at
# most one execution of a breach-started pipeline running.
resource "aws_cloudwatch_log_group" "start_pipeline" {
  name              = "/aws/lambda/${local.name_prefix}-start-pipeline"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_lambda_function" "start_pipeline" {
  #checkov:skip=CKV_AWS_272:Same package and reasoning as the notification Lambda; set var.code_signing_config_arn to enforce signing.
  function_name = "${local.name_prefix}-start-pipeline"
  description   = "S3 data arrival / model-quality breach -> idempotent StartPipelineExecution"
  role          = aws_iam_role.start_pipeline.arn
  runtime       = var.lambda_runtime
  handler       = "start_pipeline.lambda_handler"
  filename      = var.lambda_zip_path
  # one start at a time: the "at most one breach-started execution" check and the start cannot interleave
  source_code_hash               = local.lambda_zip_hash
  timeout                        = 60
  memory_size                    = 128
  reserved_concurrent_executions = 1
  kms_key_arn                    = aws_kms_key.this.arn
  code_signing_config_arn        = var.code_signing_config_arn == "" ? null : var.code_signing_config_arn

  environment {
    variables = {
      CONTRACT_PIPELINES = local.contract_env.CONTRACT_PIPELINES
      SNS_TOPIC_ARN      = aws_sns_topic.notifications.arn
      ENVIRONMENT        = var.environment
    }
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = [var.subnet_id]
    security_group_ids = [var.sg_id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.start_pipeline.name
  }

  depends_on = [aws_iam_role_policy.start_pipeline, aws_iam_role_policy_attachment.start_pipeline_vpc]
}

resource "aws_lambda_function_event_invoke_config" "start_pipeline" {
  function_name                = aws_lambda_function.start_pipeline.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600
}

resource "aws_lambda_permission" "start_pipeline_events" {
  for_each      = local.starter_rules
  statement_id  = "AllowEventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.start_pipeline.function_name
  principal     = "events.amazonaws.com"
  source_arn    = endswith(each.key, "-on-breach") ? aws_cloudwatch_event_rule.model_quality_breach[each.value].arn : aws_cloudwatch_event_rule.data_arrival[each.value].arn
}
