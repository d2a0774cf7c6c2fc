terraform {
  # 1.9+: variable validations refer to locals (the root module's tfvars_rules.json, contracts.json).
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
