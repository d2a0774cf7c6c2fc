provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(jsondecode(file("${path.module}/tags.json")), {
      Environment = var.environment
      Owner       = var.user_id
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # var.aws_region (validated) rather than the region attribute of the aws_region data source (provider 6 only).
  region = var.aws_region

  name_prefix = "mlops-${var.environment}"

  # The condition that confines an AWS service principal to acting for this account.
  this_account = { test = "StringEquals", variable = "aws:SourceAccount", values = [local.account_id] }

  sagemaker_arn_prefix = "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}"
  pipeline_arns = {
    for key, name in local.pipeline_names : key => "${local.sagemaker_arn_prefix}:pipeline/${lower(name)}"
  }

  # The approval -> GitLab deploy path exists only when all three settings are given.
  deploy_trigger_enabled = var.gitlab_project_id != "" && var.gitlab_api_url != "" && var.gitlab_trigger_token_secret_arn != ""
  gitlab_token_in_ssm    = startswith(var.gitlab_trigger_token_secret_arn, "arn:${local.partition}:ssm:")

  lambda_zip_hash = filebase64sha256(var.lambda_zip_path)
}
