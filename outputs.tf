output "sns_topic_arn" {
  description = "SNS topic that receives pipeline notifications."
  value       = aws_sns_topic.notifications.arn
}

output "notification_lambda_arn" {
  description = "ARN of the notification Lambda."
  value       = aws_lambda_function.notification.arn
}

output "deploy_trigger_lambda_arn" {
  description = "ARN of the approval -> GitLab deploy trigger Lambda (null when disabled)."
  value       = try(aws_lambda_function.deploy_trigger[0].arn, null)
}

output "dead_letter_queue_url" {
  description = "SQS DLQ holding events that could not be delivered or processed."
  value       = aws_sqs_queue.dlq.id
}

output "idempotency_table_name" {
  description = "DynamoDB table used to suppress duplicate notifications."
  value       = aws_dynamodb_table.idempotency.name
}

output "kms_key_arn" {
  description = "KMS key encrypting the SNS topic, DLQ, idempotency table, Lambda env and logs."
  value       = aws_kms_key.this.arn
}

output "event_rule_names" {
  description = "EventBridge rules created by this stack."
  value = concat(
    [for r in aws_cloudwatch_event_rule.data_arrival : r.name],
    [for r in aws_cloudwatch_event_rule.model_quality_breach : r.name],
    [for r in aws_cloudwatch_event_rule.schedule : r.name],
    [aws_cloudwatch_event_rule.pipeline_status.name, aws_cloudwatch_event_rule.step_status.name, aws_cloudwatch_event_rule.model_package_status.name],
    [for r in aws_cloudwatch_event_rule.model_approved : r.name],
  )
}

output "pipeline_names" {
  description = "SageMaker pipeline names by contract key (contracts.json)."
  value       = local.pipeline_names
}

output "pipeline_arns" {
  description = "ARNs of the SageMaker pipelines this stack starts and watches."
  value       = local.pipeline_arns
}

output "model_package_group_name" {
  description = "Model package group whose state changes are notified and approvals deployed."
  value       = local.model_package_group_name
}

output "start_pipeline_lambda_arn" {
  description = "ARN of the Lambda that starts pipelines on data arrival and quality breaches."
  value       = aws_lambda_function.start_pipeline.arn
}
