output "role_arn" {
  description = "The deploy role: paste it into the GitLab CI/CD variable AWS_ROLE_ARN, protected and scoped to this environment."
  value       = aws_iam_role.ci_deploy.arn
}

output "oidc_provider_arn" {
  description = "The account's GitLab OIDC provider (created here or read when create_oidc_provider = false)."
  value       = local.oidc_provider_arn
}

output "trusted_subject" {
  description = "The only GitLab ID token subject the role accepts (project and default branch)."
  value       = local.ci_subject
}
