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

  statement {
    sid       = "CloudWatchLogsEncryptLambdaLogGroups"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/*"]
    }
  }

  # EventBridge writes undeliverable events to the encrypted DLQ.
  statement {
    sid       = "EventBridgeWriteEncryptedDlq"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # The DLQ alarm publishes to the encrypted SNS topic.
  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
