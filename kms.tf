# One customer managed key for everything this stack stores: SNS topic, SQS DLQ,
# DynamoDB idempotency table, Lambda environment variables and CloudWatch log groups.
resource "aws_kms_key" "this" {
  description             = "${local.name_prefix} notifications, DLQ, idempotency table, Lambda env and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name_prefix}-mlops-notifications"
  target_key_id = aws_kms_key.this.key_id
}

locals {
  # AWS services that use the key on this account's behalf: the actions each needs and the
  # condition that confines it to this stack's resources or this account.
  kms_service_grants = {
    CloudWatchLogsEncryptLambdaLogGroups = {
      service   = "logs.${local.region}.amazonaws.com"
      actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      condition = { test = "ArnLike", variable = "kms:EncryptionContext:aws:logs:arn", values = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/*"] }
    }
    # EventBridge writes undeliverable events to the encrypted DLQ.
    EventBridgeWriteEncryptedDlq = {
      service   = "events.amazonaws.com"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      condition = local.this_account
    }
    # The DLQ alarm publishes to the encrypted SNS topic.
    CloudWatchAlarmsPublishToEncryptedTopic = {
      service   = "cloudwatch.amazonaws.com"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
      condition = local.this_account
    }
  }
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: "*" means this key only, and the account-root statement is required so IAM can manage the key.
  #checkov:skip=CKV_AWS_111:Key policy: "*" means this key only; service statements are constrained by SourceAccount / encryption context.
  #checkov:skip=CKV_AWS_356:Key policy: the resource of a key policy statement is always "*" (the key itself).
  # Key policies need an account root statement, otherwise IAM policies cannot grant use
  # of the key and it becomes unmanageable. "*" in a key policy means "this key".
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = local.kms_service_grants
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = ["*"]
      principals {
        type        = "Service"
        identifiers = [statement.value.service]
      }
      condition {
        test     = statement.value.condition.test
        variable = statement.value.condition.variable
        values   = statement.value.condition.values
      }
    }
  }
}
