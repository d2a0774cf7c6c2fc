# The data bucket is created outside this stack (like role_arn and kms_key): the CI
# build-pipelines stage uploads code to it before Terraform runs.
data "aws_s3_bucket" "data" {
  bucket = var.bucket_name
}

# S3 native EventBridge delivery: every object event of the bucket goes to the default
# bus, where events.tf filters by key prefix. (The original sample relied on CloudTrail
# PutObject events, which need a trail that it never created.)
# Note: this resource owns the bucket's whole notification configuration.
resource "aws_s3_bucket_notification" "eventbridge" {
  bucket      = data.aws_s3_bucket.data.id
  eventbridge = true
}
