# Trust policies of the stack's service roles: the service, acting for this account only.
data "aws_iam_policy_document" "assume_role" {
  for_each = toset(["lambda", "events"])

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["${each.key}.amazonaws.com"]
    }
    condition {
      test     = local.this_account.test
      variable = local.this_account.variable
      values   = local.this_account.values
    }
  }
}

# ------------------------------------------------------------ Lambda roles (one per function of lambda.tf)
locals {
  idempotency_actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]

  # Every function writes its own log group, sends what it could not process to the DLQ, uses the
  # stack key (encrypted environment, topic, queue, table) and traces with X-Ray; in between, the
  # statements of its entry in local.lambda_functions.
  lambda_policy_statements = {
    for key, fn in local.lambda_functions : key => concat(
      [{ sid = "Logs", actions = ["logs:CreateLogStream", "logs:PutLogEvents"], resources = ["${aws_cloudwatch_log_group.lambda[key].arn}:*"] }],
      fn.policy_statements,
      [
        { sid = "DeadLetterQueue", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.dlq.arn] },
        { sid = "StackKey", actions = ["kms:Decrypt", "kms:GenerateDataKey"], resources = [aws_kms_key.this.arn] },
        # X-Ray segment APIs do not support resource-level permissions.
        { sid = "XRay", actions = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources = ["*"] },
      ],
    )
  }
}

resource "aws_iam_role" "lambda" {
  for_each           = local.lambda_functions
  name               = "${local.name_prefix}-${replace(each.key, "_", "-")}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume_role["lambda"].json
}

# ENI management for a Lambda in a VPC: the EC2 network interface APIs have no
# resource-level permissions, so the AWS managed policy (Resource "*") is required.
resource "aws_iam_role_policy_attachment" "lambda_vpc" {
  for_each   = local.lambda_functions
  role       = aws_iam_role.lambda[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.lambda_functions
  name     = replace(each.key, "_", "-")
  role     = aws_iam_role.lambda[each.key].id
  policy   = data.aws_iam_policy_document.lambda[each.key].json
}

data "aws_iam_policy_document" "lambda" {
  for_each = local.lambda_functions

  dynamic "statement" {
    for_each = local.lambda_policy_statements[each.key]
    content {
      sid       = statement.value.sid
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }
}

# ------------------------------------------------------------ EventBridge -> SageMaker pipelines (schedules)
resource "aws_iam_role" "events_start_pipelines" {
  count              = length(var.pipeline_schedules) > 0 ? 1 : 0
  name               = "${local.name_prefix}-events-start-pipelines"
  assume_role_policy = data.aws_iam_policy_document.assume_role["events"].json
}

# Only StartPipelineExecution, only on the scheduled pipelines (the original sample granted sns:*
# to the events role). Event-started pipelines go through the starter Lambda instead.
resource "aws_iam_role_policy" "events_start_pipelines" {
  count  = length(var.pipeline_schedules) > 0 ? 1 : 0
  name   = "start-pipelines"
  role   = aws_iam_role.events_start_pipelines[0].id
  policy = data.aws_iam_policy_document.events_start_pipelines[0].json
}

data "aws_iam_policy_document" "events_start_pipelines" {
  count = length(var.pipeline_schedules) > 0 ? 1 : 0

  statement {
    sid       = "StartOurPipelines"
    actions   = ["sagemaker:StartPipelineExecution"]
    resources = [for key in keys(var.pipeline_schedules) : local.pipeline_arns[key]]
  }
}
