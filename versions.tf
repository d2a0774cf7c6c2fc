terraform {
  # 1.9+: variable validations refer to locals (contracts/tfvars_rules.json, contracts/pipelines.json).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is what CI and the offline validate test (tests/component/test_terraform.py) run; the lock file
      # (.terraform.lock.hcl, carried from plan to apply) pins the exact build.
      version = "~> 5.100"
    }
  }

  # GitLab-managed Terraform state. Partial configuration: the address, lock
  # addresses and credentials come from TF_HTTP_* environment variables set per
  # environment in .gitlab-ci.yml (one state per environment), so nothing
  # secret or environment-specific is committed here.
  backend "http" {}
}
