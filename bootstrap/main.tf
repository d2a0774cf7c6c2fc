# The GitLab CI deploy role of one environment: trusted only by the default branch of one project
# (GitLab OIDC), allowed exactly what the CI jobs of that environment call: terraform plan/apply/destroy
# of the root module and the SageMaker pipeline builds (tools/build_pipelines.py). The permissions are
# ci-deploy-policy.json.tftpl (also read by tools/gitlab_ci/iam_policy_check.py and the tests).

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      Environment = var.environment
      ManagedBy   = "terraform (bootstrap/)"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  # The root module's naming, from the same files and rules (main.tf, contracts.tf).
  contracts    = jsondecode(file("${path.module}/../contracts/pipelines.json"))
  dataset_name = jsondecode(file("${path.module}/../scripts/dataset_schema.json")).name
  name_prefix  = coalesce(var.name_prefix, "mlops-${var.environment}")
  pipeline_names = {
    for key, p in local.contracts.pipelines : key => lookup(var.pipeline_names, key, "${local.dataset_name}-${p.name_suffix}")
  }
  model_package_group_name = coalesce(var.model_package_group_name, "${local.dataset_name}-${local.contracts.model_package_group.name_suffix}")
  # lambda.tf: the notification, starter and deploy trigger functions (the last only exists with the GitLab settings).
  function_names = distinct([var.notification_function_name, "${local.name_prefix}-start-pipeline", var.deploy_trigger_function_name])

  # The stack lives in the account of its execution role: every ARN is known before apply (and in tests).
  partition  = split(":", var.role_arn)[1]
  account_id = split(":", var.role_arn)[4]
  arn_prefix = { for service in ["lambda", "logs", "sagemaker"] : service => "arn:${local.partition}:${service}:${var.aws_region}:${local.account_id}" }

  policy_vars = {
    partition          = local.partition
    region             = var.aws_region
    account_id         = local.account_id
    name_prefix        = local.name_prefix
    environment        = var.environment
    project_tag        = var.project_tag
    bucket_arn         = "arn:${local.partition}:s3:::${var.bucket_name}"
    bucket_prefix      = var.bucket_prefix
    execution_role_arn = var.role_arn
    pipeline_key_arn   = var.kms_key
    # SageMaker lower-cases names in ARNs (main.tf local.pipeline_arns does the same).
    pipeline_arns        = jsonencode([for name in values(local.pipeline_names) : "${local.arn_prefix.sagemaker}:pipeline/${lower(name)}"])
    model_package_group  = lower(local.model_package_group_name)
    lambda_function_arns = jsonencode([for name in local.function_names : "${local.arn_prefix.lambda}:function:${name}"])
    # Log group ARNs come both ways: "log-group:NAME" (CreateLogGroup) and "log-group:NAME:*".
    lambda_log_group_arns = jsonencode(flatten([for name in local.function_names : [
      "${local.arn_prefix.logs}:log-group:/aws/lambda/${name}", "${local.arn_prefix.logs}:log-group:/aws/lambda/${name}:*",
    ]]))
    # PutFunctionCodeSigningConfig authorizes the function and the code signing config.
    code_signing_resources = jsonencode(concat(
      [for name in local.function_names : "${local.arn_prefix.lambda}:function:${name}"],
      var.code_signing_config_arn == "" ? [] : [var.code_signing_config_arn],
    ))
    lambda_vpc_policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
  }
  # Minified: the inline policies of a role may hold 10,240 characters in all.
  policy_json = jsonencode(jsondecode(templatefile("${path.module}/ci-deploy-policy.json.tftpl", local.policy_vars)))

  role_name = coalesce(var.role_name, "gitlab-ci-deploy-${local.name_prefix}")

  # GitLab ID tokens (id_tokens AWS_ID_TOKEN, aud sts.amazonaws.com). IAM checks only aud and sub of
  # a GitLab token; sub pins the project and the default branch (a protected branch), so merge request
  # and feature branch pipelines get no AWS access at all. Environments are enforced on the GitLab side
  # (protected, environment-scoped AWS_ROLE_ARN, one role per environment).
  oidc_host  = trimprefix(var.gitlab_url, "https://")
  ci_subject = "project_path:${var.gitlab_project_path}:ref_type:branch:ref:${var.default_branch}"
  trust_conditions = {
    StringEquals = {
      "${local.oidc_host}:aud" = "sts.amazonaws.com"
      "${local.oidc_host}:sub" = local.ci_subject
    }
  }
  oidc_provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.gitlab[0].arn : data.aws_iam_openid_connect_provider.gitlab[0].arn
}

# One provider per account and URL; thumbprints are optional since AWS trusts the issuer's CA itself.
resource "aws_iam_openid_connect_provider" "gitlab" {
  count          = var.create_oidc_provider ? 1 : 0
  url            = var.gitlab_url
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_openid_connect_provider" "gitlab" {
  count = var.create_oidc_provider ? 0 : 1
  url   = var.gitlab_url
}

resource "aws_iam_role" "ci_deploy" {
  name                 = local.role_name
  description          = "GitLab CI (${var.gitlab_project_path}, ${var.default_branch}) deploys ${local.name_prefix}: terraform and SageMaker pipeline builds"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "GitLabDefaultBranchOnly"
      Effect    = "Allow"
      Principal = { Federated = local.oidc_provider_arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = local.trust_conditions
    }]
  })

  lifecycle {
    precondition {
      condition     = data.aws_caller_identity.current.account_id == local.account_id
      error_message = "Run bootstrap/ in the stack's account ${local.account_id} (the account of role_arn), not ${data.aws_caller_identity.current.account_id}."
    }
    # The policy manages the stack's roles (role/<name prefix>-*): a deploy role matching it could rewrite its own policy.
    precondition {
      condition     = !startswith(local.role_name, "${local.name_prefix}-")
      error_message = "role_name ${local.role_name} must not start with the stack's name prefix ${local.name_prefix}-."
    }
  }
}

resource "aws_iam_role_policy" "ci_deploy" {
  name   = "ci-deploy"
  role   = aws_iam_role.ci_deploy.id
  policy = local.policy_json

  lifecycle {
    # The names its resource ARNs are built from (bootstrap/variables.tf): a wildcard or a typo would scope it
    # to other resources than the root module builds.
    precondition {
      condition     = length(local.stack_name_errors) == 0
      error_message = "The policy names the stack's resources from inputs that break the root module's rules (contracts/tfvars_rules.json): ${join("; ", local.stack_name_errors)}."
    }
    precondition {
      condition     = length(local.policy_json) <= 10240
      error_message = "The rendered policy has ${length(local.policy_json)} characters; a role's inline policies may hold 10,240."
    }
  }
}
