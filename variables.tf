# Every key of env_files/*_env.tfvars is declared here (tests/component/test_terraform.py checks it).
# Value rules live in contracts/tfvars_rules.json, shared with pipeline_scripts/config.py (one source for both sides).

locals {
  tfvars_rules = jsondecode(file("${path.module}/contracts/tfvars_rules.json"))
}

variable "environment" {
  description = "Deployment environment name; used in resource names and tags."
  type        = string
  validation {
    condition     = contains(local.tfvars_rules.enums.environment, var.environment)
    error_message = "environment must be one of ${join(", ", local.tfvars_rules.enums.environment)} (contracts/tfvars_rules.json)."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into (e.g. us-east-1)."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.aws_region, var.aws_region))
    error_message = "aws_region must match ${local.tfvars_rules.patterns.aws_region} (contracts/tfvars_rules.json)."
  }
}

variable "user_id" {
  description = "Owner tag value (team or user that owns the deployment)."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.user_id, var.user_id))
    error_message = "user_id must match ${local.tfvars_rules.patterns.user_id} (contracts/tfvars_rules.json)."
  }
}

# ---------------------------------------------------------------- S3 layout
variable "bucket_name" {
  description = "Existing S3 bucket holding data, code and artifacts (created outside this stack, like role_arn and kms_key)."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.bucket_name, var.bucket_name))
    error_message = "bucket_name must match ${local.tfvars_rules.patterns.bucket_name} (contracts/tfvars_rules.json)."
  }
}

variable "bucket_prefix" {
  description = "Top-level key prefix inside the bucket (no leading or trailing slash)."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.bucket_prefix, var.bucket_prefix))
    error_message = "bucket_prefix must match ${local.tfvars_rules.patterns.bucket_prefix} (contracts/tfvars_rules.json)."
  }
}

variable "bucket_train_prefix" {
  description = "Prefix under bucket_prefix where training data uploads trigger the training pipeline."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.bucket_train_prefix, var.bucket_train_prefix))
    error_message = "bucket_train_prefix must match ${local.tfvars_rules.patterns.bucket_train_prefix} (contracts/tfvars_rules.json)."
  }
}

variable "bucket_inf_prefix" {
  description = "Prefix under bucket_prefix for inference; uploads to <prefix>/input/ trigger the inference pipeline."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.bucket_inf_prefix, var.bucket_inf_prefix))
    error_message = "bucket_inf_prefix must match ${local.tfvars_rules.patterns.bucket_inf_prefix} (contracts/tfvars_rules.json)."
  }
}

variable "upload_training_data" {
  description = "Whether the CI pipeline scripts upload data/training-data.csv after upserting the pipelines."
  type        = bool
  default     = false
}

variable "upload_inference_data" {
  description = "Whether the CI pipeline scripts upload data/inference-data.csv after upserting the pipelines."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------- notifications
variable "notification_function_name" {
  description = "Name of the notification Lambda function."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.notification_function_name, var.notification_function_name))
    error_message = "notification_function_name must match ${local.tfvars_rules.patterns.notification_function_name} (contracts/tfvars_rules.json)."
  }
}

variable "email_recipient" {
  description = "E-mail addresses subscribed to the notification SNS topic (each must confirm the subscription)."
  type        = list(string)
  validation {
    # an empty list would leave the topic without subscribers: every digest and version mail would go nowhere
    condition     = length(var.email_recipient) > 0
    error_message = "email_recipient must name at least one address: notifications are only delivered to its subscribers."
  }
  validation {
    condition     = alltrue([for e in var.email_recipient : can(regex(local.tfvars_rules.patterns.email_recipient, e))])
    error_message = "Every email_recipient entry must be an e-mail address (contracts/tfvars_rules.json)."
  }
}

variable "notify_clean_runs" {
  description = "Also e-mail clean pipeline runs (succeeded, no drift, no breach) and approvals; false = only what needs attention."
  type        = bool
  default     = false
}

variable "custom_notification_config" {
  description = "Extra text appended to notifications of a step (named by its role in contracts/pipelines.json steps) and status: list of {step_role, step_status, step_custom_message}."
  type = list(object({
    step_role           = string
    step_status         = string
    step_custom_message = string
  }))
  default = [
    {
      step_role           = "model_quality_breach"
      step_status         = "Failed"
      step_custom_message = "Model quality breached its threshold: the HPO retraining pipeline starts automatically; the run's report.html is next to its data-quality results."
    },
    {
      step_role           = "model_quality"
      step_status         = "Failed"
      step_custom_message = "The model-quality step crashed (not a breach): no retraining was started; see the job logs."
    },
    {
      step_role           = "data_quality_check"
      step_status         = "Succeeded"
      step_custom_message = "Data-quality check finished; violations (if any) are listed below."
    },
  ]
  validation {
    condition     = alltrue([for c in var.custom_notification_config : contains(keys(local.contracts.steps), c.step_role)])
    error_message = "step_role must be a step role of contracts/pipelines.json: ${join(", ", keys(local.contracts.steps))}."
  }
  validation {
    condition     = alltrue([for c in var.custom_notification_config : contains(local.tfvars_rules.enums.step_status, c.step_status)])
    error_message = "step_status must be one of ${join(", ", local.tfvars_rules.enums.step_status)} (SageMaker step statuses)."
  }
  validation {
    condition     = alltrue([for c in var.custom_notification_config : can(regex(local.tfvars_rules.patterns.step_custom_message, c.step_custom_message))])
    error_message = "step_custom_message must not be empty."
  }
}

variable "idempotency_ttl_hours" {
  description = "How long processed event ids are remembered to suppress duplicate notifications."
  type        = number
  default     = 168
  validation {
    condition     = var.idempotency_ttl_hours > 0
    error_message = "idempotency_ttl_hours must be > 0 (contracts/tfvars_rules.json positive_numbers)."
  }
}

# ---------------------------------------------------------------- SageMaker pipelines
variable "pipeline_names" {
  description = "Optional SageMaker pipeline names by contract key (contracts/pipelines.json pipelines: training, training_hpo, inference); a missing key defaults to <scripts/dataset_schema.json name>-<name_suffix>."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k in keys(var.pipeline_names) : contains(keys(local.contracts.pipelines), k)])
    error_message = "pipeline_names keys must be pipeline keys of contracts/pipelines.json: ${join(", ", keys(local.contracts.pipelines))}."
  }
  validation {
    condition     = alltrue([for n in values(var.pipeline_names) : can(regex(local.tfvars_rules.patterns.pipeline_name, n))])
    error_message = "Every pipeline_names value must be a valid SageMaker pipeline name (contracts/tfvars_rules.json pipeline_name)."
  }
}

variable "recreate_pipelines" {
  description = "Whether pipeline_scripts delete and recreate the pipelines instead of updating them."
  type        = bool
  default     = false
}

variable "model_package_group_name" {
  description = "SageMaker model package group the training pipelines register into; empty = <scripts/dataset_schema.json name>-<contracts/pipelines.json model_package_group.name_suffix>."
  type        = string
  default     = ""
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.model_package_group_name, var.model_package_group_name))
    error_message = "model_package_group_name must match ${local.tfvars_rules.patterns.model_package_group_name} (contracts/tfvars_rules.json)."
  }
}

variable "accuracy_mse_threshold" {
  description = "MSE threshold: training registers a model only below it; inference model quality breaches above it."
  type        = number
  validation {
    condition     = var.accuracy_mse_threshold > 0
    error_message = "accuracy_mse_threshold must be > 0 (contracts/tfvars_rules.json positive_numbers)."
  }
}

variable "pipeline_schedules" {
  description = "Optional EventBridge schedules by contract pipeline key, e.g. { inference = \"cron(0 6 * * ? *)\" }; a scheduled run uses the pipeline's default parameters."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for k in keys(var.pipeline_schedules) : contains(keys(local.contracts.pipelines), k)])
    error_message = "pipeline_schedules keys must be pipeline keys of contracts/pipelines.json: ${join(", ", keys(local.contracts.pipelines))}."
  }
  validation {
    condition     = alltrue([for e in values(var.pipeline_schedules) : can(regex(local.tfvars_rules.patterns.schedule_expression, e))])
    error_message = "pipeline_schedules values must be EventBridge schedule expressions (cron with six valid fields and one '?' day field, or rate(1 minute|hour|day) / rate(N minutes|hours|days)), not ${join(", ", [for e in values(var.pipeline_schedules) : e if !can(regex(local.tfvars_rules.patterns.schedule_expression, e))])} (contracts/tfvars_rules.json schedule_expression)."
  }
}

# ---------------------------------------------------------------- security, networking
variable "role_arn" {
  description = "Existing SageMaker execution role ARN used by the pipelines."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.role_arn, var.role_arn))
    error_message = "role_arn must match ${local.tfvars_rules.patterns.role_arn} (contracts/tfvars_rules.json)."
  }
}

variable "kms_key" {
  description = "Existing KMS key ARN used by the pipelines for S3 data and job volumes (the Lambda may decrypt objects with it)."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.kms_key, var.kms_key))
    error_message = "kms_key must match ${local.tfvars_rules.patterns.kms_key} (contracts/tfvars_rules.json)."
  }
}

variable "subnet_id" {
  description = "Private subnet for the Lambda functions (needs VPC endpoints or NAT for SNS, DynamoDB, SageMaker, S3, Secrets Manager and GitLab)."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.subnet_id, var.subnet_id))
    error_message = "subnet_id must match ${local.tfvars_rules.patterns.subnet_id} (contracts/tfvars_rules.json)."
  }
}

variable "sg_id" {
  description = "Security group for the Lambda functions (egress HTTPS only is enough)."
  type        = string
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.sg_id, var.sg_id))
    error_message = "sg_id must match ${local.tfvars_rules.patterns.sg_id} (contracts/tfvars_rules.json)."
  }
}

# ---------------------------------------------------------------- Lambda packaging and limits
variable "lambda_zip_path" {
  description = "Path of the reproducible Lambda zip built by tools/build_lambda.py (holds both handlers)."
  type        = string
  default     = "build/lambda_function.zip"
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.lambda_zip_path, var.lambda_zip_path))
    error_message = "lambda_zip_path must match ${local.tfvars_rules.patterns.lambda_zip_path} (contracts/tfvars_rules.json)."
  }
}

variable "lambda_runtime" {
  description = "Lambda Python runtime (3.12 or 3.13; older runtimes are deprecated)."
  type        = string
  default     = "python3.12"
  validation {
    condition     = contains(local.tfvars_rules.enums.lambda_runtime, var.lambda_runtime)
    error_message = "lambda_runtime must be one of ${join(", ", local.tfvars_rules.enums.lambda_runtime)} (contracts/tfvars_rules.json)."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the notification Lambda (caps the fan-out of event storms); when > 0 the starter and deploy trigger Lambdas are also reserved 1, so they run one at a time. 0 (the default) reserves nothing: AWS keeps 100 executions unreserved per account, and new accounts may have a concurrency quota of 10, where any reservation fails the apply (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html). Set it once the account's quota is 1,000."
  type        = number
  default     = 0
  validation {
    condition     = var.lambda_reserved_concurrency >= 0 && var.lambda_reserved_concurrency == floor(var.lambda_reserved_concurrency)
    error_message = "lambda_reserved_concurrency must be a whole number >= 0 (contracts/tfvars_rules.json non_negative_integers)."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for the Lambda log groups."
  type        = number
  default     = 365
  validation {
    condition     = contains(local.tfvars_rules.enums.log_retention_days, var.log_retention_days)
    error_message = "log_retention_days must be one of ${join(", ", local.tfvars_rules.enums.log_retention_days)} (contracts/tfvars_rules.json)."
  }
}

variable "code_signing_config_arn" {
  description = "Optional Lambda code signing config ARN (AWS Signer); empty = unsigned deployment package."
  type        = string
  default     = ""
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.code_signing_config_arn, var.code_signing_config_arn))
    error_message = "code_signing_config_arn must match ${local.tfvars_rules.patterns.code_signing_config_arn} (contracts/tfvars_rules.json)."
  }
}

# ---------------------------------------------------------------- GitLab deploy trigger
variable "gitlab_project_id" {
  description = "GitLab project id (numeric) or URL-encoded path whose pipeline is triggered when a model package is approved; empty = no trigger."
  type        = string
  default     = ""
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.gitlab_project_id, var.gitlab_project_id))
    error_message = "gitlab_project_id must match ${local.tfvars_rules.patterns.gitlab_project_id} (contracts/tfvars_rules.json)."
  }
}

variable "gitlab_api_url" {
  description = "GitLab API v4 base URL (https)."
  type        = string
  default     = "https://gitlab.com/api/v4"
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.gitlab_api_url, var.gitlab_api_url))
    error_message = "gitlab_api_url must match ${local.tfvars_rules.patterns.gitlab_api_url} (contracts/tfvars_rules.json)."
  }
}

variable "gitlab_trigger_token_secret_arn" {
  description = "ARN of the Secrets Manager secret or SSM SecureString parameter holding the GitLab pipeline trigger token; empty = no trigger."
  type        = string
  default     = ""
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.gitlab_trigger_token_secret_arn, var.gitlab_trigger_token_secret_arn))
    error_message = "gitlab_trigger_token_secret_arn must match ${local.tfvars_rules.patterns.gitlab_trigger_token_secret_arn} (contracts/tfvars_rules.json)."
  }
}

variable "gitlab_trigger_token_kms_key_arn" {
  description = "Optional customer managed KMS key ARN that encrypts the trigger token secret/parameter (empty = AWS managed key)."
  type        = string
  default     = ""
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.gitlab_trigger_token_kms_key_arn, var.gitlab_trigger_token_kms_key_arn))
    error_message = "gitlab_trigger_token_kms_key_arn must match ${local.tfvars_rules.patterns.gitlab_trigger_token_kms_key_arn} (contracts/tfvars_rules.json)."
  }
}

variable "gitlab_trigger_ref" {
  description = "Git ref the deploy pipeline runs on."
  type        = string
  default     = "main"
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.gitlab_trigger_ref, var.gitlab_trigger_ref))
    error_message = "gitlab_trigger_ref must match ${local.tfvars_rules.patterns.gitlab_trigger_ref} (contracts/tfvars_rules.json)."
  }
}

variable "deploy_trigger_function_name" {
  description = "Name of the deploy trigger Lambda (created only when the GitLab settings are given)."
  type        = string
  default     = "sagemaker-model-approval-deploy-trigger"
  validation {
    condition     = can(regex(local.tfvars_rules.patterns.deploy_trigger_function_name, var.deploy_trigger_function_name))
    error_message = "deploy_trigger_function_name must match ${local.tfvars_rules.patterns.deploy_trigger_function_name} (contracts/tfvars_rules.json)."
  }
}
