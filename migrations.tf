# State moves of the refactor that declared the three Lambda functions (and their roles, log groups,
# invoke configs) with one for_each over local.lambda_functions, the SageMaker state-change rules with
# one for_each over local.state_change_rules, and every Lambda target and permission of events.tf with
# one for_each over local.lambda_targets. Without them, an existing deployment would destroy and
# recreate these objects (losing the log groups' logs, and racing the new rules and functions against
# the old ones of the same names). The Lambda permission of the deploy trigger is replaced: its
# statement id follows the rule key like every other. Remove these blocks once every environment
# has applied them.

moved {
  from = aws_lambda_function.notification
  to   = aws_lambda_function.this["notification"]
}

moved {
  from = aws_lambda_function.deploy_trigger[0]
  to   = aws_lambda_function.this["deploy_trigger"]
}

moved {
  from = aws_lambda_function.start_pipeline
  to   = aws_lambda_function.this["start_pipeline"]
}

moved {
  from = aws_cloudwatch_log_group.notification
  to   = aws_cloudwatch_log_group.lambda["notification"]
}

moved {
  from = aws_cloudwatch_log_group.deploy_trigger[0]
  to   = aws_cloudwatch_log_group.lambda["deploy_trigger"]
}

moved {
  from = aws_cloudwatch_log_group.start_pipeline
  to   = aws_cloudwatch_log_group.lambda["start_pipeline"]
}

moved {
  from = aws_lambda_function_event_invoke_config.notification
  to   = aws_lambda_function_event_invoke_config.this["notification"]
}

moved {
  from = aws_lambda_function_event_invoke_config.deploy_trigger[0]
  to   = aws_lambda_function_event_invoke_config.this["deploy_trigger"]
}

moved {
  from = aws_lambda_function_event_invoke_config.start_pipeline
  to   = aws_lambda_function_event_invoke_config.this["start_pipeline"]
}

moved {
  from = aws_iam_role.notification
  to   = aws_iam_role.lambda["notification"]
}

moved {
  from = aws_iam_role.deploy_trigger[0]
  to   = aws_iam_role.lambda["deploy_trigger"]
}

moved {
  from = aws_iam_role.start_pipeline
  to   = aws_iam_role.lambda["start_pipeline"]
}

moved {
  from = aws_iam_role_policy.notification
  to   = aws_iam_role_policy.lambda["notification"]
}

moved {
  from = aws_iam_role_policy.deploy_trigger[0]
  to   = aws_iam_role_policy.lambda["deploy_trigger"]
}

moved {
  from = aws_iam_role_policy.start_pipeline
  to   = aws_iam_role_policy.lambda["start_pipeline"]
}

moved {
  from = aws_iam_role_policy_attachment.notification_vpc
  to   = aws_iam_role_policy_attachment.lambda_vpc["notification"]
}

moved {
  from = aws_iam_role_policy_attachment.deploy_trigger_vpc[0]
  to   = aws_iam_role_policy_attachment.lambda_vpc["deploy_trigger"]
}

moved {
  from = aws_iam_role_policy_attachment.start_pipeline_vpc
  to   = aws_iam_role_policy_attachment.lambda_vpc["start_pipeline"]
}

moved {
  from = aws_cloudwatch_event_rule.pipeline_status
  to   = aws_cloudwatch_event_rule.state_change["pipeline_status"]
}

moved {
  from = aws_cloudwatch_event_rule.step_status
  to   = aws_cloudwatch_event_rule.state_change["step_status"]
}

moved {
  from = aws_cloudwatch_event_rule.model_package_status
  to   = aws_cloudwatch_event_rule.state_change["model_package_status"]
}

moved {
  from = aws_cloudwatch_event_rule.model_approved[0]
  to   = aws_cloudwatch_event_rule.state_change["model_approved"]
}

moved {
  from = aws_cloudwatch_event_target.pipeline_start
  to   = aws_cloudwatch_event_target.lambda
}

moved {
  from = aws_cloudwatch_event_target.notification["pipeline_status"]
  to   = aws_cloudwatch_event_target.lambda["pipeline_status"]
}

moved {
  from = aws_cloudwatch_event_target.notification["step_status"]
  to   = aws_cloudwatch_event_target.lambda["step_status"]
}

moved {
  from = aws_cloudwatch_event_target.notification["model_package_status"]
  to   = aws_cloudwatch_event_target.lambda["model_package_status"]
}

moved {
  from = aws_cloudwatch_event_target.model_approved[0]
  to   = aws_cloudwatch_event_target.lambda["model_approved"]
}

moved {
  from = aws_lambda_permission.start_pipeline_events
  to   = aws_lambda_permission.events
}

moved {
  from = aws_lambda_permission.notification_events["pipeline_status"]
  to   = aws_lambda_permission.events["pipeline_status"]
}

moved {
  from = aws_lambda_permission.notification_events["step_status"]
  to   = aws_lambda_permission.events["step_status"]
}

moved {
  from = aws_lambda_permission.notification_events["model_package_status"]
  to   = aws_lambda_permission.events["model_package_status"]
}

moved {
  from = aws_lambda_permission.deploy_trigger_events[0]
  to   = aws_lambda_permission.events["model_approved"]
}
