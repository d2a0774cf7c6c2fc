terraform {
  # The same constraints as the root module's versions.tf, for this module's own reasons: 1.9+ because the
  # validations of environment and role_arn refer to local.rules (contracts/tfvars_rules.json); the aws provider only,
  # at 5.100, the version tests/component/test_ci_role_policy.py validates this module against (there is no lock file here:
  # the admin's `terraform init` picks the newest 5.x from 5.100 on).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # No backend block: an admin runs this once per account and environment with local state, or adds
  # the backend of their choice. CI never runs it (the deploy role cannot change its own policy).
}
