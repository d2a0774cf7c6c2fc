resource "aws_sns_topic" "notifications" {
  name              = "${local.name_prefix}-sagemaker-pipeline-notifications"
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_policy" "notifications" {
  arn    = aws_sns_topic.notifications.arn
  policy = data.aws_iam_policy_document.resource_policy["notifications"].json
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.email_recipient)
  topic_arn = aws_sns_topic.notifications.arn
  protocol  = "email"
  endpoint  = each.value
}

# ------------------------------------------------------------ resource policies of the topic and the DLQ
# Only the notification and starter Lambdas and the DLQ alarm publish to the topic, and TLS is required
# for every request to it; only this stack's EventBridge rules write to the DLQ (Lambda async failures
# use the function's role instead). Statements: sid, effect (default Allow), actions, principals and
# an optional condition, on the policy's resource.
locals {
  resource_policies = {
    notifications = {
      resource = aws_sns_topic.notifications.arn
      statements = [
        { sid = "NotificationLambdaPublish", actions = ["sns:Publish"], principals = { type = "AWS", identifiers = [aws_iam_role.lambda["notification"].arn, aws_iam_role.lambda["start_pipeline"].arn] } },
        {
          sid        = "DeadLetterQueueAlarm"
          actions    = ["sns:Publish"]
          principals = { type = "Service", identifiers = ["cloudwatch.amazonaws.com"] }
          condition  = { test = "ArnLike", variable = "aws:SourceArn", values = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.name_prefix}-*"] }
        },
        {
          sid        = "DenyInsecureTransport"
          effect     = "Deny"
          actions    = ["sns:Publish", "sns:Subscribe", "sns:Receive"]
          principals = { type = "AWS", identifiers = ["*"] }
          condition  = { test = "Bool", variable = "aws:SecureTransport", values = ["false"] }
        },
      ]
    }
    dlq = {
      resource = aws_sqs_queue.dlq.arn
      statements = [{
        sid        = "EventBridgeRulesOfThisStack"
        actions    = ["sqs:SendMessage"]
        principals = { type = "Service", identifiers = ["events.amazonaws.com"] }
        condition  = { test = "ArnLike", variable = "aws:SourceArn", values = ["arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.name_prefix}-*"] }
      }]
    }
  }
}

data "aws_iam_policy_document" "resource_policy" {
  for_each = local.resource_policies

  dynamic "statement" {
    for_each = each.value.statements
    content {
      sid       = statement.value.sid
      effect    = try(statement.value.effect, "Allow")
      actions   = statement.value.actions
      resources = [each.value.resource]
      principals {
        type        = statement.value.principals.type
        identifiers = statement.value.principals.identifiers
      }
      dynamic "condition" {
        for_each = try([statement.value.condition], [])
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}
