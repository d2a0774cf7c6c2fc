# Inputs of the deploy role. The stack's own inputs keep the names of env_files/<env>_env.tfvars, so
#   terraform apply -var-file=../env_files/dev_env.tfvars -var gitlab_project_path=group/project
# scopes the policy to exactly what that environment deploys (other tfvars keys only warn), and they are
# validated with the same rules (../tfvars_rules.json) as the root module's variables.tf.

locals {
  rules = jsondecode(file("${path.module}/../tfvars_rules.json"))
}

# ---------------------------------------------------------------- GitLab (trust)
variable "gitlab_url" {
  description = "GitLab instance URL, the OIDC issuer of its ID tokens (no trailing slash)."
  type        = string
  default     = "https://gitlab.com"
  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)*$", var.gitlab_url))
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
  description = "Name of the deploy role; empty = gitlab-ci-deploy-<name prefix>. Must not start with the stack's name prefix (the role may manage those roles)."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^$|^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be an IAM role name (1-64 of A-Za-z0-9+=,.@_-) or empty."
  }
}

# ---------------------------------------------------------------- the stack (names as the root module builds them)
variable "environment" {
  description = "Environment the role deploys (tfvars environment): one role per environment."
  type        = string
  validation {
    condition     = contains(local.rules.enums.environment, var.environment)
    error_message = "environment must be one of ${join(", ", local.rules.enums.environment)} (tfvars_rules.json)."
  }
}

variable "aws_region" {
  description = "Region of the stack (tfvars aws_region)."
  type        = string
  validation {
    condition     = can(regex(local.rules.patterns.aws_region, var.aws_region))
    error_message = "aws_region must match ${local.rules.patterns.aws_region} (tfvars_rules.json)."
  }
}

variable "name_prefix" {
  description = "Prefix of the stack's resource names; empty = mlops-<environment>, as main.tf's local.name_prefix."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^$|^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be lower-case letters, digits and hyphens (2-32 characters), or empty."
  }
}

variable "bucket_name" {
  description = "The existing data bucket (tfvars bucket_name)."
  type        = string
  validation {
    condition     = can(regex(local.rules.patterns.bucket_name, var.bucket_name))
    error_message = "bucket_name must match ${local.rules.patterns.bucket_name} (tfvars_rules.json)."
  }
}

variable "bucket_prefix" {
  description = "The project's key prefix in the bucket (tfvars bucket_prefix): the builds upload code and data only below it."
  type        = string
  validation {
    condition     = can(regex(local.rules.patterns.bucket_prefix, var.bucket_prefix))
    error_message = "bucket_prefix must match ${local.rules.patterns.bucket_prefix} (tfvars_rules.json)."
  }
}

variable "role_arn" {
  description = "The SageMaker execution role the pipelines run as (tfvars role_arn); its account is the stack's account."
  type        = string
  validation {
    condition     = can(regex(local.rules.patterns.role_arn, var.role_arn))
    error_message = "role_arn must match ${local.rules.patterns.role_arn} (tfvars_rules.json)."
  }
}

variable "kms_key" {
  description = "The pipelines' KMS key (tfvars kms_key): uploads are encrypted with it."
  type        = string
  validation {
    condition     = can(regex(local.rules.patterns.kms_key, var.kms_key))
    error_message = "kms_key must match ${local.rules.patterns.kms_key} (tfvars_rules.json)."
  }
}

variable "pipeline_names" {
  description = "SageMaker pipeline names by contract key (tfvars pipeline_names); a missing key defaults to <dataset name>-<name_suffix> as in contracts.tf."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k in keys(var.pipeline_names) : contains(keys(local.contracts.pipelines), k)])
    error_message = "pipeline_names keys must be pipeline keys of contracts.json: ${join(", ", keys(local.contracts.pipelines))}."
  }
  validation {
    condition     = alltrue([for n in values(var.pipeline_names) : can(regex(local.rules.patterns.pipeline_name, n))])
    error_message = "Every pipeline_names value must match ${local.rules.patterns.pipeline_name} (tfvars_rules.json)."
  }
}

variable "model_package_group_name" {
  description = "Model package group (tfvars model_package_group_name); empty = <dataset name>-<contracts.json name_suffix> as in contracts.tf."
  type        = string
  default     = ""
  validation {
    condition     = can(regex(local.rules.patterns.model_package_group_name, var.model_package_group_name))
    error_message = "model_package_group_name must match ${local.rules.patterns.model_package_group_name} (tfvars_rules.json)."
  }
}

variable "notification_function_name" {
  description = "Name of the notification Lambda (tfvars notification_function_name)."
  type        = string
  validation {
    condition     = can(regex(local.rules.patterns.notification_function_name, var.notification_function_name))
    error_message = "notification_function_name must match ${local.rules.patterns.notification_function_name} (tfvars_rules.json)."
  }
}

variable "deploy_trigger_function_name" {
  description = "Name of the deploy trigger Lambda (tfvars deploy_trigger_function_name; same default as variables.tf)."
  type        = string
  default     = "sagemaker-model-approval-deploy-trigger"
  validation {
    condition     = can(regex(local.rules.patterns.deploy_trigger_function_name, var.deploy_trigger_function_name))
    error_message = "deploy_trigger_function_name must match ${local.rules.patterns.deploy_trigger_function_name} (tfvars_rules.json)."
  }
}

variable "code_signing_config_arn" {
  description = "Lambda code signing config the functions use (tfvars code_signing_config_arn); empty = none."
  type        = string
  default     = ""
  validation {
    condition     = can(regex(local.rules.patterns.code_signing_config_arn, var.code_signing_config_arn))
    error_message = "code_signing_config_arn must match ${local.rules.patterns.code_signing_config_arn} (tfvars_rules.json)."
  }
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
