terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # GitLab-managed Terraform state. Partial configuration: the address, lock
  # addresses and credentials come from TF_HTTP_* environment variables set per
  # environment in .gitlab-ci.yml (one state per environment), so nothing
  # secret or environment-specific is committed here.
  backend "http" {}
}
