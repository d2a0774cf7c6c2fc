# Inputs of the deploy role. The stack's own inputs keep the names of env_files/<env>_env.tfvars, so
#   terraform apply -var-file=../env_files/dev_env.tfvars -var gitlab_project_path=group/project
# scopes the policy to exactly what that environment deploys (other tfvars keys only warn), and they follow the
# same rules (../contracts/tfvars_rules.json) as the root module's variables.tf: environment and role_arn (which
# stack the role is for) in their validation blocks, the names the policy's resources are built from all at once
# (local.stack_name_errors, a precondition of the policy in main.tf).

locals {
  rules = jsondecode(file("${path.module}/../contracts/tfvars_rules.json"))

  # The names the policy's resource ARNs are built from, by the pattern they must match: the root module's rule
  # (contracts/tfvars_rules.json patterns, for the tfvars key of the same name) or bootstrap's own (name_prefix).
  patterns = merge(local.rules.patterns, { name_prefix = "^$|^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$" })
  names_by_rule = {
    aws_region                   = [var.aws_region]
    name_prefix                  = [var.name_prefix]
    bucket_name                  = [var.bucket_name]
    bucket_prefix                = [var.bucket_prefix]
    kms_key                      = [var.kms_key]
    pipeline_name                = values(var.pipeline_names)
    model_package_group_name     = [var.model_package_group_name]
    notification_function_name   = [var.notification_function_name]
    deploy_trigger_function_name = [var.deploy_trigger_function_name]
    code_signing_config_arn      = [var.code_signing_config_arn]
  }
  stack_name_errors = concat(
    flatten([for rule, names in local.names_by_rule : [
      for name in names : "${rule} \"${name}\" does not match ${local.patterns[rule]}" if !can(regex(local.patterns[rule], name))
    ]]),
    [for key in keys(var.pipeline_names) : "pipeline_names key ${key} is not one of ${join(", ", keys(local.contracts.pipelines))} (contracts/pipelines.json)"
    if !contains(keys(local.contracts.pipelines), key)],
  )
}

# ---------------------------------------------------------------- GitLab (trust)
variable "gitlab_url" {
  description = "GitLab instance URL, the OIDC issuer of its ID tokens (no trailing slash)."
  type        = string
  default     = "https://gitlab.com"
  validation {
    # The ID tokens' iss claim to the letter (the trust's condition keys are it without https://); the provider
    # rejects the rest (a query, a malformed URL) when it creates or reads the OIDC provider.
    condition     = startswith(var.gitlab_url, "https://") && !endswith(var.gitlab_url, "/")
    error_message = "gitlab_url must be an https URL without a trailing slash, e.g. https://gitlab.com."
  }
}

variable "gitlab_project_path" {
  description = "Full path of the GitLab project whose pipelines may assume the role (group[/subgroup]/project, as in CI_PROJECT_PATH)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$", var.gitlab_project_path))
    error_message = "gitlab_project_path must be group/project or group/subgroup/.../project (CI_PROJECT_PATH), no wildcards."
  }
}

variable "default_branch" {
  description = "The project's default branch (protected): the only ref whose jobs may assume the role."
  type        = string
  default     = "main"
  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.default_branch))
    error_message = "default_branch must be a branch name without wildcards."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's IAM OIDC provider for gitlab_url; false when it exists already (one per account and URL: a second environment in the same account reads it)."
  type        = bool
  default     = true
}

variable "role_name" {
  description = "Name of the deploy role (an IAM role name: the provider checks it); empty = gitlab-ci-deploy-<name prefix>. Must not start with the stack's name prefix (the role may manage those roles)."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------- the stack: its environment and account (validated here)
variable "environment" {
  description = "Environment the role deploys (tfvars environment): one role per environment."
  type        = string
  validation {
    condition     = contains(local.rules.enums.environment, var.environment)
    error_message = "environment must be one of ${join(", ", local.rules.enums.environment)} (contracts/tfvars_rules.json)."
  }
}

variable "role_arn" {
  description = "The SageMaker execution role the pipelines run as (tfvars role_arn); its account is the stack's account."
  type        = string
  validation {
    condition     = can(regex(local.rules.patterns.role_arn, var.role_arn))
    error_message = "role_arn must match ${local.rules.patterns.role_arn} (contracts/tfvars_rules.json)."
  }
}

# ---------------------------------------------------------------- the stack's names, as the root module builds them
# (checked all at once against their rules, local.names_by_rule, before the policy is planned: main.tf)
variable "aws_region" {
  description = "Region of the stack (tfvars aws_region); the provider's region."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the stack's resource names; empty = mlops-<environment>, as main.tf's local.name_prefix."
  type        = string
  default     = ""
}

variable "bucket_name" {
  description = "The existing data bucket (tfvars bucket_name)."
  type        = string
}

variable "bucket_prefix" {
  description = "The project's key prefix in the bucket (tfvars bucket_prefix): the builds upload code and data only below it."
  type        = string
}

variable "kms_key" {
  description = "The pipelines' KMS key (tfvars kms_key): uploads are encrypted with it."
  type        = string
}

variable "pipeline_names" {
  description = "SageMaker pipeline names by contract key (tfvars pipeline_names); a missing key defaults to <dataset name>-<name_suffix> as in contracts.tf."
  type        = map(string)
  default     = {}
}

variable "model_package_group_name" {
  description = "Model package group (tfvars model_package_group_name); empty = <dataset name>-<contracts/pipelines.json name_suffix> as in contracts.tf."
  type        = string
  default     = ""
}

variable "notification_function_name" {
  description = "Name of the notification Lambda (tfvars notification_function_name)."
  type        = string
}

variable "deploy_trigger_function_name" {
  description = "Name of the deploy trigger Lambda (tfvars deploy_trigger_function_name; same default as variables.tf)."
  type        = string
  default     = "sagemaker-model-approval-deploy-trigger"
}

variable "code_signing_config_arn" {
  description = "Lambda code signing config the functions use (tfvars code_signing_config_arn); empty = none."
  type        = string
  default     = ""
}

variable "project_tag" {
  description = "The Project tag of ../tags.json: with Environment, how the policy recognizes the stack's KMS key (its ARN is random)."
  type        = string
  default     = "sagemaker-batch-mlops-template"
  validation {
    condition     = length(var.project_tag) > 0
    error_message = "project_tag must not be empty."
  }
}
