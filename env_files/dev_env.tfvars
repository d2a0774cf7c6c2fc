# Development environment. Shared by Terraform (-var-file) and by pipeline_scripts/.
# Every key is declared, typed and validated in variables.tf.

environment = "dev"
aws_region  = "us-east-1"

# S3 layout: s3://<bucket_name>/<bucket_prefix>/<bucket_train_prefix>/ and .../<bucket_inf_prefix>/input/
bucket_name         = "mlops-batch-inference-dev-123456789012"
bucket_prefix       = "abalone"
bucket_train_prefix = "training"
bucket_inf_prefix   = "inference"

# Notifications
notification_function_name = "sagemaker-pipeline-notification-dev"
email_recipient            = ["ml-team@example.com"]
# custom_notification_config: the defaults in variables.tf (steps named by contract role) apply.

# SageMaker pipelines: names default to <data set name>-<contract name_suffix> (abalone-training,
# abalone-training-hpo, abalone-batch-inference) and the model package group to abalone-models;
# override with pipeline_names = { training = "..." } and model_package_group_name = "...".
recreate_pipelines     = false
accuracy_mse_threshold = 5.5 # UCI Abalone test split: mean predictor 11.0, original sample 6.6, this template 4.5

# Security and networking (examples: replace with your account's values)
role_arn  = "arn:aws:iam::123456789012:role/sagemaker-mlops-execution-dev"
kms_key   = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
subnet_id = "subnet-0123456789abcdef0"
sg_id     = "sg-0123456789abcdef0"

# Data upload by the pipeline scripts (CI) after the pipelines are upserted
upload_training_data  = false
upload_inference_data = false

user_id = "mlops-template"

# Optional schedules by pipeline key and the approval -> GitLab deploy trigger (empty = off).
pipeline_schedules              = {}
gitlab_project_id               = ""
gitlab_trigger_token_secret_arn = ""
