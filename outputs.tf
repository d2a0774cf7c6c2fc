output "notifications" {
  description = "Where notifications go: the SNS topic (e-mail subscriptions must be confirmed), the SQS DLQ holding events that could not be delivered or processed, and the DynamoDB table that suppresses duplicate notifications."
  value = {
    sns_topic_arn          = aws_sns_topic.notifications.arn
    dead_letter_queue_url  = aws_sqs_queue.dlq.id
    idempotency_table_name = aws_dynamodb_table.idempotency.name
  }
}

output "kms_key_arn" {
  description = "KMS key encrypting the SNS topic, DLQ, idempotency table, Lambda env and logs."
  value       = aws_kms_key.this.arn
}

output "lambda_function_arns" {
  description = "ARNs of the stack's Lambda functions by handler: notification, start_pipeline, and deploy_trigger when the GitLab settings are given."
  value       = { for key, fn in aws_lambda_function.this : key => fn.arn }
}

output "event_rule_names" {
  description = "EventBridge rules created by this stack."
  value = concat(
    [for r in aws_cloudwatch_event_rule.data_arrival : r.name],
    [for r in aws_cloudwatch_event_rule.model_quality_breach : r.name],
    [for r in aws_cloudwatch_event_rule.schedule : r.name],
    [for r in aws_cloudwatch_event_rule.state_change : r.name],
  )
}

output "pipelines" {
  description = "The SageMaker pipelines this stack starts and watches, by contract key (contracts/pipelines.json): name and ARN."
  value       = { for key, name in local.pipeline_names : key => { name = name, arn = local.pipeline_arns[key] } }
}

output "model_package_group_name" {
  description = "Model package group whose state changes are notified and approvals deployed."
  value       = local.model_package_group_name
}
