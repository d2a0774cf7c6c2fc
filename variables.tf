# Every key of env_files/*_env.tfvars is declared here (tests/test_terraform.py checks it).

variable "environment" {
  description = "Deployment environment name; used in resource names and tags."
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into (e.g. us-east-1)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like us-east-1."
  }
}

variable "user_id" {
  description = "Owner tag value (team or user that owns the deployment)."
  type        = string
  validation {
    condition     = length(var.user_id) > 0 && length(var.user_id) <= 64
    error_message = "user_id must be 1-64 characters."
  }
}

# ---------------------------------------------------------------- S3 layout
variable "bucket_name" {
  description = "Existing S3 bucket holding data, code and artifacts (created outside this stack, like role_arn and kms_key)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)."
  }
}

variable "bucket_prefix" {
  description = "Top-level key prefix inside the bucket (no leading or trailing slash)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$", var.bucket_prefix))
    error_message = "bucket_prefix must be a non-empty key prefix without leading/trailing slash."
  }
}

variable "bucket_train_prefix" {
  description = "Prefix under bucket_prefix where training data uploads trigger the training pipeline."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+$", var.bucket_train_prefix))
    error_message = "bucket_train_prefix must be a single path segment."
  }
}

variable "bucket_inf_prefix" {
  description = "Prefix under bucket_prefix for inference; uploads to <prefix>/input/ trigger the inference pipeline."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-]+$", var.bucket_inf_prefix))
    error_message = "bucket_inf_prefix must be a single path segment."
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
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.notification_function_name))
    error_message = "notification_function_name must be 1-64 letters, digits, hyphens or underscores."
  }
}

variable "email_recipient" {
  description = "E-mail addresses subscribed to the notification SNS topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for e in var.email_recipient : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Every email_recipient entry must be an e-mail address."
  }
}

variable "notify_clean_runs" {
  description = "Also e-mail clean pipeline runs (succeeded, no drift, no breach) and approvals; false = only what needs attention."
  type        = bool
  default     = false
}

variable "custom_notification_config" {
  description = "Extra text appended to notifications of a given step and status: list of {step_name, step_status, step_custom_message}."
  type = list(object({
    step_name           = string
    step_status         = string
    step_custom_message = string
  }))
  default = []
  validation {
    condition     = alltrue([for c in var.custom_notification_config : contains(["Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded"], c.step_status)])
    error_message = "step_status must be one of Starting, Executing, Stopping, Stopped, Failed, Succeeded (SageMaker step statuses)."
  }
  validation {
    condition     = alltrue([for c in var.custom_notification_config : length(c.step_name) > 0 && length(c.step_custom_message) > 0])
    error_message = "step_name and step_custom_message must not be empty."
  }
}

variable "idempotency_ttl_hours" {
  description = "How long processed event ids are remembered to suppress duplicate notifications."
  type        = number
  default     = 168
  validation {
    condition     = var.idempotency_ttl_hours > 0
    error_message = "idempotency_ttl_hours must be > 0."
  }
}

# ---------------------------------------------------------------- SageMaker pipelines
variable "pipeline_train" {
  description = "Name of the training pipeline (upserted by pipeline_scripts.training_pipeline)."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$", var.pipeline_train))
    error_message = "pipeline_train must be a valid SageMaker pipeline name."
  }
}

variable "pipeline_trainwhpo" {
  description = "Name of the training-with-HPO pipeline started on a model quality breach."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$", var.pipeline_trainwhpo))
    error_message = "pipeline_trainwhpo must be a valid SageMaker pipeline name."
  }
}

variable "pipeline_inf" {
  description = "Name of the batch inference pipeline."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$", var.pipeline_inf))
    error_message = "pipeline_inf must be a valid SageMaker pipeline name."
  }
}

variable "recreate_pipelines" {
  description = "Whether pipeline_scripts delete and recreate the pipelines instead of updating them."
  type        = bool
  default     = false
}

variable "model_package_group_name" {
  description = "SageMaker model package group the training pipelines register into."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", var.model_package_group_name))
    error_message = "model_package_group_name must be a valid model package group name (max 63 chars)."
  }
}

variable "accuracy_mse_threshold" {
  description = "MSE threshold: training registers a model only below it; inference model quality breaches above it."
  type        = number
  validation {
    condition     = var.accuracy_mse_threshold > 0
    error_message = "accuracy_mse_threshold must be > 0."
  }
}

variable "training_schedule_expression" {
  description = "Optional EventBridge schedule (cron(...) or rate(...)) for the training pipeline; empty = no schedule."
  type        = string
  default     = ""
  validation {
    condition     = var.training_schedule_expression == "" || can(regex("^(cron|rate)\\(.+\\)$", var.training_schedule_expression))
    error_message = "training_schedule_expression must be empty, cron(...) or rate(...)."
  }
}

variable "inference_schedule_expression" {
  description = "Optional EventBridge schedule (cron(...) or rate(...)) for the inference pipeline; empty = no schedule."
  type        = string
  default     = ""
  validation {
    condition     = var.inference_schedule_expression == "" || can(regex("^(cron|rate)\\(.+\\)$", var.inference_schedule_expression))
    error_message = "inference_schedule_expression must be empty, cron(...) or rate(...)."
  }
}

# ---------------------------------------------------------------- security, networking
variable "role_arn" {
  description = "Existing SageMaker execution role ARN used by the pipelines."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$", var.role_arn))
    error_message = "role_arn must be an IAM role ARN."
  }
}

variable "kms_key" {
  description = "Existing KMS key ARN used by the pipelines for S3 data and job volumes (the Lambda may decrypt objects with it)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.kms_key))
    error_message = "kms_key must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "subnet_id" {
  description = "Private subnet for the Lambda functions (needs VPC endpoints or NAT for SNS, DynamoDB, SageMaker, S3, Secrets Manager and GitLab)."
  type        = string
  validation {
    condition     = can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id must look like subnet-0123456789abcdef0."
  }
}

variable "sg_id" {
  description = "Security group for the Lambda functions (egress HTTPS only is enough)."
  type        = string
  validation {
    condition     = can(regex("^sg-[0-9a-f]{8,17}$", var.sg_id))
    error_message = "sg_id must look like sg-0123456789abcdef0."
  }
}

# ---------------------------------------------------------------- Lambda packaging and limits
variable "lambda_zip_path" {
  description = "Path of the reproducible Lambda zip built by tools/build_lambda.py (holds both handlers)."
  type        = string
  default     = "build/lambda_function.zip"
  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must point to a .zip file."
  }
}

variable "lambda_runtime" {
  description = "Lambda Python runtime (3.12 or 3.13; older runtimes are deprecated)."
  type        = string
  default     = "python3.12"
  validation {
    condition     = contains(["python3.12", "python3.13"], var.lambda_runtime)
    error_message = "lambda_runtime must be python3.12 or python3.13."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrent executions per Lambda function (caps fan-out of event storms)."
  type        = number
  default     = 5
  validation {
    condition     = var.lambda_reserved_concurrency > 0 && var.lambda_reserved_concurrency == floor(var.lambda_reserved_concurrency)
    error_message = "lambda_reserved_concurrency must be a positive integer."
  }
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention for the Lambda log groups."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

variable "code_signing_config_arn" {
  description = "Optional Lambda code signing config ARN (AWS Signer); empty = unsigned deployment package."
  type        = string
  default     = ""
  validation {
    condition     = var.code_signing_config_arn == "" || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]{17}$", var.code_signing_config_arn))
    error_message = "code_signing_config_arn must be empty or a Lambda code signing config ARN."
  }
}

# ---------------------------------------------------------------- GitLab deploy trigger
variable "gitlab_project_id" {
  description = "GitLab project id (numeric) or URL-encoded path whose pipeline is triggered when a model package is approved; empty = no trigger."
  type        = string
  default     = ""
  validation {
    condition     = var.gitlab_project_id == "" || can(regex("^([0-9]+|[A-Za-z0-9_.%-]+)$", var.gitlab_project_id))
    error_message = "gitlab_project_id must be empty, a numeric id or a URL-encoded path (group%2Fproject)."
  }
}

variable "gitlab_api_url" {
  description = "GitLab API v4 base URL (https)."
  type        = string
  default     = "https://gitlab.com/api/v4"
  validation {
    condition     = var.gitlab_api_url == "" || can(regex("^https://[^/\\s]+(/[^\\s]*)?/api/v4$", var.gitlab_api_url))
    error_message = "gitlab_api_url must be an https URL ending in /api/v4."
  }
}

variable "gitlab_trigger_token_secret_arn" {
  description = "ARN of the Secrets Manager secret or SSM SecureString parameter holding the GitLab pipeline trigger token; empty = no trigger."
  type        = string
  default     = ""
  validation {
    condition = var.gitlab_trigger_token_secret_arn == "" || can(regex(
      "^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+|ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9/_.-]+)$",
    var.gitlab_trigger_token_secret_arn))
    error_message = "gitlab_trigger_token_secret_arn must be empty, a Secrets Manager secret ARN or an SSM parameter ARN."
  }
}

variable "gitlab_trigger_token_kms_key_arn" {
  description = "Optional customer managed KMS key ARN that encrypts the trigger token secret/parameter (empty = AWS managed key)."
  type        = string
  default     = ""
  validation {
    condition     = var.gitlab_trigger_token_kms_key_arn == "" || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.gitlab_trigger_token_kms_key_arn))
    error_message = "gitlab_trigger_token_kms_key_arn must be empty or a KMS key ARN."
  }
}

variable "gitlab_trigger_ref" {
  description = "Git ref the deploy pipeline runs on."
  type        = string
  default     = "main"
  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.gitlab_trigger_ref))
    error_message = "gitlab_trigger_ref must be a branch or tag name."
  }
}

variable "deploy_trigger_function_name" {
  description = "Name of the deploy trigger Lambda (created only when the GitLab settings are given)."
  type        = string
  default     = "sagemaker-model-approval-deploy-trigger"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.deploy_trigger_function_name))
    error_message = "deploy_trigger_function_name must be 1-64 letters, digits, hyphens or underscores."
  }
}
